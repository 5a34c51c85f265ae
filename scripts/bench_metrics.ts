// npm run bench:metrics [-- --samples N --settle SECONDS]
//
// What metrics cost a stack at idle: the dev stack with vpe:metrics.enabled off, then on, in one
// run on this machine's engine (the real CLI when on PATH, else the harness), each from fresh
// volumes with the images cached. After each bring-up it waits until every container is healthy
// and no DAG run is queued or running (the fresh stack schedules an ingestion run at once), then
// SECONDS more (default 60), samples every container's memory and CPU N times (default 10, one
// `docker stats` each), and reports the medians of the stack's totals, the monitoring containers'
// share and the ratio on/off.
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { selectEngine } from "../e2e/engines";
import { platform, projectRoot } from "../platform";
import { containerStats, waitFor } from "../tests/e2e/platform";
import { PlatformStack } from "../tests/e2e/platformStack";
import { median } from "./stats";

const { values } = parseArgs({ options: { samples: { type: "string", default: "10" }, settle: { type: "string", default: "60" } } });
const samples = Number(values.samples);
const settleSeconds = Number(values.settle);
if (!Number.isInteger(samples) || samples < 1) throw new Error(`--samples: expected a whole number >= 1, got ${values.samples}`);
if (!Number.isInteger(settleSeconds) || settleSeconds < 0) throw new Error(`--settle: expected whole seconds >= 0, got ${values.settle}`);

const { prometheus, alertmanager, statsdExporter, postgresExporter, nodeExporter, redisExporter, containerExporter } = platform.aliases;
const monitoring = new RegExp(`-(${[prometheus, alertmanager, statsdExporter, postgresExporter, nodeExporter, redisExporter, containerExporter].join("|")})$`);

interface Sample {
    memoryMiB: number;
    cpuPercent: number;
    monitoringMemoryMiB: number;
    monitoringCpuPercent: number;
}

/** One `docker stats` reading of the stack's containers, summed. */
function sample(prefix: string): Sample {
    const total: Sample = { memoryMiB: 0, cpuPercent: 0, monitoringMemoryMiB: 0, monitoringCpuPercent: 0 };
    for (const c of containerStats(prefix)) {
        total.memoryMiB += c.memoryMiB;
        total.cpuPercent += c.cpuPercent;
        if (monitoring.test(c.name)) {
            total.monitoringMemoryMiB += c.memoryMiB;
            total.monitoringCpuPercent += c.cpuPercent;
        }
    }
    return total;
}

async function measure(enabled: boolean): Promise<{ containers: number; medians: Sample }> {
    const label = enabled ? "metrics-on" : "metrics-off";
    // Dev's ports are 15432/18080/18181; Prometheus gets the same pattern.
    const stack = new PlatformStack("dev", { "vpe:metrics": { enabled, hostPort: 19090 } });
    await stack.open(selectEngine(), projectRoot, path.join(projectRoot, ".e2e", "bench", label));
    await stack.teardown();
    try {
        await stack.up(label);
        await waitFor(`${label}: every container healthy`, 600_000, () => (stack.serviceContainers().every((c) => c.health === "healthy") ? true : undefined));
        await waitFor(`${label}: no DAG run queued or running`, 1_800_000, async () => {
            const active = await stack.airflow.call<{ total_entries: number }>("GET", "/dags/~/dagRuns?state=queued&state=running&limit=1");
            return active.total_entries === 0 ? true : undefined;
        }, 10_000);
        await new Promise((resolve) => setTimeout(resolve, settleSeconds * 1000));
        const readings = Array.from({ length: samples }, () => sample(stack.prefix));
        const pick = (key: keyof Sample) => Number(median(readings.map((r) => r[key])).toFixed(1));
        return {
            containers: stack.serviceContainers().length,
            medians: { memoryMiB: pick("memoryMiB"), cpuPercent: pick("cpuPercent"), monitoringMemoryMiB: pick("monitoringMemoryMiB"), monitoringCpuPercent: pick("monitoringCpuPercent") },
        };
    } finally {
        await stack.teardown();
    }
}

async function main(): Promise<void> {
    const off = await measure(false);
    const on = await measure(true);
    const ratio = (key: keyof Sample) => (off.medians[key] > 0 ? (on.medians[key] / off.medians[key]).toFixed(2) : "n/a");
    const report = { engine: selectEngine(), samples, settleSeconds, off, on, ratio: { memory: ratio("memoryMiB"), cpu: ratio("cpuPercent") } };
    fs.mkdirSync(path.join(projectRoot, "reports"), { recursive: true });
    fs.writeFileSync(path.join(projectRoot, "reports", "bench-metrics.json"), JSON.stringify(report, null, 2));
    console.log(
        [
            `dev stack at idle, median of ${samples} docker stats samples (${report.engine}):`,
            `  metrics off: ${off.containers} containers, ${off.medians.memoryMiB} MiB, ${off.medians.cpuPercent} % CPU`,
            `  metrics on:  ${on.containers} containers, ${on.medians.memoryMiB} MiB, ${on.medians.cpuPercent} % CPU` +
                ` (Prometheus, Alertmanager and the exporters: ${on.medians.monitoringMemoryMiB} MiB, ${on.medians.monitoringCpuPercent} % CPU)`,
            `  on/off: memory x${report.ratio.memory}, CPU x${report.ratio.cpu}`,
        ].join("\n"),
    );
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
