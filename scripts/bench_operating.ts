// npm run bench:operating [-- --runs N]
//
// What a user waits for when operating the dev stack, each against the bare tool it wraps, in one
// run on this machine: `npm run status` against a `docker inspect` of the same containers (what
// a user typed before); `npm run backup` against `pg_dump` of the same databases in the same
// container; `npm run restore` (verification, services stopped, restore, Airflow's init,
// services healthy again) against `pg_restore` of the same archives with the services stopped.
// Brings the dev stack up (warm when its images are cached), ingests the sample once, measures N
// runs of each, and tears the stack down. Applied by the real Pulumi CLI when on PATH, else the
// harness. Writes reports/bench-operating.{md,json}.
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { databaseWriters } from "../commands/restore";
import type { StackOutputs } from "../commands/stackOutputs";
import { selectEngine } from "../e2e/engines";
import { platform, projectRoot } from "../platform";
import { docker, waitFor } from "../tests/e2e/platform";
import { PlatformStack } from "../tests/e2e/platformStack";
import { median } from "./stats";

const { values } = parseArgs({ options: { runs: { type: "string", default: "5" } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: expected a whole number >= 1, got ${values.runs}`);

const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`;

function timed(run: () => void): number {
    const started = performance.now();
    run();
    return (performance.now() - started) / 1000;
}

async function main(): Promise<void> {
    const stack = new PlatformStack("dev");
    await stack.open(selectEngine());
    await stack.teardown();
    const figures: Record<string, number[]> = {
        status: [],
        statusBaseline: [],
        backup: [],
        backupBaseline: [],
        restore: [],
        restoreBaseline: [],
    };
    const phases: Record<string, number>[] = [];
    try {
        await stack.up("bringUp");
        await stack.runDag("ingestion", "2024-06-01T00:00:00Z");
        const containers = stack.outputs.containers as string[];
        const maintenance = stack.outputs.maintenanceContainer as string;
        const writers = databaseWriters(stack.outputs as StackOutputs);
        const databases = [platform.databases.warehouse, platform.databases.airflow];
        const bare = `/tmp/vpe-bench-bare`;
        for (let i = 0; i < runs; i++) {
            const status = await stack.command("status");
            if (status.code !== 0) throw new Error(`status is not well:\n${status.stdout}`);
            figures.status.push(status.seconds);
            figures.statusBaseline.push(timed(() => docker("inspect", ...containers)));

            const backup = await stack.command("backup");
            if (backup.code !== 0) throw new Error(`backup failed:\n${backup.stderr}`);
            figures.backup.push(backup.seconds);
            const set = backup.stdout.match(/set (\d{8}T\d{6}Z)/)![1];
            docker("exec", maintenance, "mkdir", "-p", bare);
            figures.backupBaseline.push(
                timed(() => {
                    for (const db of databases) docker("exec", maintenance, "pg_dump", "--format=custom", `--dbname=${db}`, `--file=${bare}/${db}.dump`);
                }),
            );

            const restore = await stack.command("restore", "--from", set, "--yes");
            if (restore.code !== 0) throw new Error(`restore failed:\n${restore.stderr}`);
            figures.restore.push(restore.seconds);
            const steps = restore.stdout.match(/\(([^)]*\d s)\)\s*$/)?.[1] ?? "";
            phases.push(Object.fromEntries([...steps.matchAll(/(\w+) ([\d.]+) s/g)].map((m) => [m[1], Number(m[2])])));
            figures.restoreBaseline.push(
                timed(() => {
                    docker("stop", ...writers);
                    for (const db of databases) {
                        docker("exec", maintenance, "pg_restore", "--clean", "--if-exists", "--single-transaction", `--dbname=${db}`, `${bare}/${db}.dump`);
                    }
                    docker("start", ...writers);
                }),
            );
            await waitFor("every service healthy after the bare restore", 300_000, () =>
                stack.serviceContainers().every((c) => c.health === "healthy") ? true : undefined,
            );
            console.log(`run ${i + 1}/${runs}: status ${figures.status.at(-1)!.toFixed(2)} s, backup ${figures.backup.at(-1)!.toFixed(2)} s, restore ${figures.restore.at(-1)!.toFixed(1)} s`);
        }
    } finally {
        await stack.teardown();
    }
    const rows: [string, string, string][] = [
        ["status", "status", "statusBaseline"],
        ["backup", "backup", "backupBaseline"],
        ["restore", "restore", "restoreBaseline"],
    ];
    const lines = [
        `# bench:operating, ${stack.engine.version}, ${runs} runs`,
        "",
        "| command | median s (range) | bare tool median s (range) | ratio |",
        "|---|---|---|---|",
        ...rows.map(([what, ours, base]) => {
            const [a, b] = [figures[ours], figures[base]];
            return `| ${what} | ${median(a).toFixed(2)} (${range(a)}) | ${median(b).toFixed(2)} (${range(b)}) | ${(median(a) / median(b)).toFixed(1)} |`;
        }),
        "",
        `Restore steps, median s: ${Object.keys(phases[0] ?? {})
            .map((p) => `${p} ${median(phases.map((x) => x[p])).toFixed(1)}`)
            .join(", ")}`,
        "",
        "Bare tools: `docker inspect` of the stack's containers; `pg_dump` of both databases in the maintenance container;",
        "`docker stop` of the services that write, `pg_restore` of both archives, `docker start` (no verification, no init, no wait for health).",
    ];
    const dir = path.join(projectRoot, "reports");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "bench-operating.json"), JSON.stringify({ runs, figures, phases }, null, 2));
    fs.writeFileSync(path.join(dir, "bench-operating.md"), lines.join("\n") + "\n");
    console.log(lines.join("\n"));
}

void main();
