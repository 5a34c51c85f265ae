// The whole dev stack on a real Docker engine: the real program and Pulumi.dev.yaml, applied by
// the harness (e2e/harness), checked as a user would, with faults, then torn down.
// Run alone: npm run test:e2e. Writes reports/e2e-report.{json,md}.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { parseConfig } from "../../config";
import { changed, destroy, outputValues, purgeRetained, up, type Summary } from "../../e2e/harness";
import { platform } from "../../platform";
import { stackConfig, projectRoot } from "../support/stackConfig";
import { AirflowApi, docker, inspectContainers, query, waitFor } from "./platform";

const stack = "dev";
const config = parseConfig(stackConfig(stack), stack);
const prefix = config.namePrefix;
const statePath = path.join(projectRoot, ".e2e", "state", `${stack}.json`);
const harness = { projectDir: projectRoot, stack, statePath };
const reportDir = path.join(projectRoot, "reports");

const report: Record<string, unknown> = { stack, startedAt: new Date().toISOString(), images: {}, dagRuns: {} };
let outputs: Record<string, any> = {};
let airflow: AirflowApi;
let adminUrl = "";

function recordImages(summary: Summary): void {
    for (const [urn, metrics] of Object.entries(summary.metrics)) {
        if (metrics.buildSeconds !== undefined) {
            (report.images as Record<string, unknown>)[urn.split("::").pop()!] = {
                buildSeconds: Number(metrics.buildSeconds.toFixed(1)),
                sizeMB: Number(((metrics.imageBytes ?? 0) / 1e6).toFixed(1)),
            };
        }
    }
}

async function bringUp(label: string, extraConfig: string[] = []): Promise<Summary> {
    const started = performance.now();
    const summary = await up({ ...harness, config: extraConfig });
    const seconds = (performance.now() - started) / 1000;
    report[label] = Number(seconds.toFixed(1));
    outputs = outputValues(summary) as Record<string, any>;
    airflow = new AirflowApi(outputs.airflowUrl, outputs.airflowAdminUser, outputs.airflowAdminPassword);
    adminUrl = `postgresql://${outputs.postgresAdminUser}:${outputs.postgresAdminPassword}@${outputs.postgresHost}:${outputs.postgresPort}/${platform.databases.warehouse}`;
    return summary;
}

async function runDag(dagId: string, logicalDate: string, timeoutMs = 900_000) {
    const started = performance.now();
    const runId = await airflow.trigger(dagId, logicalDate);
    return finishRun(dagId, runId, started, timeoutMs);
}

/** Waits for a triggered run to succeed and records its duration and tasks in the report. */
async function finishRun(dagId: string, runId: string, started: number, timeoutMs = 900_000) {
    await airflow.waitForRun(dagId, runId, timeoutMs);
    const tis = (await airflow.taskInstances(dagId, runId)).task_instances;
    (report.dagRuns as Record<string, unknown>)[runId] = {
        dagId,
        seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
        tasks: Object.fromEntries(tis.map((t) => [t.task_id, { state: t.state, tries: t.try_number, seconds: t.duration }])),
    };
    return { runId, tis };
}

async function warehouseCounts(): Promise<Record<string, number>> {
    const tables = ["event", "location", "datetime", "landslide_event", "event_stats_country_year"];
    const rows = await query<{ t: string; n: string }>(adminUrl, tables.map((t) => `SELECT '${t}' AS t, count(*) AS n FROM ${t}`).join(" UNION ALL "));
    return Object.fromEntries(rows.map((r) => [r.t, Number(r.n)]));
}

/** PostgreSQL, the executor, the Spark master, the four Airflow services, and the workers. */
const expectedServices = 7 + config.spark.workers;

function serviceContainers() {
    return inspectContainers(prefix).filter((c) => !c.name.endsWith("-init"));
}

function writeReport(): void {
    fs.mkdirSync(reportDir, { recursive: true });
    report.finishedAt = new Date().toISOString();
    fs.writeFileSync(path.join(reportDir, "e2e-report.json"), JSON.stringify(report, null, 2));
    const lines = [
        `# End-to-end report (${stack}), ${report.startedAt}`,
        "",
        `- cold bring-up to all healthy (no project image cached): ${report.coldBringUpSeconds ?? "n/a"} s`,
        `- warm bring-up to all healthy (images cached, fresh volumes): ${report.warmBringUpSeconds ?? "n/a"} s`,
        `- second apply of unchanged inputs: ${report.noopApplySeconds ?? "n/a"} s`,
        "",
        "| image | build s (cold) | size MB |",
        "|---|---|---|",
        ...Object.entries(report.images as Record<string, { buildSeconds: number; sizeMB: number }>).map(([n, i]) => `| ${n} | ${i.buildSeconds} | ${i.sizeMB} |`),
        "",
        "| DAG run | seconds | tasks (state, tries, seconds) |",
        "|---|---|---|",
        ...Object.entries(report.dagRuns as Record<string, { dagId: string; seconds: number; tasks: Record<string, { state: string; tries: number; seconds: number }> }>).map(
            ([id, r]) => `| ${r.dagId} ${id} | ${r.seconds} | ${Object.entries(r.tasks).map(([t, s]) => `${t}: ${s.state}, ${s.tries}, ${s.seconds?.toFixed?.(1)}`).join("; ")} |`,
        ),
    ];
    fs.writeFileSync(path.join(reportDir, "e2e-report.md"), lines.join("\n") + "\n");
}

