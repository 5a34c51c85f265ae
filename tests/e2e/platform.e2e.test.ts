// Both shipped stacks on a real Docker engine: the real program and its Pulumi.<stack>.yaml,
// applied by the real Pulumi CLI when one is on PATH, else by the harness (VPE_E2E_ENGINE forces
// one), checked as a user would: with faults, previews of everyday edits against what up then
// does, destroy and coming back onto the kept data; then both at once; then torn down.
// Run alone: npm run test:e2e. Writes reports/e2e-report.{json,md}.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { openStack, selectEngine } from "../../e2e/engines";
import { changed } from "../../e2e/harness";
import { publishedPorts } from "../../config";
import { platform } from "../../platform";
import { projectRoot, stackConfig } from "../support/stackConfig";
import { type ContainerState, containerLogs, credentialFiles, docker, dockerClient, inspectContainers, promQuery, provideImages, query, secretValues, waitFor } from "./platform";
import { type AlertNotification, PlatformStack, alertWebhookUrl } from "./platformStack";
import { type TestServer, removeTestServer, startTestServer } from "./testServer";

const engineName = selectEngine();
const dev = new PlatformStack("dev");
// Prod has metrics on: its alerts go to the suite's webhook on the stack network.
const prod = new PlatformStack("prod", {
    "vpe:metrics": { ...JSON.parse(stackConfig("prod")["vpe:metrics"]), alertWebhookUrl },
});
/** The DAG whose run fails, added to prod's DAGs for the failed-run alert. */
const failingDag = path.join(projectRoot, "tests", "e2e", "fixtures", "dags", "ping_env_fails.py");
const stacks = [dev, prod];
/** The server stack, made once its test server exists (its stack file names the server's keys). */
let server: PlatformStack | undefined;
/** The server stack for checks registered before it exists: each use reaches the real one. */
const serverStack = new Proxy({} as PlatformStack, {
    get: (_, key) => {
        const value = Reflect.get(server!, key);
        return typeof value === "function" ? value.bind(server) : value;
    },
});
const reportDir = path.join(projectRoot, "reports");
const report: Record<string, unknown> = { startedAt: new Date().toISOString() };
const ingestionDate = "2024-06-01T00:00:00Z";

/** What the dev stack had before destroy, to compare once it comes back. */
const kept: { counts?: Record<string, number>; statistics?: unknown[]; runs?: string[] } = {};
const keptVariable = { key: "vpe_e2e_kept", value: `kept-${Date.now()}` };
const airflowServiceAliases = [
    platform.aliases.airflowApiServer,
    platform.aliases.airflowScheduler,
    platform.aliases.airflowDagProcessor,
    platform.aliases.airflowTriggerer,
];

/** Operations keyed by resource name (the last part of the URN). */
function byName(ops: Record<string, string>): Record<string, string> {
    return Object.fromEntries(Object.entries(ops).map(([urn, op]) => [urn.split("::").pop()!, op]));
}

function statistics(s: PlatformStack) {
    return query(s.adminUrl, "SELECT * FROM event_stats_country_year ORDER BY 1, 2");
}

async function dagRunIds(s: PlatformStack, dagId: string): Promise<string[]> {
    const runs = await s.airflow.call<{ dag_runs: { dag_run_id: string }[] }>("GET", `/dags/${dagId}/dagRuns?limit=100`);
    return runs.dag_runs.map((r) => r.dag_run_id).sort();
}

function assertAllHealthy(s: PlatformStack): void {
    const containers = s.serviceContainers();
    assert.equal(containers.length, s.expectedServices, containers.map((c) => c.name).join(", "));
    for (const c of containers) assert.equal(c.health, "healthy", `${c.name} is ${c.health}`);
}

/** Waits until every service is healthy again after a fault, then asserts it. */
async function allHealthyAgain(s: PlatformStack, what: string): Promise<void> {
    await waitFor(`${s.stack}: every service healthy again after ${what}`, 180_000, () => (s.serviceContainers().every((c) => c.health === "healthy") ? true : undefined));
    assertAllHealthy(s);
}

async function airflowHealthy(s: PlatformStack) {
    return waitFor(`${s.stack}: Airflow components healthy`, 180_000, async () => {
        const h = await s.airflow.health();
        return ["metadatabase", "scheduler", "triggerer", "dag_processor"].every((k) => h[k]?.status === "healthy") ? h : undefined;
    });
}

