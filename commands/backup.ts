// `npm run backup -- --stack S [--list]`: a backup set now (the warehouse and Airflow's metadata,
// pg_dump custom format, checksummed) in the stack's backup volume, or the sets it holds.
import { parseArgs } from "node:util";
import { dockerOk, exec } from "./docker";
import { StackNotDeployed, checkedStackName, readStackOutputs, type StackOutputs } from "./stackOutputs";

export interface BackupSet {
    name: string;
    bytes: number;
    databases: string[];
}

/** `vpe-backup --list` lines: name, bytes, databases (space-separated), oldest first. */
export function parseBackupList(text: string): BackupSet[] {
    return text
        .split("\n")
        .filter((line) => line.trim() !== "")
        .map((line) => {
            const [name, bytes, databases] = line.split("\t");
            return { name, bytes: Number(bytes), databases: (databases ?? "").split(" ").filter(Boolean) };
        });
}

/** The sets in the backup volume, through the maintenance container. */
export async function listBackups(maintenanceContainer: string, signal?: AbortSignal): Promise<BackupSet[]> {
    const listed = await exec(maintenanceContainer, ["vpe-backup", "--list"], signal);
    if (listed.exitCode !== 0) throw new Error(`vpe-backup --list in ${maintenanceContainer} exited ${listed.exitCode}: ${listed.output.trim()}`);
    return parseBackupList(listed.stdout);
}

/** Takes a backup set now; returns its name. */
export async function backupNow(outputs: StackOutputs, echo = false): Promise<string> {
    const stdout = await dockerOk(["exec", outputs.maintenanceContainer, "vpe-backup"], { echo });
    return stdout.trim().split("\n").at(-1)!;
}

const usage = "usage: npm run backup -- --stack STACK [--list]";

async function main(argv: string[]): Promise<number> {
    let stack: string;
    let list: boolean;
    try {
        const parsed = parseArgs({ args: argv, options: { stack: { type: "string" }, list: { type: "boolean" } } });
        stack = checkedStackName(parsed.values.stack);
        list = parsed.values.list ?? false;
    } catch (err) {
        console.error(`backup: ${(err as Error).message}\n${usage}`);
        return 2;
    }
    try {
        const outputs = await readStackOutputs(stack);
        if (list) {
            for (const set of await listBackups(outputs.maintenanceContainer)) {
                console.log(`${set.name}  ${(set.bytes / 1e6).toFixed(1)} MB  ${set.databases.join(", ")}`);
            }
            return 0;
        }
        const name = await backupNow(outputs, true);
        console.log(`backup: set ${name} in volume ${outputs.backupVolumeName}; restore with npm run restore -- --stack ${stack} --from ${name}`);
        return 0;
    } catch (err) {
        console.error(`backup: ${(err as Error).message}`);
        return err instanceof StackNotDeployed ? 2 : 1;
    }
}

if (require.main === module) {
    void main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