async function teardown(): Promise<void> {
    if (fs.existsSync(statePath)) {
        await destroy(harness).catch((err) => console.error(`destroy failed: ${err}`));
        await purgeRetained(harness).catch((err) => console.error(`purge failed: ${err}`));
    }
}

describe(`the ${stack} stack on a real Docker engine`, { timeout: 75 * 60_000 }, () => {
    before(async () => {
        await teardown(); // leftovers of an interrupted run
        // Cold: no image of the project's own cached, no build cache (upstream stand-ins stay).
        for (const image of docker("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", `reference=${prefix}/*`).split("\n").filter(Boolean)) {
            docker("rmi", "-f", image);
        }
        docker("builder", "prune", "-af");
    });

    after(async () => {
        writeReport();
        await teardown();
    });

    it("comes up cold with every container healthy", async () => {
        const summary = await bringUp("coldBringUpSeconds");
        recordImages(summary);
        const containers = serviceContainers();
        assert.equal(containers.length, expectedServices, containers.map((c) => c.name).join(", "));
        for (const c of containers) assert.equal(c.health, "healthy", `${c.name} is ${c.health}`);
    });

    it("reports a green Airflow health endpoint", async () => {
        const health = await waitFor("Airflow components healthy", 180_000, async () => {
            const h = await airflow.health();
            return ["metadatabase", "scheduler", "triggerer", "dag_processor"].every((k) => h[k]?.status === "healthy") ? h : undefined;
        });
        assert.equal(health.metadatabase.status, "healthy");
    });

    it("resolves the three provisioned connections inside Airflow", () => {
        for (const id of Object.values(platform.connections)) {
            const json = docker("exec", `${prefix}-airflow-scheduler`, "airflow", "connections", "get", id, "-o", "json");
            const [conn] = JSON.parse(json) as { conn_id: string; conn_type: string }[];
            assert.equal(conn.conn_id, id);
        }
    });

    it("has the configured number of alive Spark workers", async () => {
        const master = await waitFor("Spark workers registered", 120_000, async () => {
            const m = (await (await fetch(`${outputs.sparkUiUrl}/json/`)).json()) as { aliveworkers: number };
            return m.aliveworkers === config.spark.workers ? m : undefined;
        });
        assert.equal(master.aliveworkers, config.spark.workers);
    });

    it("runs ping_grpc through Airflow", async () => {
        await runDag("ping_grpc", "2024-06-01T00:00:00Z", 300_000);
    });

    it("runs ingestion end to end: catalog -> buffer -> warehouse -> Spark statistics", async () => {
        await runDag("ingestion", "2024-06-01T00:00:00Z");
        const counts = await warehouseCounts();
        report.warehouseCounts = counts;
        assert.equal(counts.event, 956);
        assert.equal(counts.landslide_event, 956);
        assert.equal(counts.location, 956);
        assert.ok(counts.event_stats_country_year > 0);
        const [total] = await query<{ n: string }>(adminUrl, "SELECT sum(events) AS n FROM event_stats_country_year");
        assert.equal(Number(total.n), 956, "the Spark statistic counts every event");
    });

    it("keeps Airflow and executor logs on the log volume with the ownership and mode the stack set", () => {
        const script = [
            "cd /v && stat -c '%n %u:%g %a' . airflow executor spark",
            "echo files:$(find airflow -type f | wc -l):$(find executor -type f -name '*.log' | wc -l)",
            "echo world-writable:$(find . -perm -0002 ! -type l | wc -l)",
        ].join("; ");
        const out = docker("run", "--rm", "-v", `${outputs.logVolumeName}:/v:ro`, platform.images.debian, "sh", "-c", script);
        for (const dir of [".", "airflow", "executor", "spark"]) {
            assert.match(out, new RegExp(`^${dir.replace(".", "\\.")} 50000:0 2775$`, "m"), out);
        }
        const [, airflowFiles, executorLogs] = out.match(/files:(\d+):(\d+)/)!.map(Number);
        assert.ok(airflowFiles > 0, "no Airflow task logs");
        assert.ok(executorLogs > 0, "no executor run logs");
        assert.match(out, /world-writable:0/);
    });

    it("answers only on the configured ports, and only on 127.0.0.1", () => {
        const bindings = inspectContainers(prefix).flatMap((c) => c.ports.map((p) => ({ ...p, name: c.name })));
        const expected = [config.postgres.hostPort, config.airflow.hostPort, config.spark.masterUiHostPort].map(String).sort();
        assert.deepEqual(bindings.map((b) => b.hostPort).sort(), expected);
        for (const b of bindings) assert.equal(b.hostIp, "127.0.0.1", `${b.name} binds ${b.hostIp}`);
        // What actually listens on the host for the engine's port forwarding:
        const listeners = docker("run", "--rm", "--network", "host", platform.images.debian, "cat", "/proc/net/tcp");
        const open = listeners.split("\n").slice(1).map((l) => l.trim().split(/\s+/)).filter((f) => f[3] === "0A").map((f) => f[1]);
        for (const port of expected) {
            const hex = Number(port).toString(16).toUpperCase().padStart(4, "0");
            const bound = open.filter((a) => a.endsWith(`:${hex}`));
            assert.deepEqual(bound, ["0100007F:" + hex], `port ${port} listens on ${bound}`);
        }
    });

    it("changes nothing on a second apply of unchanged inputs", async () => {
        const summary = await bringUp("noopApplySeconds");
        assert.deepEqual(changed(summary), {});
    });

    it("restarts a killed executor, and the retried task succeeds", async () => {
        const executorName = `${prefix}-executor`;
        const before = inspectContainers(prefix).find((c) => c.name === executorName)!;
        const started = performance.now();
        const runId = await airflow.trigger("ingestion", "2024-06-02T00:00:00Z");
        // Crash the executor (SIGKILL to its process, not `docker stop`) again and again until the
        // first try of extract_catalog has ended: that try cannot reach it, and Airflow retries.
        let kills = 0;
        await waitFor("first try of extract_catalog to end", 300_000, async () => {
            const current = inspectContainers(prefix).find((c) => c.name === executorName)!;
            if (current.running && current.pid > 0) {
                process.kill(current.pid, "SIGKILL");
                kills++;
            }
            const ti = (await airflow.taskInstances("ingestion", runId)).task_instances.find((t) => t.task_id === "extract_catalog");
            const ended = ti && (ti.try_number > 1 || ["up_for_retry", "success", "failed"].includes(String(ti.state)));
            return ended ? ti : undefined;
        }, 200);
        const { tis } = await finishRun("ingestion", runId, started);
        const ti = tis.find((t) => t.task_id === "extract_catalog")!;
        const afterKill = await waitFor("executor healthy again", 120_000, () => {
            const c = inspectContainers(prefix).find((x) => x.name === executorName)!;
            return c.health === "healthy" ? c : undefined;
        });
        report.executorFault = { kills, restarts: afterKill.restartCount - before.restartCount, extractTries: ti.try_number };
        assert.ok(afterKill.restartCount > before.restartCount, "Docker did not restart the executor");
        assert.ok(ti.try_number >= 2, `extract_catalog was not retried (try ${ti.try_number})`);
        assert.equal(ti.state, "success");
    });

    it("replaces the PostgreSQL container without losing a row", async () => {
        const before = await warehouseCounts();
        const postgres = { ...config.postgres, sharedBuffers: "192MB" };
        const summary = await bringUp("postgresReplaceSeconds", [`vpe:postgres=${JSON.stringify(postgres)}`]);
        const ops = changed(summary);
        const replaced = Object.entries(ops).filter(([urn, op]) => op === "replace" && urn.endsWith(`::${prefix}-postgres`));
        assert.equal(replaced.length, 1, `expected the postgres container to be replaced: ${JSON.stringify(ops)}`);
        assert.deepEqual(await warehouseCounts(), before);
        const [setting] = await query<{ shared_buffers: string }>(adminUrl, "SHOW shared_buffers");
        assert.equal(setting.shared_buffers, "192MB");
    });

    it("keeps the data volumes and their rows through destroy", async () => {
        const before = await warehouseCounts();
        await destroy(harness);
        assert.deepEqual(serviceContainers(), [], "containers left after destroy");
        const volumes = docker("volume", "ls", "-q", "--filter", `name=^${prefix}-`).split("\n").sort();
        assert.deepEqual(volumes, [`${prefix}-buffer`, `${prefix}-logs`, `${prefix}-postgres-data`]);
        // Read the kept cluster with a throwaway server on the volume (socket only, local trust).
        const count = docker(
            "run", "--rm", "--user", `${platform.users.postgres.uid}:${platform.users.postgres.gid}`,
            "-v", `${prefix}-postgres-data:${platform.paths.postgresData}`, "--entrypoint", "bash", platform.images.postgres, "-c",
            `pg_ctl start -w -s -D "$PGDATA" -o "-c listen_addresses=" >/dev/null && psql -U postgres -d ${platform.databases.warehouse} -Atc "SELECT count(*) FROM landslide_event"; pg_ctl stop -s -D "$PGDATA" -m fast`,
        );
        assert.equal(Number(count), before.landslide_event);
    });

    it("comes up warm (images cached) after the data is purged", async () => {
        await purgeRetained(harness);
        await bringUp("warmBringUpSeconds");
        const containers = serviceContainers();
        assert.equal(containers.length, expectedServices);
        for (const c of containers) assert.equal(c.health, "healthy", `${c.name} is ${c.health}`);
    });
});