/** The checks every stack gets after a cold bring-up: health, connections, Spark, ports. */
function platformChecks(s: PlatformStack): void {
    it("reports a green Airflow health endpoint", async () => {
        assert.equal((await airflowHealthy(s)).metadatabase.status, "healthy");
    });

    it("resolves the provisioned connections inside Airflow", () => {
        for (const id of Object.values(platform.connections)) {
            const json = docker("exec", `${s.prefix}-airflow-scheduler`, "airflow", "connections", "get", id, "-o", "json");
            const [conn] = JSON.parse(json) as { conn_id: string }[];
            assert.equal(conn.conn_id, id);
        }
    });

    it("has the configured number of alive Spark workers", async () => {
        const master = await waitFor(`${s.stack}: Spark workers registered`, 120_000, async () => {
            const m = (await (await fetch(`${s.outputs.sparkUiUrl}/json/`)).json()) as { aliveworkers: number };
            return m.aliveworkers === s.config.spark.workers ? m : undefined;
        });
        assert.equal(master.aliveworkers, s.config.spark.workers);
    });

    it("mounts nothing of the machine running Pulumi: every container's mounts are volumes, DAGs and sample data included", () => {
        const containers = inspectContainers(s.prefix);
        // But one: the container exporter reads the engine's own socket, on the engine's host.
        const engineSocket = (c: ContainerState, m: ContainerState["mounts"][number]) =>
            c.name === `${s.prefix}-${platform.aliases.containerExporter}` && m.source === s.config.metrics.engineSocket && m.destination === platform.paths.engineSocket;
        for (const c of containers) {
            assert.deepEqual(c.mounts.filter((m) => m.type !== "volume" && !engineSocket(c, m)), [], `${c.name} mounts a host path`);
        }
        const mountsOf = (name: string) => containers.find((c) => c.name === name)!.mounts.map((m) => `${m.source}:${m.destination}`);
        assert.ok(mountsOf(`${s.prefix}-${platform.aliases.airflowScheduler}`).includes(`${s.prefix}-dags:${platform.paths.airflowDags}`));
        assert.ok(mountsOf(`${s.prefix}-${platform.aliases.executor}`).includes(`${s.prefix}-data:${platform.paths.data}`));
        // The buffer is the executor's alone: the sensors ask the executor, wherever they run.
        const bufferMounts = containers.filter((c) => c.running && c.mounts.some((m) => m.source === `${s.prefix}-buffer`)).map((c) => c.name);
        assert.deepEqual(bufferMounts, [`${s.prefix}-${platform.aliases.executor}`]);
    });

    it("runs its schedules from the start: no DAG was created paused, and nobody unpaused one", async () => {
        const dags = await waitFor(`${s.stack}: both DAGs parsed`, 180_000, async () => {
            const listed = await s.airflow.call<{ dags: { dag_id: string; is_paused: boolean }[] }>("GET", "/dags?limit=100");
            return listed.dags.length >= 2 ? listed.dags : undefined;
        });
        assert.deepEqual(dags.filter((d) => d.is_paused).map((d) => d.dag_id), []);
        // ingestion is @daily: its latest interval's run was scheduled without a trigger.
        const scheduled = await waitFor(`${s.stack}: a scheduled ingestion run`, 180_000, async () => {
            const runs = await s.airflow.call<{ dag_runs: { run_type: string }[] }>("GET", "/dags/ingestion/dagRuns?limit=100");
            return runs.dag_runs.find((r) => r.run_type === "scheduled");
        });
        assert.equal(scheduled.run_type, "scheduled");
    });

    it("answers only on the configured ports, and only on 127.0.0.1", () => {
        const bindings = inspectContainers(s.prefix).flatMap((c) => c.ports.map((p) => ({ ...p, name: c.name })));
        const expected = publishedPorts(s.config).map(([, port]) => String(port)).sort();
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

    it("runs ping_grpc through Airflow", async () => {
        await s.runDag("ping_grpc", ingestionDate, 300_000);
    });

    it("shows no generated secret in any container's environment, command, entrypoint, labels or healthcheck", () => {
        const files = credentialFiles(s.prefix, [`${platform.paths.secrets}/*`, `${platform.tls.dir}/${platform.tls.keyFile}`]);
        const secrets = secretValues(files);
        for (const output of [s.outputs.postgresAdminPassword, s.outputs.airflowAdminPassword]) secrets.add(output);
        // Passwords of PostgreSQL, Airflow's admin and metadata login, the pipeline writer, the Fernet
        // key, JWT and API secrets (and Redis with Celery), each TLS key line.
        assert.ok(secrets.size >= 8, `only ${secrets.size} secrets found in the containers' files`);
        s.report.secretsChecked = secrets.size;
        for (const c of inspectContainers(s.prefix)) {
            for (const secret of secrets) {
                assert.ok(!c.config.includes(secret), `${c.name}: docker inspect shows a secret (${secret.slice(0, 4)}…)`);
            }
        }
        // Each file root-owned, readable by group 0 alone.
        for (const f of files) assert.match(f.stat, /^440 0 0 \//, `${f.container}: ${f.stat}`);
        const holders = new Set(files.map((f) => f.container));
        for (const alias of [platform.aliases.postgres, platform.aliases.executor, platform.aliases.airflowScheduler, platform.aliases.maintenance]) {
            assert.ok(holders.has(`${s.prefix}-${alias}`), `${alias} holds no credential file`);
        }
    });

    it("serves the executor over mutual TLS only: refuses attackers on the stack network, logs the refusals, stays healthy and answers throughout", () => {
        const executor = `${s.prefix}-executor`;
        const target = `${platform.aliases.executor}:${platform.ports.executorGrpc}`;
        const tls = [platform.tls.caFile, platform.tls.certFile, platform.tls.keyFile].map((f) => `${platform.tls.dir}/${f}`);
        // From Airflow's scheduler, with Airflow's client identity and the stubs the DAGs use.
        const run = spawnSync(
            dockerClient,
            ["exec", "-i", `${s.prefix}-${platform.aliases.airflowScheduler}`, "python", "-", target, platform.aliases.executor, ...tls],
            { input: fs.readFileSync(path.join(__dirname, "fixtures", "attack_executor.py")), encoding: "utf8", maxBuffer: 16 * 1024 * 1024 },
        );
        assert.equal(run.status, 0, run.stderr);
        const results = JSON.parse(run.stdout) as Record<string, string> & { flood: Record<string, number> };
        s.report.executorAttacks = results;
        for (const attack of ["plaintext", "noCertificate", "foreignCa"]) assert.match(results[attack], /^UNAVAILABLE/, attack);
        assert.match(results.undeclared, /^INVALID_ARGUMENT .*'--buffer-dir' is not accepted/);
        assert.match(results.path, /^INVALID_ARGUMENT .*'--source' is not accepted/);
        assert.match(results.oversized, /^RESOURCE_EXHAUSTED/);
        assert.notEqual(results.garbage, "answered");
        assert.notEqual(results.http1, "answered");
        // Every call of the flood is answered: run, or refused for want of a free task slot.
        assert.deepEqual(Object.keys(results.flood).filter((code) => !["OK", "RESOURCE_EXHAUSTED"].includes(code)), [], JSON.stringify(results.flood));
        assert.ok(results.flood.OK > 0, JSON.stringify(results.flood));
        assert.match(results.legitimate, /^OK /);
        const logs = containerLogs(executor);
        assert.match(logs, /Handshake failed with error SSL_ERROR_SSL: .*WRONG_VERSION_NUMBER/);
        assert.match(logs, /PEER_DID_NOT_RETURN_A_CERTIFICATE/);
        assert.match(logs, /CERTIFICATE_VERIFY_FAILED/);
        const state = inspectContainers(s.prefix).find((c) => c.name === executor);
        assert.deepEqual([state?.health, state?.restartCount], ["healthy", 0]);
    });

    it("runs ingestion end to end: both catalog formats, their weather, both statistics, each task where the executor config puts it", async () => {
        const { tis } = await s.runDag("ingestion", ingestionDate);
        s.report.memoryAfterIngestionMiB = s.memoryMiB();
        const counts = await s.warehouseCounts();
        s.report.warehouseCounts = counts;
        assert.equal(counts.event, 956);
        assert.equal(counts.landslide_event, 956);
        // The weather is fetched at the events' own points: no location of its own.
        assert.equal(counts.location, 956);
        // The XLSX workbook is the CSV sample exported: both extractions buffer the same events.
        const day = ingestionDate.slice(0, 10);
        const events = (format: string) => `/b/${platform.bufferFiles.events.replace("{date}", day).replace("{format}", format)}`;
        docker("run", "--rm", "-v", `${s.outputs.bufferVolumeName}:/b:ro`, platform.images.debian, "cmp", events("csv"), events("xlsx"));
        // Every hour the fake archive served with a value is one observation, staged once and
        // derived into one weather row, its datetime and four soil bands; its gaps add nothing.
        const served = s.weatherServed();
        s.report.weatherServed = served;
        assert.ok(served.observations > 0.95 * 956 * 720 && served.observations <= 956 * 720, JSON.stringify(served));
        assert.equal(counts.data, served.observations);
        assert.equal(counts.weather_data, served.observations);
        assert.equal(counts.soil, 4 * served.observations);
        assert.equal(counts.datetime, 956 + served.observations);
        // The loader's own account, from its executor run log: every served observation inserted.
        const runLogs = docker("exec", s.outputs.executorContainer, "sh", "-c", `cat ${platform.paths.logs}/executor/*_weather*`);
        const loaded = runLogs.match(new RegExp(`import_weather: read=${served.observations} inserted=${served.observations} .*seconds=([\\d.]+) rows_per_second=(\\d+)`));
        assert.ok(loaded, `no import_weather run inserted ${served.observations} rows:\n${runLogs.slice(-2000)}`);
        s.report.weatherLoad = { seconds: Number(loaded[1]), rowsPerSecond: Number(loaded[2]), fetch: runLogs.match(/fetch_weather: selected=[1-9]\d* .*/)?.[0] };
        assert.ok(counts.event_stats_country_year > 0);
        const [total] = await query<{ n: string }>(s.adminUrl, "SELECT sum(events) AS n FROM event_stats_country_year");
        assert.equal(Number(total.n), 956, "the Spark statistic counts every event");
        const precipitation = (relation: string) =>
            query(s.adminUrl, `SELECT country, year, events, mean_precipitation_3d_mm::text, mean_precipitation_7d_mm::text,
                                      mean_precipitation_30d_mm::text, max_precipitation_30d_mm::text FROM ${relation} ORDER BY 1, 2`);
        const precipitationStats = await precipitation("precipitation_stats_country_year");
        assert.ok(precipitationStats.length > 0);
        assert.deepEqual(precipitationStats, await precipitation("landslide_precipitation_country_year"));
        const [analystRead] = await query<{ n: string }>(s.outputs.warehouseAnalystUrl, "SELECT count(*) AS n FROM precipitation_stats_country_year");
        assert.equal(Number(analystRead.n), precipitationStats.length, "the analyst role reads the statistics");
        const celery = s.config.airflow.executor === "CeleryExecutor";
        const workers = Array.from({ length: s.config.airflow.celeryWorkers }, (_, i) => `${platform.aliases.airflowWorker}-${i + 1}`);
        for (const ti of tis) {
            if (celery) assert.ok(workers.includes(String(ti.hostname)), `${ti.task_id} ran on ${ti.hostname}, not on a Celery worker`);
            else assert.equal(ti.hostname, platform.aliases.airflowScheduler, `${ti.task_id} ran on ${ti.hostname}`);
        }
    });

    it("keeps Airflow and executor logs on the log volume with the ownership and mode the stack set", () => {
        const script = [
            "cd /v && stat -c '%n %u:%g %a' . airflow executor spark",
            "echo files:$(find airflow -type f | wc -l):$(find executor -type f -name '*.log' | wc -l)",
            "echo world-writable:$(find . -perm -0002 ! -type l | wc -l)",
        ].join("; ");
        const out = docker("run", "--rm", "-v", `${s.outputs.logVolumeName}:/v:ro`, platform.images.debian, "sh", "-c", script);
        for (const dir of [".", "airflow", "executor", "spark"]) {
            assert.match(out, new RegExp(`^${dir.replace(".", "\\.")} 50000:0 2775$`, "m"), out);
        }
        const [, airflowFiles, executorLogs] = out.match(/files:(\d+):(\d+)/)!.map(Number);
        assert.ok(airflowFiles > 0, "no Airflow task logs");
        assert.ok(executorLogs > 0, "no executor run logs");
        assert.match(out, /world-writable:0/);
    });

    it("plans nothing on a preview of unchanged code, then changes nothing, recreates no container and prints no warning on up", async () => {
        const ids = s.containerIds();
        const plan = await s.engine.preview(s.overrides);
        assert.deepEqual(changed(plan), {});
        assert.ok(Object.keys(plan.ops).length > 0, "the preview reported no resource at all");
        assert.deepEqual(plan.warnings, []);
        const deployment = await s.up("noopApply");
        assert.deepEqual(changed(deployment), {});
        assert.deepEqual(s.containerIds(), ids, "a container was recreated");
        assert.deepEqual(deployment.warnings, []);
    });
}

/** A DAG edit: only the DAGs' sync container replaced, Airflow kept running, the next run on the new version. */
function dagEditApplies(s: PlatformStack): void {
    it("applies a DAG edit in seconds: only the DAGs' sync container replaced, Airflow kept running, the next run uses the new version", async () => {
        const p = s.prefix;
        const marker = `# e2e edit ${Date.now()}`;
        fs.appendFileSync(path.join(s.engine.projectDir, "dags", "ping_grpc.py"), `\n${marker}\n`);
        const ids = s.containerIds();
        const applied = await s.up("dagEdit");
        assert.deepEqual(byName(changed(applied)), { [`${p}-dags-sync`]: "replace" });
        const recreated = Object.keys(ids).filter((name) => s.containerIds()[name] !== ids[name]);
        assert.deepEqual(recreated, [`${p}-dags-sync`]);
        const started = performance.now();
        await waitFor("the DAG processor to parse the edited ping_grpc", 180_000, async () => {
            const source = await s.airflow.call<{ content: string }>("GET", "/dagSources/ping_grpc");
            return source.content.includes(marker) ? source : undefined;
        }, 1000);
        s.report.seconds.dagEditParsed = Number(((performance.now() - started) / 1000).toFixed(1));
        const { tis } = await s.runDag("ping_grpc", new Date().toISOString(), 300_000);
        assert.ok(tis.every((t) => t.state === "success"));
        assertAllHealthy(s);
    });
}

function memorySummary(usage: Record<string, number> | undefined): string {
    if (!usage) return "n/a";
    const total = Object.values(usage).reduce((a, b) => a + b, 0);
    return `${total.toFixed(0)} MiB (${Object.entries(usage).map(([n, m]) => `${n} ${m.toFixed(0)}`).join(", ")})`;
}

function writeReport(): void {
    fs.mkdirSync(reportDir, { recursive: true });
    report.finishedAt = new Date().toISOString();
    const reported = server ? [...stacks, server] : stacks;
    report.stacks = Object.fromEntries(reported.map((s) => [s.stack, s.report]));
    fs.writeFileSync(path.join(reportDir, "e2e-report.json"), JSON.stringify(report, null, 2));
    const engine = report.engine as { name: string; version: string } | undefined;
    const lines = [`# End-to-end report, ${report.startedAt}`, "", `Engine: **${engine?.name ?? "n/a"}**, ${engine?.version ?? ""}`, ""];
    for (const s of reported) {
        const seconds = s.report.seconds;
        lines.push(
            `## ${s.stack}${s.overrides.length ? ` (suite overrides: ${s.overrides.join(", ")})` : ""}`,
            "",
            `- first bring-up to all healthy (${s === prod ? "images built on dev's build cache, dev running beside it" : "no project image, no build cache"}): ${seconds.coldBringUp ?? "n/a"} s`,
            `- warm bring-up to all healthy (images cached, fresh volumes): ${seconds.warmBringUp ?? "n/a"} s`,
            `- second apply of unchanged code: ${seconds.noopApply ?? "n/a"} s`,
            `- memory in use just after the first ingestion run: ${memorySummary(s.report.memoryAfterIngestionMiB as Record<string, number> | undefined)}`,
            `- weather of the first ingestion run: ${JSON.stringify(s.report.weatherLoad ?? "n/a")}`,
            ...(seconds.postgresReplace === undefined ? [] : [`- PostgreSQL container replacement: ${seconds.postgresReplace} s`]),
            ...(seconds.pipelineScriptEdit === undefined ? [] : [`- up after a pipeline script edit (executor rebuilt from cache and replaced): ${seconds.pipelineScriptEdit} s`]),
            ...(seconds.comeBack === undefined ? [] : [`- up after destroy, onto the kept data: ${seconds.comeBack} s`]),
            "",
            "| image | build s (cold) | size MB |",
            "|---|---|---|",
            ...Object.entries(s.report.images).map(([n, i]) => `| ${n} | ${i.buildSeconds} | ${i.sizeMB} |`),
            "",
            "| DAG run | seconds | tasks (state, tries, seconds, host) |",
            "|---|---|---|",
            ...Object.entries(s.report.dagRuns).map(
                ([id, r]) =>
                    `| ${r.dagId} ${id} | ${r.seconds} | ${Object.entries(r.tasks)
                        .map(([t, x]) => `${t}: ${x.state}, ${x.tries}, ${x.seconds?.toFixed?.(1)}, ${x.hostname}`)
                        .join("; ")} |`,
            ),
            "",
        );
    }
    fs.writeFileSync(path.join(reportDir, "e2e-report.md"), lines.join("\n"));
}

before(async () => {
    provideImages();
    for (const s of stacks) {
        await s.open(engineName);
        await s.teardown(); // leftovers of an interrupted run
    }
    report.engine = { name: dev.engine.name, version: dev.engine.version };
    console.log(`# end-to-end engine: ${dev.engine.version}`);
});

after(async () => {
    writeReport();
    for (const s of stacks) await s.teardown();
});

describe("a stack file with mistakes", () => {
    it("ends the run with only the list of problems, each once, and no stack trace", async () => {
        const engine = await openStack(engineName, {
            projectDir: projectRoot,
            stack: "dev",
            workDir: path.join(projectRoot, ".e2e", engineName, "broken-dev"),
            namePrefix: dev.prefix,
        });
        const stackFile = path.join(engine.projectDir, "Pulumi.dev.yaml");
        let text = fs.readFileSync(stackFile, "utf8");
        const mistakes: [string, string][] = [
            ["    workers: 1\n", "    workers: -2\n"],
            ["    workerMemory: 1g\n", "    workerMemory: lots\n"],
            ["    hostPort: 18080\n", `    hostPort: ${dev.config.postgres.hostPort}\n`],
            ["config:\n", "config:\n  vpe:colour: blue\n"],
        ];
        for (const [from, to] of mistakes) {
            assert.ok(text.includes(from), `Pulumi.dev.yaml no longer has ${JSON.stringify(from)}: update this test`);
            text = text.replace(from, to);
        }
        fs.writeFileSync(stackFile, text);
        const problems = [
            "vpe:spark.workers: Too small",
            "vpe:spark.workerMemory: must be a Spark memory size",
            "vpe:colour: unknown key",
            `vpe:airflow.hostPort: host port ${dev.config.postgres.hostPort} is already used by vpe:postgres.hostPort`,
        ];
        await assert.rejects(engine.preview(), (err: Error) => {
            for (const problem of problems) {
                assert.equal(err.message.split(problem).length - 1, 1, `"${problem}" is not reported exactly once:\n${err.message}`);
            }
            assert.doesNotMatch(err.message, /^\s+at .+:\d+:\d+\)?$/m, "a stack trace was printed");
            return true;
        });
    });
});

describe(`the dev stack on a real Docker engine`, { timeout: 60 * 60_000 }, () => {
    before(() => dev.makeCold());

    it("comes up cold with every container healthy", async () => {
        await dev.up("coldBringUp");
        assertAllHealthy(dev);
    });

    platformChecks(dev);

    it("status: one screen says all is well, exit 0, and shows no secret", async () => {
        const run = await dev.command("status", "--json");
        dev.report.seconds.statusHealthy = Number(run.seconds.toFixed(2));
        assert.equal(run.code, 0, `${run.stdout}${run.stderr}`);
        const status = JSON.parse(run.stdout) as { ok: boolean; problems: string[] };
        assert.equal(status.ok, true);
        assert.deepEqual(status.problems, []);
        for (const name of dev.outputs.containers as string[]) assert.ok(run.stdout.includes(name), `${name} is not in the status`);
        const screen = await dev.command("status");
        assert.equal(screen.code, 0, screen.stdout);
        assert.ok(screen.stdout.includes(dev.outputs.airflowUrl), "the Airflow URL is not on the screen");
        for (const run_ of [run, screen]) {
            for (const secret of [dev.outputs.postgresAdminPassword, dev.outputs.airflowAdminPassword]) {
                assert.ok(!run_.stdout.includes(secret) && !run_.stderr.includes(secret), "the status printed a password");
            }
        }
    });

    it("status: names a stopped Spark worker and why, exit 1, and is well again once it runs", async () => {
        const worker = `${dev.prefix}-${platform.aliases.sparkWorker}-1`;
        docker("stop", worker);
        try {
            const run = await dev.command("status", "--json");
            dev.report.seconds.statusUnwell = Number(run.seconds.toFixed(2));
            assert.equal(run.code, 1, run.stdout);
            const status = JSON.parse(run.stdout) as { ok: boolean; problems: string[] };
            assert.equal(status.ok, false);
            assert.ok(status.problems.some((p) => p.startsWith(`${worker}: exited`)), `no problem names ${worker}: ${status.problems.join("; ")}`);
            // The master counts a worker alive until it notices the connection is gone.
            await waitFor("the status to count 0 of 1 Spark workers", 90_000, async () => {
                const problems = (JSON.parse((await dev.command("status", "--json")).stdout) as { problems: string[] }).problems;
                return problems.includes("spark: 0 of 1 workers alive") ? problems : undefined;
            });
        } finally {
            docker("start", worker);
        }
        await waitFor(`${worker} healthy`, 120_000, () => (inspectContainers(dev.prefix).find((c) => c.name === worker)?.health === "healthy" ? true : undefined));
        const again = await waitFor("status all well again", 60_000, async () => {
            const run = await dev.command("status", "--json");
            return run.code === 0 ? run : undefined;
        });
        assert.equal(again.code, 0);
    });

    it("removes task and executor logs past the retention on the maintenance schedule, keeps the rest, and has Spark clean its own", async () => {
        const maintenance = `${dev.prefix}-${platform.aliases.maintenance}`;
        const logFiles = (sub: string) =>
            docker("exec", maintenance, "find", `${platform.paths.logs}/${sub}`, "-type", "f", "-name", "*.log").split("\n").filter(Boolean).sort();
        const taskLogs = logFiles("airflow");
        const runLogs = logFiles("executor");
        assert.ok(taskLogs.length >= 2 && runLogs.length >= 2, `too few logs to groom: ${taskLogs.length} task, ${runLogs.length} executor`);
        const aged = [taskLogs[0], runLogs[0]];
        // As root: the files belong to the Airflow and executor users.
        docker("exec", "--user", "0", maintenance, "touch", "-d", `${dev.config.logs.retentionDays + 1} days ago`, ...aged);
        const since = new Date().toISOString();
        docker("restart", maintenance); // the loop grooms at start, then every groomEveryMinutes
        const groomed = await waitFor("the groomer's report", 60_000, () => {
            const logs = docker("logs", "--since", since, maintenance);
            return /vpe-groom-logs: removed \d+ files/.test(logs) ? logs : undefined;
        }, 1000);
        assert.match(groomed, /vpe-groom-logs: removed [1-9]\d* files/);
        const left = [...logFiles("airflow"), ...logFiles("executor")];
        for (const file of aged) assert.ok(!left.includes(file), `${file} outlived the retention`);
        for (const file of [...taskLogs.slice(1), ...runLogs.slice(1)]) assert.ok(left.includes(file), `${file} was removed too early`);
        const status = JSON.parse((await dev.command("status", "--json")).stdout) as { volumes: unknown };
        assert.ok(JSON.stringify(status.volumes).includes(dev.outputs.logVolumeName), "the status does not report the log volume");
        // Spark's work folders belong to its workers, which clean them: the JVM has the setting.
        const ttl = dev.config.logs.retentionDays * 86400;
        const worker = docker("top", `${dev.prefix}-${platform.aliases.sparkWorker}-1`, "-eo", "pid,args");
        assert.match(worker, new RegExp(`-Dspark\\.worker\\.cleanup\\.enabled=true .*-Dspark\\.worker\\.cleanup\\.appDataTtl=${ttl}`));
    });

    it("restarts a killed executor, the retried task succeeds, and the run of the same sample fetches nothing again and inserts nothing twice", async () => {
        const executorName = `${dev.prefix}-executor`;
        const before = inspectContainers(dev.prefix).find((c) => c.name === executorName)!;
        const counts = await dev.warehouseCounts();
        const requests = dev.weatherServed().requests;
        const started = performance.now();
        const runId = await dev.airflow.trigger("ingestion", "2024-06-02T00:00:00Z");
        // Crash the executor (SIGKILL to its process, not `docker stop`) again and again until the
        // first try of extract_csv has ended: that try cannot reach it, and Airflow retries.
        let kills = 0;
        await waitFor("first try of extract_csv to end", 300_000, async () => {
            const current = inspectContainers(dev.prefix).find((c) => c.name === executorName)!;
            if (current.running && current.pid > 0) {
                process.kill(current.pid, "SIGKILL");
                kills++;
            }
            const ti = (await dev.airflow.taskInstances("ingestion", runId)).task_instances.find((t) => t.task_id === "extract_csv");
            const ended = ti && (ti.try_number > 1 || ["up_for_retry", "success", "failed"].includes(String(ti.state)));
            return ended ? ti : undefined;
        }, 200);
        const { tis } = await dev.finishRun("ingestion", runId, started);
        const ti = tis.find((t) => t.task_id === "extract_csv")!;
        const afterKill = await waitFor("executor healthy again", 120_000, () => {
            const c = inspectContainers(dev.prefix).find((x) => x.name === executorName)!;
            return c.health === "healthy" ? c : undefined;
        });
        dev.report.executorFault = { kills, restarts: afterKill.restartCount - before.restartCount, extractTries: ti.try_number };
        assert.ok(afterKill.restartCount > before.restartCount, "Docker did not restart the executor");
        assert.ok(ti.try_number >= 2, `extract_csv was not retried (try ${ti.try_number})`);
        assert.equal(ti.state, "success");
        assert.deepEqual(await dev.warehouseCounts(), counts);
        assert.equal(dev.weatherServed().requests, requests, "the run asked the weather archive again");
    });

    it("rotates the CA, every certificate and key with vpe:tls.generation and a plain up: only their holders replaced, DAGs run over the new ones", async () => {
        const p = dev.prefix;
        const holders = [`${p}-executor`, ...airflowServiceAliases.map((a) => `${p}-${a}`)];
        const caFile = `${platform.tls.dir}/${platform.tls.caFile}`;
        const caIn = (name: string) => docker("exec", name, "cat", caFile);
        const before = { ids: dev.containerIds(), ca: caIn(`${p}-executor`) };
        await dev.up("tlsRotation", ["vpe:tls.generation=2"]);
        const rotated = { ids: dev.containerIds(), ca: caIn(`${p}-executor`) };
        assert.notEqual(rotated.ca, before.ca, "the executor still trusts the old CA");
        for (const name of holders) {
            assert.notEqual(rotated.ids[name], before.ids[name], `${name} was not replaced`);
            assert.equal(caIn(name), rotated.ca, `${name} holds another CA`);
        }
        for (const name of [`${p}-postgres`, `${p}-spark-master`, `${p}-maintenance`]) {
            assert.equal(rotated.ids[name], before.ids[name], `${name} was replaced`);
        }
        await dev.runDag("ping_grpc", "2024-06-03T00:00:00Z", 300_000);
        // Back to the suite's configuration: generation 1 again means yet another CA.
        await dev.up("tlsRotationBack");
        assert.notEqual(caIn(`${p}-executor`), rotated.ca);
        await dev.runDag("ping_grpc", "2024-06-04T00:00:00Z", 300_000);
    });

    it("sees a hung triggerer fail its probe, and pass again once it runs on", async () => {
        const name = `${dev.prefix}-${platform.aliases.airflowTriggerer}`;
        const health = () => JSON.parse(docker("inspect", "--format", "{{json .State.Health}}", name)) as {
            Status: string;
            FailingStreak: number;
            Log: { ExitCode: number; Output: string }[];
        };
        assert.equal(health().Status, "healthy");
        // Frozen, not killed: a process that exits is restarted by Docker; only the probe can see
        // a job that stopped beating. Host PIDs, as the executor test uses.
        const pids = docker("top", name, "-eo", "pid,args")
            .split("\n")
            .filter((line) => line.includes("airflow triggerer"))
            .map((line) => Number(line.trim().split(/\s+/)[0]));
        assert.ok(pids.length > 0, `no triggerer process in ${name}`);
        const frozenAt = performance.now();
        for (const pid of pids) process.kill(pid, "SIGSTOP");
        let failed;
        try {
            failed = await waitFor(`${name} failing its probe`, 120_000, () => {
                const h = health();
                return h.FailingStreak > 0 ? h : undefined;
            }, 1000);
        } finally {
            for (const pid of pids) process.kill(pid, "SIGCONT");
        }
        dev.report.seconds.hungTriggererProbeFailed = Number(((performance.now() - frozenAt) / 1000).toFixed(1));
        assert.match(failed.Log.at(-1)!.Output, new RegExp(`TriggererJob on ${platform.aliases.airflowTriggerer}: last heartbeat \\d+ s ago`));
        await waitFor(`${name} passing its probe again`, 60_000, () => {
            const h = health();
            return h.Status === "healthy" && h.FailingStreak === 0 && h.Log.at(-1)!.ExitCode === 0 ? h : undefined;
        }, 1000);
    });

    it("restarts a hung scheduler: its probe ends it once silent for the restart limit, Docker starts it again, and DAGs run", async () => {
        const name = `${dev.prefix}-${platform.aliases.airflowScheduler}`;
        const restarts = () => inspectContainers(dev.prefix).find((c) => c.name === name)!.restartCount;
        const before = restarts();
        // Frozen, as a scheduler stuck on its database is: alive, and silent.
        const pids = docker("top", name, "-eo", "pid,args")
            .split("\n")
            .filter((line) => line.includes("airflow scheduler"))
            .map((line) => Number(line.trim().split(/\s+/)[0]));
        assert.ok(pids.length > 0, `no scheduler process in ${name}`);
        const frozenAt = performance.now();
        for (const pid of pids) process.kill(pid, "SIGSTOP");
        try {
            await waitFor(`${name} ended by its probe and restarted`, (platform.airflowProbes.schedulerRestartAfterSeconds + 120) * 1000, () => (restarts() > before ? true : undefined), 2000);
        } finally {
            for (const pid of pids) {
                try {
                    process.kill(pid, "SIGCONT"); // only if the probe did not end it
                } catch {
                    // ended: nothing to resume
                }
            }
        }
        dev.report.seconds.hungSchedulerRestarted = Number(((performance.now() - frozenAt) / 1000).toFixed(1));
        await allHealthyAgain(dev, "the scheduler's restart");
        await dev.runDag("ping_grpc", "2024-06-08T00:00:00Z", 300_000);
    });

    it("previews exactly what up will do for everyday edits, and applies what it planned", async () => {
        const p = dev.prefix;
        const airflowContainers = ["airflow-init", ...airflowServiceAliases].map((a) => `${p}-${a}`);
        const sparkContainers = [`${p}-spark-master`, ...Array.from({ length: dev.config.spark.workers }, (_, i) => `${p}-spark-worker-${i + 1}`)];
        const replaced = (names: string[]) => Object.fromEntries(names.map((n) => [n, "replace"]));
        // What a reviewer must be told: the images that contain the edit, and only their containers.
        const edits: { what: string; file: string; text: string; plan: Record<string, string> }[] = [
            { what: "a DAG file (synced into its volume)", file: "dags/ping_grpc.py", text: "\n# reviewed\n", plan: { [`${p}-dags-sync`]: "replace" } },
            {
                what: "a pipeline script",
                file: "docker/executor/pipelines/ingestion/ping_env.py",
                text: "\n# reviewed\n",
                plan: { [`${p}-executor-image`]: "update", [`${p}-executor`]: "replace" },
            },
            {
                what: "the Spark job (Airflow submits it)",
                file: "docker/spark/jobs/events_per_country_year.py",
                text: "\n# reviewed\n",
                plan: { [`${p}-airflow-image`]: "update", ...replaced(airflowContainers) },
            },
            {
                what: "the warehouse SQL (a new migration)",
                file: "warehouse/migrations/0099_reviewed.sql",
                text: "CREATE TABLE reviewed (id int);\n",
                plan: { [`${p}-warehouse-migrations`]: "update" },
            },
            {
                what: "platform.json (read by every image; values unchanged)",
                file: "docker/platform.json",
                text: "\n",
                plan: {
                    ...Object.fromEntries(["airflow", "executor", "spark"].map((i) => [`${p}-${i}-image`, "update"])),
                    ...replaced([...airflowContainers, ...sparkContainers, `${p}-executor`]),
                },
            },
        ];
        const plans: Record<string, unknown> = {};
        for (const edit of edits) {
            const file = path.join(dev.engine.projectDir, edit.file);
            const original = fs.existsSync(file) ? fs.readFileSync(file) : undefined;
            fs.appendFileSync(file, edit.text);
            try {
                const plan = await dev.engine.preview(dev.overrides);
                plans[edit.what] = byName(changed(plan));
                assert.deepEqual(byName(changed(plan)), edit.plan, `preview after editing ${edit.what}`);
            } finally {
                if (original === undefined) fs.rmSync(file);
                else fs.writeFileSync(file, original);
            }
        }
        dev.report.previewPlans = plans;

        const script = edits[1];
        fs.appendFileSync(path.join(dev.engine.projectDir, script.file), script.text);
        const ids = dev.containerIds();
        const plan = await dev.engine.preview(dev.overrides);
        const applied = await dev.up("pipelineScriptEdit");
        assert.deepEqual(byName(changed(applied)), byName(changed(plan)), "up did something else than preview planned");
        const recreated = Object.keys(ids).filter((name) => dev.containerIds()[name] !== ids[name]);
        assert.deepEqual(recreated, [`${p}-executor`]);
        assertAllHealthy(dev);
    });

    dagEditApplies(dev);

    it("moves PostgreSQL to another minor release and back with a plain up: only PostgreSQL and maintenance replaced, rows and DAG history intact", async () => {
        const serverVersion = async () => (await query<{ server_version: string }>(dev.adminUrl, "SHOW server_version"))[0].server_version;
        const pinned = platform.images.postgres;
        const other = "postgres:15.18-bookworm"; // Debian bookworm's own release; the pin is its security update
        assert.notEqual(pinned, other, "the pinned PostgreSQL is 15.18: pick another release for this test");
        const imagesFile = path.join(dev.engine.projectDir, "docker", "images.json");
        const original = fs.readFileSync(imagesFile, "utf8");
        const counts = await dev.warehouseCounts();
        const runs = await dagRunIds(dev, "ingestion");
        const p = dev.prefix;
        const expectedPlan = { [`${p}-postgres-image`]: "replace", [`${p}-postgres`]: "replace", [`${p}-maintenance-image`]: "update", [`${p}-maintenance`]: "replace" };
        const moves: Record<string, unknown> = {};
        for (const [image, version] of [[other, "15.18"], [pinned, "15.20"]]) {
            fs.writeFileSync(imagesFile, original.replace(`"postgres": "${pinned}"`, `"postgres": "${image}"`));
            try {
                execFileSync(path.join(projectRoot, "scripts", "provide-images.sh"), ["postgres"], {
                    env: { ...process.env, VPE_IMAGES_FILE: imagesFile },
                    stdio: ["ignore", "ignore", "inherit"],
                });
                const plan = await dev.engine.preview(dev.overrides);
                assert.deepEqual(byName(changed(plan)), expectedPlan, `preview of the move to ${image}`);
                const ids = dev.containerIds();
                const applied = await dev.up(`postgres${version}`);
                assert.deepEqual(byName(changed(applied)), expectedPlan, `up to ${image}`);
                const recreated = Object.keys(ids).filter((name) => dev.containerIds()[name] !== ids[name]).sort();
                assert.deepEqual(recreated, [`${p}-maintenance`, `${p}-postgres`]);
            } finally {
                fs.writeFileSync(imagesFile, original);
            }
            assert.match(await serverVersion(), new RegExp(`^${version.replace(".", "\\.")}\\b`));
            assert.deepEqual(await dev.warehouseCounts(), counts);
            assert.deepEqual(await dagRunIds(dev, "ingestion"), runs);
            await dev.runDag("ping_grpc", `2024-07-0${Object.keys(moves).length + 1}T00:00:00Z`, 300_000);
            moves[image] = { seconds: dev.report.seconds[`postgres${version}`], serverVersion: await serverVersion() };
        }
        dev.report.postgresMinorMoves = moves;
        // Airflow's services lost their database for the replacement: a restarted one is "starting" a while.
        await allHealthyAgain(dev, "the PostgreSQL moves");
    });

    it("replaces the PostgreSQL container without losing a row", async () => {
        const before = await dev.warehouseCounts();
        const deployment = await dev.up("postgresReplace", ["vpe:postgres.sharedBuffers=192MB"]);
        const ops = changed(deployment);
        const replaced = Object.entries(ops).filter(([urn, op]) => op === "replace" && urn.endsWith(`::${dev.prefix}-postgres`));
        assert.equal(replaced.length, 1, `expected the postgres container to be replaced: ${JSON.stringify(ops)}`);
        assert.deepEqual(await dev.warehouseCounts(), before);
        const [setting] = await query<{ shared_buffers: string }>(dev.adminUrl, "SHOW shared_buffers");
        assert.equal(setting.shared_buffers, "192MB");
    });

    it("keeps the data volumes and their rows through destroy", async () => {
        const before = await dev.warehouseCounts();
        kept.counts = before;
        kept.statistics = await statistics(dev);
        kept.runs = await dagRunIds(dev, "ingestion");
        // Encrypted with this stack's Fernet key: the stack that comes back has another one.
        await dev.airflow.call("POST", "/variables", { key: keptVariable.key, value: keptVariable.value });
        await dev.destroy();
        assert.deepEqual(dev.serviceContainers(), [], "containers left after destroy");
        const status = await dev.command("status");
        assert.equal(status.code, 2, status.stdout);
        assert.match(status.stderr, /stack dev is not deployed/);
        const volumes = docker("volume", "ls", "-q", "--filter", `name=^${dev.prefix}-`).split("\n").sort();
        assert.deepEqual(volumes, ["airflow-keys", "backups", "buffer", "logs", "postgres-data"].map((v) => `${dev.prefix}-${v}`));
        // Read the kept cluster with a throwaway server on the volume (socket only, local trust).
        const count = docker(
            "run", "--rm", "--user", `${platform.users.postgres.uid}:${platform.users.postgres.gid}`,
            "-v", `${dev.prefix}-postgres-data:${platform.paths.postgresData}`, "--entrypoint", "bash", platform.images.postgres, "-c",
            `pg_ctl start -w -s -D "$PGDATA" -o "-c listen_addresses=" >/dev/null && psql -U postgres -d ${platform.databases.warehouse} -Atc "SELECT count(*) FROM landslide_event"; pg_ctl stop -s -D "$PGDATA" -m fast`,
        );
        assert.equal(Number(count), before.landslide_event);
    });

    it("comes back onto its kept data with a plain up: same rows and statistics, earlier runs, variables, one more ingestion", async () => {
        await dev.up("comeBack");
        assertAllHealthy(dev);
        // The kept roles now log in with the new stack's passwords.
        const [analystView] = await query<{ n: string }>(dev.outputs.warehouseAnalystUrl, "SELECT count(*) AS n FROM landslide_event");
        assert.equal(Number(analystView.n), kept.counts!.landslide_event);
        assert.deepEqual(await dev.warehouseCounts(), kept.counts);
        assert.deepEqual(await statistics(dev), kept.statistics);
        const runs = await dagRunIds(dev, "ingestion");
        assert.deepEqual(runs, kept.runs, "Airflow lost its earlier DAG runs");
        const variable = await dev.airflow.call<{ value: string }>("GET", `/variables/${keptVariable.key}`);
        assert.equal(variable.value, keptVariable.value, "a variable encrypted with the old Fernet key is unreadable");
        await dev.runDag("ingestion", "2024-06-04T00:00:00Z");
        assert.deepEqual(await dev.warehouseCounts(), kept.counts, "the same sample ingested again adds no row");
    });

    it("backs up, loses the data volume, and restores the same rows, statistics and DAG runs", async () => {
        const counts = await dev.warehouseCounts();
        const stats = await statistics(dev);
        const runs = await dagRunIds(dev, "ingestion");
        const backup = await dev.command("backup");
        assert.equal(backup.code, 0, backup.stderr);
        const set = backup.stdout.match(/set (\d{8}T\d{6}Z)/)?.[1];
        assert.ok(set, backup.stdout);
        const listed = await dev.command("backup", "--list");
        assert.match(listed.stdout, new RegExp(`^${set} .*${platform.databases.airflow}`, "m"));

        // A damaged copy of the set is refused before anything stops.
        const maintenance = `${dev.prefix}-${platform.aliases.maintenance}`;
        const damaged = "20000101T000000Z";
        const dir = platform.paths.backups;
        docker("exec", maintenance, "sh", "-c", `cp -r ${dir}/${set} ${dir}/${damaged} && truncate -s 4096 ${dir}/${damaged}/${platform.databases.warehouse}.dump`);
        const ids = dev.containerIds();
        const refused = await dev.command("restore", "--from", damaged, "--yes");
        assert.equal(refused.code, 1, refused.stdout);
        assert.match(refused.stderr, /does not match its checksum[\s\S]*nothing was changed/);
        assert.deepEqual(dev.containerIds(), ids);
        assertAllHealthy(dev);
        docker("exec", maintenance, "rm", "-r", `${dir}/${damaged}`);

        // The data volume is lost: the stack comes back empty, then the backup restores it.
        await dev.destroy();
        docker("volume", "rm", `${dev.prefix}-postgres-data`);
        await dev.up("afterDataLoss");
        assert.equal((await dev.warehouseCounts()).landslide_event, 0);
        // An empty platform: no run but the one its own schedule started (no DAG is created paused).
        assert.deepEqual((await dagRunIds(dev, "ingestion")).filter((id) => !id.startsWith("scheduled__")), []);
        const restored = await dev.command("restore", "--from", set, "--yes");
        dev.report.seconds.restore = Number(restored.seconds.toFixed(1));
        assert.equal(restored.code, 0, `${restored.stdout}${restored.stderr}`);
        assertAllHealthy(dev);
        assert.deepEqual(await dev.warehouseCounts(), counts);
        assert.deepEqual(await statistics(dev), stats);
        assert.deepEqual(await dagRunIds(dev, "ingestion"), runs, "Airflow lost its DAG runs");
        const variable = await dev.airflow.call<{ value: string }>("GET", `/variables/${keptVariable.key}`);
        assert.equal(variable.value, keptVariable.value, "a restored variable is unreadable under the stack's new Fernet key");
        await dev.runDag("ping_grpc", "2024-06-05T00:00:00Z", 300_000);
        const status = await dev.command("status");
        assert.equal(status.code, 0, status.stdout);
    });

    it("deletes everything on destroy when the user asks for it (vpe:deleteDataOnDestroy)", async () => {
        await dev.up("deleteDataOnDestroy", ["vpe:deleteDataOnDestroy=true"]);
        await dev.destroy();
        assert.deepEqual(inspectContainers(dev.prefix), [], "containers left after destroy");
        assert.equal(docker("volume", "ls", "-q", "--filter", `name=^${dev.prefix}-`), "", "volumes left after destroy");
    });

    it("comes up warm (images cached) on fresh volumes", async () => {
        await dev.up("warmBringUp");
        assertAllHealthy(dev);
    });
});

/** Whether Alertmanager has posted `alertname` (with `labels`) in `status` to the suite's webhook. */
function notified(received: AlertNotification[], status: "firing" | "resolved", alertname: string, labels: Record<string, string> = {}): boolean {
    return received.some((n) =>
        n.alerts.some((a) => a.status === status && a.labels.alertname === alertname && Object.entries(labels).every(([k, v]) => a.labels[k] === v)),
    );
}

/** Metrics, history and alerts: checks for a stack with vpe:metrics.enabled, after its ingestion run. */
function metricsChecks(s: PlatformStack): void {
    const prometheus = () => s.outputs.prometheusUrl as string;

    it("has Prometheus scrape every service and exporter (Airflow's StatsD, PostgreSQL, node, Redis with Celery), its UI and API on 127.0.0.1", async () => {
        assert.equal(prometheus(), `http://127.0.0.1:${s.config.metrics.hostPort}`);
        type Target = { labels: { job: string; instance: string }; health: string; lastError: string };
        const targets = await waitFor(`${s.stack}: every scrape target up`, 180_000, async () => {
            const body = (await (await fetch(`${prometheus()}/api/v1/targets`)).json()) as { data: { activeTargets: Target[] } };
            const down = body.data.activeTargets.filter((t) => t.health !== "up");
            if (down.length > 0) throw new Error(down.map((t) => `${t.labels.instance}: ${t.health} ${t.lastError}`).join("; "));
            return body.data.activeTargets;
        });
        const celery = s.config.airflow.executor === "CeleryExecutor";
        const jobs = ["airflow", "executor", "node", "postgres", "prometheus", "spark-master", "spark-worker", ...(celery ? ["redis"] : []), ...(s.config.metrics.containers ? ["containers"] : [])];
        assert.deepEqual([...new Set(targets.map((t) => t.labels.job))].sort(), jobs.sort());
        if (celery) {
            // The exporter logs in to the broker, which the Celery workers hold connections to.
            const [clients] = await waitFor(`${s.stack}: Redis' figures`, 60_000, async () => {
                const [up] = await promQuery(prometheus(), "redis_up");
                return up?.value === 1 ? promQuery(prometheus(), "redis_connected_clients") : undefined;
            });
            assert.ok(clients.value > 1, `${clients.value} Redis clients`);
        }
        assert.equal(targets.filter((t) => t.labels.job === "spark-worker").length, s.config.spark.workers);
        const ui = await fetch(`${prometheus()}/graph`);
        assert.equal(ui.status, 200);
        assert.match(await ui.text(), /<title>Prometheus/);
    });

    it("holds the ingestion run: its duration, each task's, the executor's task counts, the warehouse's rows and Spark's alive workers", async () => {
        const run = Object.values(s.report.dagRuns).find((r) => r.dagId === "ingestion" && Object.values(r.tasks).every((t) => t.state === "success"));
        assert.ok(run, "no successful ingestion run to look for");
        // Every successful ingestion run (the triggered one and the scheduled one) with its duration:
        // Airflow sends a StatsD sample as each run ends, Prometheus has it a scrape later.
        const seen = await waitFor(`${s.stack}: every successful ingestion run's duration in Prometheus`, 180_000, async () => {
            const runs = await s.airflow.call<{ dag_runs: { start_date: string; end_date: string }[] }>("GET", "/dags/ingestion/dagRuns?state=success&limit=100");
            const [count] = await promQuery(prometheus(), 'airflow_dagrun_duration_count{dag_id="ingestion", status="success"}');
            const [sum] = await promQuery(prometheus(), 'airflow_dagrun_duration_sum{dag_id="ingestion", status="success"}');
            const seconds = runs.dag_runs.reduce((total, r) => total + (Date.parse(r.end_date) - Date.parse(r.start_date)) / 1000, 0);
            return count?.value === runs.dag_runs.length ? { runs: runs.dag_runs.length, seconds, sum: sum.value } : undefined;
        });
        // Airflow times the run itself, a moment before it records its end date.
        assert.ok(Math.abs(seen.sum - seen.seconds) <= 2 * seen.runs, JSON.stringify(seen));
        const tasks = await promQuery(prometheus(), 'airflow_task_duration_count{dag_id="ingestion"}');
        assert.deepEqual(tasks.map((t) => t.metric.task_id).sort(), Object.keys(run.tasks).sort());
        const started = await promQuery(prometheus(), "sum by (task) (vpe_executor_tasks_started_total)");
        const byTask = Object.fromEntries(started.map((r) => [r.metric.task, r.value]));
        for (const task of ["extract_catalog", "import_events", "fetch_weather", "import_weather"]) assert.ok(byTask[task] >= 1, `${task}: ${JSON.stringify(byTask)}`);
        // The one failure is the run made to fail first: ping_env_fails' task, exit 3.
        const failed = await promQuery(prometheus(), "vpe_executor_tasks_failed_total > 0");
        assert.deepEqual(failed.map((f) => [f.metric.task, f.metric.reason, f.value]), [["ping_env", "exit", 1]]);
        const [slots] = await promQuery(prometheus(), "vpe_executor_task_slots");
        assert.equal(slots.value, s.config.executor.maxConcurrentTasks);
        const [alive] = await promQuery(prometheus(), "metrics_master_aliveWorkers_Value");
        assert.equal(alive.value, s.config.spark.workers);
        // The exporter counts as the read-only monitoring role, once a minute.
        const counts = await s.warehouseCounts();
        const rows = await waitFor(`${s.stack}: the warehouse's row counts in Prometheus`, 180_000, async () => {
            const series = await promQuery(prometheus(), "vpe_warehouse_rows");
            const inPrometheus = Object.fromEntries(series.map((r) => [r.metric.relation, r.value]));
            return Object.entries(counts).every(([table, n]) => inPrometheus[table] === n) ? inPrometheus : undefined;
        });
        assert.equal(rows.landslide_event, 956);
        const [size] = await promQuery(prometheus(), `pg_database_size_bytes{datname="${platform.databases.warehouse}"}`);
        assert.ok(size.value > 0, "no warehouse size");
        s.report.metrics = { ingestionRuns: seen.runs, ingestionSecondsInPrometheus: seen.sum, taskDurations: tasks.length, warehouseBytes: size.value };
    });

    it("holds every container's restarts as the engine counts them, the crashed one's included, its memory and its CPU", async () => {
        const names = [...(s.outputs.containers as string[])].sort();
        const perContainer = async (expr: string) => Object.fromEntries((await promQuery(prometheus(), expr)).map((r) => [r.metric.name, r.value]));
        const running = await waitFor(`${s.stack}: every container running in Prometheus`, 120_000, async () => {
            const up = await perContainer("vpe_container_running == 1");
            return Object.keys(up).length === names.length ? Object.keys(up).sort() : undefined;
        });
        assert.deepEqual(running, names);
        // The engine's counts and Prometheus' agree once a scrape has passed since the last restart.
        const restarts = await waitFor(`${s.stack}: Prometheus' restart counts equal the engine's`, 120_000, async () => {
            const engine = Object.fromEntries(inspectContainers(s.prefix).filter((c) => names.includes(c.name)).map((c) => [c.name, c.restartCount]));
            const scraped = await perContainer("vpe_container_restarts_total");
            return names.every((n) => scraped[n] === engine[n]) ? scraped : undefined;
        });
        assert.ok(restarts[crashedContainer(s)] >= 2, `${crashedContainer(s)}: ${restarts[crashedContainer(s)]} restarts`);
        const [memory, limits, cpu] = await Promise.all(["vpe_container_memory_bytes", "vpe_container_memory_limit_bytes", "vpe_container_cpu_seconds_total"].map(perContainer));
        for (const name of names) {
            assert.ok(memory[name] > 0, `${name}: no memory in use`);
            assert.ok(cpu[name] > 0, `${name}: no CPU time`);
        }
        const limited = Object.keys(limits);
        assert.ok(limited.includes(`${s.prefix}-${platform.aliases.executor}`), `limits: ${limited.join(", ")}`);
        for (const name of limited) assert.ok(memory[name] < limits[name], `${name}: ${memory[name]} of ${limits[name]} bytes`);
        s.report.metrics = { ...(s.report.metrics as object), containersMemoryMiBInPrometheus: Math.round(Object.values(memory).reduce((a, b) => a + b, 0) / 2 ** 20) };
    });

    it("holds the newest backup's time once a backup is taken, and how full the volumes' filesystem is", async () => {
        const backup = await s.command("backup");
        assert.equal(backup.code, 0, backup.stderr);
        const set = backup.stdout.match(/set (\d{8}T\d{6}Z)/)![1];
        const setTime = Date.parse(`${set.slice(0, 4)}-${set.slice(4, 6)}-${set.slice(6, 11)}:${set.slice(11, 13)}:${set.slice(13)}`) / 1000;
        // The maintenance loop writes its state each tick; Prometheus reads it a scrape later.
        const newest = await waitFor(`${s.stack}: the new set's time in Prometheus`, 180_000, async () => {
            const [sample] = await promQuery(prometheus(), "vpe_backup_newest_timestamp_seconds");
            return sample && sample.value >= setTime ? sample.value : undefined;
        });
        assert.ok(newest - setTime < 600, `newest set at ${newest}, taken at ${setTime}`);
        const [failed] = await promQuery(prometheus(), "vpe_backup_last_failure_timestamp_seconds");
        assert.equal(failed.value, 0);
        const [interval] = await promQuery(prometheus(), "vpe_backup_interval_seconds");
        assert.equal(interval.value, s.config.backup.everyHours * 3600);
        const filesystem = (metric: string) => promQuery(prometheus(), `${metric}{mountpoint="${platform.paths.metricsTextfiles}"}`);
        const [[avail], [size]] = await Promise.all([filesystem("node_filesystem_avail_bytes"), filesystem("node_filesystem_size_bytes")]);
        assert.ok(avail.value > 0 && avail.value < size.value, `${avail.value} of ${size.value} bytes free`);
        s.report.metrics = { ...(s.report.metrics as object), volumesFilesystemFreeRatio: Number((avail.value / size.value).toFixed(3)) };
    });

    it("has raised the failed run's alert at the webhook and resolved it; raises a lost Spark worker's and resolves it once the worker is back", async () => {
        // The failed run and the crashes were before the platform checks: their 5-minute alert windows are over by now.
        await waitFor(`${s.stack}: the failed run's and the crashed container's alerts fired and resolved at the webhook`, 600_000, () => {
            const received = s.alertsReceived();
            const both = (alertname: string, labels: Record<string, string>) => notified(received, "firing", alertname, labels) && notified(received, "resolved", alertname, labels);
            return both("AirflowDagRunFailed", { dag_id: "ping_env_fails" }) && both("ContainerRestarting", { name: crashedContainer(s) }) ? true : undefined;
        }, 5000);
        const worker = `${s.prefix}-${platform.aliases.sparkWorker}-${s.config.spark.workers}`;
        const started = performance.now();
        docker("stop", worker);
        try {
            await waitFor(`${s.stack}: SparkWorkerLost firing at the webhook`, 600_000, () => (notified(s.alertsReceived(), "firing", "SparkWorkerLost") ? true : undefined), 5000);
            s.report.seconds.workerLostAlertFiring = Number(((performance.now() - started) / 1000).toFixed(1));
        } finally {
            docker("start", worker);
        }
        await waitFor(`${s.stack}: SparkWorkerLost resolved at the webhook`, 600_000, () => (notified(s.alertsReceived(), "resolved", "SparkWorkerLost") ? true : undefined), 5000);
        s.report.seconds.workerLostAlertResolved = Number(((performance.now() - started) / 1000).toFixed(1));
        // Those the faults raised (a worker stopped long enough is also a target down); not the machine's own, say a full disk.
        const raised = 'ALERTS{alertstate="firing", alertname=~"AirflowDagRunFailed|AirflowTaskFailed|SparkWorkerLost|ScrapeTargetDown|ContainerRestarting"}';
        await waitFor(`${s.stack}: none of the raised alerts firing`, 300_000, async () => ((await promQuery(prometheus(), raised)).length === 0 ? true : undefined), 5000);
        await allHealthyAgain(s, `${worker}'s stop`);
    });
}

/** The container crashLoop kills: node_exporter, whose state is the files maintenance writes. */
const crashedContainer = (s: PlatformStack) => `${s.prefix}-${platform.aliases.nodeExporter}`;

/** Two crashes in a row (SIGKILL to the process, not `docker stop`), early, for ContainerRestarting. */
function crashLoop(s: PlatformStack): void {
    it("restarts a container that crashes twice in a row", async () => {
        const name = crashedContainer(s);
        const state = () => inspectContainers(s.prefix).find((c) => c.name === name)!;
        const before = state().restartCount;
        for (let crash = 1; crash <= 2; crash++) {
            const running = await waitFor(`${name} running`, 60_000, () => {
                const c = state();
                return c.running && c.pid > 0 ? c : undefined;
            }, 200);
            process.kill(running.pid, "SIGKILL");
            await waitFor(`${name} restarted by the engine`, 60_000, () => (state().restartCount === before + crash ? true : undefined), 200);
        }
        await waitFor(`${name} healthy again`, 120_000, () => (state().health === "healthy" ? true : undefined));
    });
}

/** A run that fails, early, so that its alert has fired and resolved by the time metricsChecks look. */
function failingRun(s: PlatformStack): void {
    it("fails a run of ping_env_fails (its task exits 3)", async () => {
        const runId = await s.airflow.trigger("ping_env_fails", new Date().toISOString());
        const state = await waitFor(`${s.stack}: ping_env_fails to end`, 300_000, async () => {
            const r = await s.airflow.call<{ state: string }>("GET", `/dags/ping_env_fails/dagRuns/${runId}`);
            return ["failed", "success"].includes(r.state) ? r.state : undefined;
        });
        assert.equal(state, "failed");
    });
}

describe(`the prod stack on the same engine, beside dev`, { timeout: 60 * 60_000 }, () => {
    // While dev keeps running beside it, its images built on the build cache dev left (dev and the
    // server build cold); with a DAG whose run fails, for its alert.
    before(() => {
        fs.copyFileSync(failingDag, path.join(prod.engine.projectDir, "dags", path.basename(failingDag)));
    });

    it("comes up with CeleryExecutor, Redis, its Celery workers and Spark workers, all healthy", async () => {
        await prod.up("coldBringUp");
        assertAllHealthy(prod);
        const names = prod.serviceContainers().map((c) => c.name);
        assert.ok(names.includes(`${prod.prefix}-redis`));
        for (let i = 1; i <= prod.config.airflow.celeryWorkers; i++) assert.ok(names.includes(`${prod.prefix}-airflow-worker-${i}`));
    });

    failingRun(prod);
    crashLoop(prod);
    platformChecks(prod);
    metricsChecks(prod);

    it("status: all well, Redis and the Celery workers included", async () => {
        const run = await prod.command("status", "--json");
        prod.report.seconds.statusHealthy = Number(run.seconds.toFixed(2));
        assert.equal(run.code, 0, `${run.stdout}${run.stderr}`);
        const status = JSON.parse(run.stdout) as { ok: boolean; containers: { name: string; ok: boolean }[] };
        const names = status.containers.map((c) => c.name);
        for (const name of [`${prod.prefix}-redis`, `${prod.prefix}-airflow-worker-1`, `${prod.prefix}-airflow-worker-2`, `${prod.prefix}-maintenance`]) {
            assert.ok(names.includes(name), `${name} is not in the status`);
        }
        assert.ok(status.containers.every((c) => c.ok));
    });

    it("runs beside the dev stack, both healthy and both answering", async () => {
        for (const s of stacks) {
            assertAllHealthy(s);
            await airflowHealthy(s);
        }
        await Promise.all(stacks.map((s) => s.runDag("ping_grpc", "2024-06-03T00:00:00Z", 300_000)));
    });

    // Dev proved the way back onto kept data; here, that prod's metrics history is kept too.
    it("keeps its data volumes through destroy, Prometheus' and Alertmanager's included", async () => {
        await prod.destroy();
        assert.deepEqual(prod.serviceContainers(), [], "containers left after destroy");
        const volumes = docker("volume", "ls", "-q", "--filter", `name=^${prod.prefix}-`).split("\n").sort();
        const kept = ["airflow-keys", "alertmanager-data", "backups", "buffer", "logs", "postgres-data", "prometheus-data"];
        assert.deepEqual(volumes, kept.map((v) => `${prod.prefix}-${v}`));
        assertAllHealthy(dev);
    });
});

describe("the server stack on a test server, reached only over SSH", { timeout: 60 * 60_000 }, () => {
    let host: TestServer;
    /** The server stack's, on the machine running Pulumi: there must be none. */
    const localNames = (kind: "ps" | "volume") =>
        execFileSync(dockerClient, kind === "ps" ? ["ps", "-a", "--format", "{{.Names}}"] : ["volume", "ls", "--format", "{{.Name}}"], {
            encoding: "utf8",
            env: { ...process.env, DOCKER_HOST: "" },
        })
            .split("\n")
            .filter((name) => name.startsWith("vpe-server-"));

    before(async () => {
        host = await startTestServer();
        const started = performance.now();
        // No registry is reachable: the upstream stand-ins go to the server as a user would carry them.
        await host.loadImages([platform.images.debian, platform.images.postgres, platform.images.airflow, platform.images.redis]);
        server = new PlatformStack("server", { "docker:host": host.dockerHost, "docker:sshOpts": host.sharedSshOpts });
        server.report.seconds.loadImages = Number(((performance.now() - started) / 1000).toFixed(1));
        // The suite's own inspection goes to the server's engine (the program never uses this socket).
        process.env.DOCKER_HOST = `unix://${host.socket}`;
        await server.open(engineName);
        await server.teardown();
    });

    after(async () => {
        // The stack before the server: nothing may dial the server's address once its veth is gone.
        await server?.teardown();
        delete process.env.DOCKER_HOST;
        await removeTestServer();
    });

    it("fails within seconds on a wrong host key, then on a stopped sshd, naming the server and the fix, and changes nothing", async () => {
        const s = server!;
        const stackFile = path.join(s.engine.projectDir, "Pulumi.server.yaml");
        const original = fs.readFileSync(stackFile, "utf8");
        const otherKey = path.join(path.dirname(host.knownHostsFile), "other_host_key");
        fs.rmSync(otherKey, { force: true });
        execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", otherKey]);
        const wrongKnownHosts = `${host.knownHostsFile}.wrong`;
        fs.writeFileSync(wrongKnownHosts, `${host.address} ${fs.readFileSync(`${otherKey}.pub`, "utf8").split(" ").slice(0, 2).join(" ")}\n`, { mode: 0o600 });
        const timed = async (what: string, expected: RegExp) => {
            const started = performance.now();
            await assert.rejects(s.engine.preview(s.overrides), (err: Error) => {
                assert.match(err.message, expected, what);
                return true;
            });
            const seconds = Number(((performance.now() - started) / 1000).toFixed(1));
            s.report.seconds[what] = seconds;
            assert.deepEqual(host.docker(["ps", "-aq", "--filter", "name=^vpe-server-"]), "", `${what}: something was created on the server`);
        };
        try {
            fs.writeFileSync(stackFile, original.replace(host.knownHostsFile, wrongKnownHosts));
            // ssh finds a key for that address, and another one: "REMOTE HOST IDENTIFICATION HAS CHANGED".
            await timed("wrongHostKey", new RegExp(`ssh://deploy@${host.address.replace(/\./g, "\\.")}: asking the server's Docker engine \\(docker version\\) failed: the server's host key (changed|is not in)`));
        } finally {
            fs.writeFileSync(stackFile, original);
        }
        host.stopSshd();
        try {
            await timed("sshdStopped", /asking the server's Docker engine \(docker version\) failed: nothing accepts SSH connections there: is sshd running/);
        } finally {
            await host.startSshd();
        }
    });

    it("comes up cold on the server with every container healthy, nothing of it on this machine's engine, and few SSH sessions at once", async () => {
        const since = new Date();
        await server!.up("coldBringUp");
        assertAllHealthy(server!);
        server!.report.maxSshSessions = host.maxConcurrentSessions(since);
        // sshd's default MaxStartups (10:30:100) starts refusing at 10 unauthenticated connections.
        assert.ok(host.maxConcurrentSessions(since) < 10, `${host.maxConcurrentSessions(since)} SSH sessions at once`);
        assert.deepEqual([localNames("ps"), localNames("volume")], [[], []]);
        // The images were built by the server's engine, for its architecture.
        const arch = host.docker(["version", "--format", "{{.Server.Arch}}"]);
        assert.equal(host.docker(["image", "inspect", "--format", "{{.Architecture}}", "vpe-server/airflow:local"]), arch);
    });

    describe("checked as every stack is", () => {
        before(() => assert.ok(server, "no server stack"));
        // Registered now, run once the server stack exists.
        platformChecks(serverStack);
        dagEditApplies(serverStack);
    });

    it("status, backup and restore reach the server's engine and services over SSH, with the same exit codes", async () => {
        const s = server!;
        const status = await s.command("status", "--json");
        s.report.seconds.statusHealthy = Number(status.seconds.toFixed(2));
        assert.equal(status.code, 0, `${status.stdout}${status.stderr}`);
        const seen = JSON.parse(status.stdout) as { ok: boolean; containers: { name: string; ok: boolean }[] };
        for (const name of s.outputs.containers as string[]) assert.ok(seen.containers.some((c) => c.name === name && c.ok), `${name} is not well in the status`);
        const counts = await s.warehouseCounts();
        const backup = await s.command("backup");
        assert.equal(backup.code, 0, backup.stderr);
        const set = backup.stdout.match(/set (\d{8}T\d{6}Z)/)?.[1];
        assert.ok(set, backup.stdout);
        const restored = await s.command("restore", "--from", set, "--yes");
        s.report.seconds.restore = Number(restored.seconds.toFixed(1));
        assert.equal(restored.code, 0, `${restored.stdout}${restored.stderr}`);
        assertAllHealthy(s);
        assert.deepEqual(await s.warehouseCounts(), counts);
        assert.equal((await s.command("status")).code, 0);
        host.docker(["stop", `${s.prefix}-spark-worker-1`]);
        try {
            assert.equal((await s.command("status")).code, 1, "a stopped worker on the server is not noticed");
        } finally {
            host.docker(["start", `${s.prefix}-spark-worker-1`]);
        }
        await waitFor("the Spark worker healthy again", 120_000, () => (s.serviceContainers().every((c) => c.health === "healthy") ? true : undefined));
    });

    it("converges with the next up after its SSH connections are cut during an up", async () => {
        const s = server!;
        const script = path.join(s.engine.projectDir, "docker", "executor", "pipelines", "ingestion", "ping_env.py");
        fs.appendFileSync(script, "\n# cut\n");
        const executor = `${s.prefix}-executor`;
        const original = host.docker(["ps", "-aq", "--no-trunc", "--filter", `name=^${executor}$`]);
        const interrupted = s.up("cutUp").then(
            () => "finished",
            (err: Error) => err.message,
        );
        // Cut once the old executor is gone and its replacement is still to come.
        await waitFor("the executor's replacement to begin", 300_000, () => (host.docker(["ps", "-aq", "--no-trunc", "--filter", `name=^${executor}$`]) !== original ? true : undefined), 200);
        const cut = host.cutSessions();
        const outcome = await interrupted;
        s.report.sshCut = { sessionsCut: cut, outcome: outcome.slice(0, 300) };
        assert.ok(cut > 0, "no SSH session was open to cut");
        assert.notEqual(outcome, "finished", "the up ended before its connections were cut");
        await s.up("afterCut");
        assertAllHealthy(s);
        const plan = await s.engine.preview(s.overrides);
        assert.deepEqual(changed(plan), {});
        await s.runDag("ping_grpc", "2024-06-06T00:00:00Z", 300_000);
    });

    it("keeps its data on the server through destroy, and comes back onto it", async () => {
        const s = server!;
        const counts = await s.warehouseCounts();
        const runs = await dagRunIds(s, "ingestion");
        await s.destroy();
        assert.deepEqual(s.serviceContainers(), [], "containers left after destroy");
        const volumes = host.docker(["volume", "ls", "-q", "--filter", "name=^vpe-server-"]).split("\n").sort();
        assert.deepEqual(volumes, ["airflow-keys", "backups", "buffer", "logs", "postgres-data"].map((v) => `vpe-server-${v}`));
        assert.deepEqual([localNames("ps"), localNames("volume")], [[], []]);
        await s.up("comeBack");
        assertAllHealthy(s);
        assert.deepEqual(await s.warehouseCounts(), counts);
        assert.deepEqual(await dagRunIds(s, "ingestion"), runs);
    });
});
