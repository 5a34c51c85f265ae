// `npm run restore -- --stack S --from SET --yes`: puts the warehouse and Airflow's metadata back
// as they were in a backup set. The set is verified (checksums, readable archives) before
// anything is touched; then every service that writes the databases is stopped, each database is
// restored in one transaction, Airflow's init runs again (migrations for an older set, Fernet
// re-encryption, the stack's admin password), and the services start again.
import { parseArgs } from "node:util";
import { platform } from "../platform";
import { docker, dockerOk, exec } from "./docker";
import { StackNotDeployed, checkedStackName, readStackOutputs, type StackOutputs } from "./stackOutputs";

/** The set failed verification: nothing was changed. */
export class RestoreRefused extends Error {
    constructor(detail: string) {
        super(`${detail}\nnothing was changed`);
        this.name = "RestoreRefused";
    }
}

const healthyTimeoutMs = 300_000;

/** The containers a restore stops: everything but PostgreSQL and the maintenance container. */
export function databaseWriters(outputs: Pick<StackOutputs, "containers" | "postgresContainer" | "maintenanceContainer">): string[] {
    return outputs.containers.filter((name) => name !== outputs.postgresContainer && name !== outputs.maintenanceContainer);
}

/** Seconds each step of a restore took, in order. */
export type RestorePhases = Record<"verify" | "stop" | "restore" | "init" | "start", number>;

export async function restore(outputs: StackOutputs, set: string, echo = false): Promise<RestorePhases> {
    const phases: Partial<RestorePhases> = {};
    let started = performance.now();
    const done = (phase: keyof RestorePhases) => {
        phases[phase] = (performance.now() - started) / 1000;
        started = performance.now();
    };
    const maintenance = outputs.maintenanceContainer;
    const check = await exec(maintenance, ["vpe-restore", "--check", set]);
    if (check.exitCode !== 0) {
        throw new RestoreRefused(check.output.trim());
    }
    done("verify");
    const running = await runningOf(databaseWriters(outputs));
    if (running.length > 0) await dockerOk(["stop", ...running]);
    done("stop");
    try {
        await dockerOk(["exec", maintenance, "vpe-restore", set], { echo });
        await dockerOk(["exec", maintenance, "touch", platform.paths.airflowKeysRestored]);
        done("restore");
        const init = await docker(["start", "--attach", outputs.airflowInitContainer], { echo });
        if (init.code !== 0) {
            throw new Error(`${outputs.airflowInitContainer} failed after the restore (exit ${init.code}): ${init.stderr.trim().split("\n").slice(-5).join("\n")}`);
        }
        done("init");
    } finally {
        if (running.length > 0) await dockerOk(["start", ...running]);
        await waitHealthy(running);
    }
    done("start");
    return phases as RestorePhases;
}

async function runningOf(names: string[]): Promise<string[]> {
    const out = await dockerOk(["inspect", "--format", "{{.Name}} {{.State.Running}}", ...names]);
    return out
        .trim()
        .split("\n")
        .filter((line) => line.endsWith(" true"))
        .map((line) => line.split(" ")[0].replace(/^\//, ""));
}

async function waitHealthy(names: string[]): Promise<void> {
    const deadline = Date.now() + healthyTimeoutMs;
    let waiting = names;
    while (waiting.length > 0) {
        const out = await dockerOk(["inspect", "--format", "{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", ...waiting]);
        waiting = out
            .trim()
            .split("\n")
            .filter((line) => !line.endsWith(" healthy"))
            .map((line) => line.split(" ")[0].replace(/^\//, ""));
        if (waiting.length === 0) return;
        if (Date.now() > deadline) {
            throw new Error(`not healthy ${healthyTimeoutMs / 1000} s after the restore: ${waiting.join(", ")} (npm run status shows why)`);
        }
        await new Promise((resolve) => setTimeout(resolve, 1000));
    }
}

const usage = "usage: npm run restore -- --stack STACK --from SET --yes   (sets: npm run backup -- --stack STACK --list)";

async function main(argv: string[]): Promise<number> {
    let stack: string;
    let set: string;
    try {
        const parsed = parseArgs({ args: argv, options: { stack: { type: "string" }, from: { type: "string" }, yes: { type: "boolean" } } });
        stack = checkedStackName(parsed.values.stack);
        if (parsed.values.from === undefined) throw new Error("--from: required, the name of a backup set");
        set = parsed.values.from;
        if (!parsed.values.yes) {
            throw new Error(`--yes: required; the restore replaces the warehouse and Airflow's metadata of stack ${stack} with set ${set}`);
        }
    } catch (err) {
        console.error(`restore: ${(err as Error).message}\n${usage}`);
        return 2;
    }
    try {
        const outputs = await readStackOutputs(stack);
        const phases = await restore(outputs, set, true);
        const steps = Object.entries(phases).map(([phase, seconds]) => `${phase} ${seconds.toFixed(1)} s`);
        console.log(`restore: stack ${stack} now holds backup set ${set}; every service is healthy (${steps.join(", ")})`);
        return 0;
    } catch (err) {
        console.error(`restore: ${(err as Error).message}`);
        return err instanceof StackNotDeployed ? 2 : 1;
    }
}

if (require.main === module) {
    void main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
