import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import {
    type ContainerFacts,
    type Snapshot,
    type StatusIo,
    bounded,
    containerWell,
    gather,
    judge,
    main,
    renderJson,
    renderScreen,
    secretsOf,
    warehouseTables,
} from "../../commands/status";
import { demultiplex } from "../../commands/docker";
import type { StackOutputs } from "../../commands/stackOutputs";
import { projectRoot } from "../../platform";

const password = "s3cr3t-Admin-pw";
const now = "2026-11-28T12:00:00.000Z";

function running(name: string): ContainerFacts {
    return {
        name,
        oneShot: false,
        state: "running",
        exitCode: 0,
        oomKilled: false,
        health: "healthy",
        restarts: 0,
        startedAt: "2026-11-28T10:00:00Z",
        finishedAt: "0001-01-01T00:00:00Z",
        probe: { exitCode: 0, output: [] },
    };
}

/** A healthy dev stack as gathering would find it; `change` edits the copy. */
function snapshot(change: (s: Snapshot) => void = () => undefined): Snapshot {
    const s: Snapshot = {
        stack: "dev",
        takenAt: now,
        seconds: 0.4,
        expected: { sparkWorkers: 1, migrations: [1, 2, 3, 4] },
        containers: [
            running("vpe-dev-postgres"),
            running("vpe-dev-executor"),
            running("vpe-dev-spark-worker-1"),
            running("vpe-dev-airflow-scheduler"),
            {
                name: "vpe-dev-airflow-init",
                oneShot: true,
                state: "exited",
                exitCode: 0,
                restarts: 0,
                startedAt: "2026-11-28T10:00:00Z",
                finishedAt: "2026-11-28T10:01:00Z",
            },
        ],
        airflow: {
            ok: true,
            ms: 50,
            value: { components: Object.fromEntries(["metadatabase", "scheduler", "triggerer", "dag_processor"].map((c) => [c, { status: "healthy" }])) },
        },
        spark: { ok: true, ms: 40, value: { status: "ALIVE", aliveWorkers: 1 } },
        executor: { ok: true, ms: 300, value: { exitCode: 0, output: [] } },
        warehouse: { ok: true, ms: 100, value: { applied: [1, 2, 3, 4], rows: Object.fromEntries(warehouseTables.map((t) => [t, 3])) } },
        volumes: { ok: true, ms: 20, value: { volumes: [{ name: "vpe-dev-logs", found: true, bytes: 1234 }] } },
        backups: {
            ok: true,
            ms: 150,
            value: { sets: [{ name: "20261128T090000Z", bytes: 194477, databases: ["airflow", "landslide_warehouse"] }] },
        },
        urls: { airflow: "http://127.0.0.1:18080", sparkUi: "http://127.0.0.1:18181", postgres: "127.0.0.1:15432" },
    };
    change(s);
    return s;
}

const container = (s: Snapshot, name: string) => s.containers.find((c) => c.name === name)!;

describe("judging a snapshot", () => {
    it("finds a healthy stack well", () => {
        const report = judge(snapshot());
        assert.deepEqual(report.problems, []);
        assert.equal(report.ok, true);
        const screen = renderScreen(report, []);
        assert.match(screen, /stack dev: all well/);
        assert.match(screen, /vpe-dev-postgres\s+running, healthy, up 2 h 0 min, restarts 0/);
        assert.match(screen, /vpe-dev-airflow-init\s+one-shot, exited with code 0, finished 1 h 59 min ago/);
        assert.match(screen, /backups\s+newest 20261128T090000Z \(194\.5 kB: airflow landslide_warehouse, 3 h 0 min ago\), 1 set/);
        assert.match(screen, /Airflow\s+http:\/\/127\.0\.0\.1:18080/);
        assert.match(screen, /PostgreSQL\s+127\.0\.0\.1:15432/);
        assert.doesNotMatch(screen, /FAIL/);
    });

    it("names an unhealthy container with its last probe output, and shows its logs", () => {
        const report = judge(
            snapshot((s) => {
                Object.assign(container(s, "vpe-dev-executor"), {
                    health: "unhealthy",
                    probe: { exitCode: 1, output: ["unhealthy: UNAVAILABLE: failed to connect"] },
                    logs: ["Traceback (most recent call last):", "OSError: [Errno 98] Address in use"],
                });
            }),
        );
        assert.equal(report.ok, false);
        assert.deepEqual(report.problems, ["vpe-dev-executor: unhealthy; last probe (exit 1): unhealthy: UNAVAILABLE: failed to connect"]);
        const screen = renderScreen(report, []);
        assert.match(screen, /FAIL vpe-dev-executor\s+running, unhealthy/);
        assert.match(screen, /last probe \(exit 1\):\n\s+unhealthy: UNAVAILABLE: failed to connect/);
        assert.match(screen, /last 2 log lines:\n\s+Traceback.*\n\s+OSError: \[Errno 98\] Address in use/);
        assert.match(screen, /problems \(1\)\n {2}FAIL vpe-dev-executor: unhealthy/);
    });

    it("reports a restarting container with its restart count", () => {
        const report = judge(
            snapshot((s) => {
                Object.assign(container(s, "vpe-dev-postgres"), { state: "restarting", restarts: 4, exitCode: 1 });
            }),
        );
        assert.deepEqual(report.problems, ["vpe-dev-postgres: restarting (restarts 4; last exited with code 1)"]);
    });

    it("reports a container that is not there", () => {
        const report = judge(
            snapshot((s) => {
                s.containers[2] = { name: "vpe-dev-spark-worker-1", oneShot: false, missing: true };
            }),
        );
        assert.deepEqual(report.problems, ["vpe-dev-spark-worker-1: missing (no such container)"]);
        assert.match(renderScreen(report, []), /FAIL vpe-dev-spark-worker-1\s+missing/);
    });

    it("reports a container that could not be inspected, and one running without a healthcheck", () => {
        const report = judge(
            snapshot((s) => {
                s.containers[0] = { name: "vpe-dev-postgres", oneShot: false, error: "Docker engine GET /containers/vpe-dev-postgres/json: no answer within 2 s" };
                delete container(s, "vpe-dev-executor").health;
            }),
        );
        assert.deepEqual(report.problems, [
            "vpe-dev-postgres: could not be inspected: Docker engine GET /containers/vpe-dev-postgres/json: no answer within 2 s",
            "vpe-dev-executor: running without a healthcheck",
        ]);
    });

    it("reports a stopped service, and one killed for memory", () => {
        const report = judge(
            snapshot((s) => {
                Object.assign(container(s, "vpe-dev-spark-worker-1"), { state: "exited", exitCode: 137, oomKilled: true, health: "unhealthy" });
            }),
        );
        assert.deepEqual(report.problems, ["vpe-dev-spark-worker-1: exited with code 137 (out of memory)"]);
    });

    it("wants the one-shot init exited with code 0: code 1 is a problem", () => {
        const report = judge(
            snapshot((s) => {
                Object.assign(container(s, "vpe-dev-airflow-init"), { exitCode: 1, logs: ["airflow db migrate: connection refused"] });
            }),
        );
        assert.deepEqual(report.problems, ["vpe-dev-airflow-init: exited with code 1"]);
        assert.match(renderScreen(report, []), /airflow db migrate: connection refused/);
        const stillRunning = judge(snapshot((s) => Object.assign(container(s, "vpe-dev-airflow-init"), { state: "running" })));
        assert.deepEqual(stillRunning.problems, ["vpe-dev-airflow-init: still running (started 2 h 0 min ago)"]);
        // Whether gathering reads a container's logs.
        const init = container(snapshot(), "vpe-dev-airflow-init");
        assert.equal(containerWell(init), true);
        assert.equal(containerWell({ ...init, exitCode: 1 }), false);
        assert.equal(containerWell({ ...init, state: "running" }), false);
        assert.equal(containerWell(running("x")), true);
        assert.equal(containerWell({ ...running("x"), health: "starting" }), false);
    });

    it("compares Spark's alive workers with the stack's", () => {
        const report = judge(snapshot((s) => (s.spark = { ok: true, ms: 1, value: { status: "ALIVE", aliveWorkers: 0 } })));
        assert.deepEqual(report.problems, ["spark: 0 of 1 workers alive"]);
        assert.match(renderScreen(report, []), /FAIL spark\s+0\/1 workers alive, master ALIVE/);
    });

    it("reports migrations the stack applied that the warehouse does not have, and missing tables", () => {
        const report = judge(
            snapshot((s) => {
                s.warehouse = { ok: true, ms: 1, value: { applied: [1, 2], rows: { event: 5, event_stats_country_year: null } } };
            }),
        );
        assert.deepEqual(report.problems, [
            "warehouse: migrations 3, 4 not applied (the stack applied 1, 2, 3, 4)",
            "warehouse: tables event_stats_country_year missing",
        ]);
    });

    it("reports the last backup failure with its time and error; no backup yet is fine", () => {
        const failed = judge(
            snapshot((s) => {
                s.backups = {
                    ok: true,
                    ms: 1,
                    value: { sets: [], lastFailure: ["2026-01-01T00:00:00Z", "pg_dump: error: connection to server failed"] },
                };
            }),
        );
        assert.deepEqual(failed.problems, ["backups: the last backup failed at 2026-01-01T00:00:00Z: pg_dump: error: connection to server failed"]);
        assert.match(renderScreen(failed, []), /FAIL backups\s+no backup yet\n.*last-failure:\n\s+2026-01-01T00:00:00Z\n\s+pg_dump: error/);
        const none = judge(snapshot((s) => (s.backups = { ok: true, ms: 1, value: { sets: [] } })));
        assert.equal(none.ok, true);
        assert.match(renderScreen(none, []), /ok {3}backups\s+no backup yet/);
    });

    it("names an Airflow component that is not healthy, or not reported", () => {
        const report = judge(
            snapshot((s) => {
                if (!s.airflow.ok) return;
                s.airflow.value.components.triggerer = { status: "unhealthy", heartbeat: "2026-11-28T11:50:00+00:00" };
                delete s.airflow.value.components.dag_processor;
            }),
        );
        assert.deepEqual(report.problems, [
            "airflow: triggerer unhealthy (last heartbeat 2026-11-28T11:50:00+00:00)",
            "airflow: dag_processor not reported",
        ]);
    });

    it("reports a check that did not answer, with why", () => {
        const report = judge(
            snapshot((s) => {
                s.executor = { ok: false, ms: 2000, error: "the gRPC health probe in vpe-dev-executor: no answer within 2 s" };
                s.volumes = { ok: true, ms: 1, value: { volumes: [{ name: "vpe-dev-logs", found: false, bytes: null }] } };
            }),
        );
        assert.deepEqual(report.problems, [
            "executor: the gRPC health probe in vpe-dev-executor: no answer within 2 s",
            "volumes: vpe-dev-logs missing",
        ]);
        assert.match(renderScreen(report, []), /slowest check: executor, 2\.0 s/);
    });

    it("reports a failing executor probe with its output", () => {
        const report = judge(snapshot((s) => (s.executor = { ok: true, ms: 1, value: { exitCode: 1, output: ["unhealthy: DEADLINE_EXCEEDED: Deadline Exceeded"] } })));
        assert.deepEqual(report.problems, ["executor: gRPC health probe exited 1: unhealthy: DEADLINE_EXCEEDED: Deadline Exceeded"]);
    });
});

describe("rendering", () => {
    const leaky = () =>
        snapshot((s) => {
            Object.assign(container(s, "vpe-dev-executor"), {
                health: "unhealthy",
                probe: { exitCode: 1, output: [`psql: password authentication failed, password=${password}`] },
                logs: [`connecting to postgresql://postgres:${password}@postgres:5432/airflow`, "and to postgresql://writer:other-pw@db/x"],
            });
            s.warehouse = { ok: false, ms: 1, error: `PostgreSQL 127.0.0.1:15432: bad password ${password}` };
        });
    const outputs = { postgresAdminPassword: password, airflowAdminPassword: "air-pw-1", warehouseWriterUrl: "postgresql://writer:w%40pw@127.0.0.1:15432/db", airflowUrl: "http://127.0.0.1:18080" };

    it("takes the stack's passwords, and those in its URLs, as secrets", () => {
        assert.deepEqual(new Set(secretsOf(outputs)), new Set([password, "air-pw-1", "w%40pw", "w@pw"]));
    });

    it("never prints the admin password, nor a URL's password, on the screen or in the JSON", () => {
        const report = judge(leaky());
        const screen = renderScreen(report, secretsOf(outputs));
        const json = renderJson(report, secretsOf(outputs));
        for (const text of [screen, json]) {
            assert.doesNotMatch(text, new RegExp(password));
            assert.doesNotMatch(text, /other-pw/);
            assert.match(text, /postgresql:\/\/postgres:\*\*\*@postgres:5432/);
        }
        assert.match(screen, /password=\*\*\*/);
    });

    it("writes one JSON object with the stack, ok, seconds, problems and every check", () => {
        const report = judge(leaky());
        const json = JSON.parse(renderJson(report, [password])) as Record<string, any>;
        assert.deepEqual(Object.keys(json), ["stack", "ok", "seconds", "problems", "containers", "airflow", "spark", "executor", "warehouse", "volumes", "backups", "urls"]);
        assert.equal(json.ok, false);
        assert.equal(json.problems.length, 2);
        assert.equal(json.containers[0].uptimeSeconds, 7200);
        assert.equal(json.containers[1].ok, false);
        assert.deepEqual(json.spark, { ok: true, ms: 40, expectedWorkers: 1, status: "ALIVE", aliveWorkers: 1 });
        assert.equal(json.warehouse.ok, false);
        assert.match(json.warehouse.error, /bad password \*\*\*/);
        assert.deepEqual(json.backups.newest.ageSeconds, 3 * 3600);
        assert.equal(json.backups.count, 1);
        assert.deepEqual(json.urls, { airflow: "http://127.0.0.1:18080", sparkUi: "http://127.0.0.1:18181", postgres: "127.0.0.1:15432" });
    });
});

describe("Docker's multiplexed stream", () => {
    const frame = (stream: number, text: string | Buffer) => {
        const payload = Buffer.isBuffer(text) ? text : Buffer.from(text);
        const header = Buffer.alloc(8);
        header[0] = stream;
        header.writeUInt32BE(payload.length, 4);
        return Buffer.concat([header, payload]);
    };

    it("separates stdout and stderr and keeps their order when combined", () => {
        const data = Buffer.concat([frame(1, "one\n"), frame(2, "two\n"), frame(1, "three\n")]);
        assert.deepEqual(demultiplex(data), { stdout: "one\nthree\n", stderr: "two\n", combined: "one\ntwo\nthree\n" });
    });

    it("joins a character split across frames, and keeps what a truncated last frame holds", () => {
        const e = Buffer.from("é");
        const truncated = frame(1, "cut off here").subarray(0, 8 + 3);
        const data = Buffer.concat([frame(1, Buffer.concat([Buffer.from("caf"), e.subarray(0, 1)])), frame(1, e.subarray(1)), truncated]);
        assert.equal(demultiplex(data).stdout, "cafécut");
    });

    it("takes bytes that are no frame as raw output", () => {
        assert.equal(demultiplex(Buffer.from("plain TTY output\n")).combined, "plain TTY output\n");
        assert.deepEqual(demultiplex(Buffer.alloc(0)), { stdout: "", stderr: "", combined: "" });
    });
});

describe("bounded checks", () => {
    it("gives up on work that does not answer, naming it, and aborts it", async () => {
        let aborted = false;
        const started = Date.now();
        const outcome = await bounded(100, "GET http://hung/", (signal) => {
            signal.addEventListener("abort", () => (aborted = true));
            return new Promise<never>(() => undefined);
        });
        assert.deepEqual({ ok: outcome.ok, error: !outcome.ok && outcome.error }, { ok: false, error: "GET http://hung/: no answer within 0.1 s" });
        assert.ok(Date.now() - started < 1000);
        assert.equal(aborted, true);
    });
});

describe("the warehouse tables counted", () => {
    it("are the tables warehouse/migrations create", () => {
        const dir = path.join(projectRoot, "warehouse", "migrations");
        const created = fs
            .readdirSync(dir)
            .flatMap((file) => [...fs.readFileSync(path.join(dir, file), "utf8").matchAll(/^CREATE TABLE (?:IF NOT EXISTS )?(\w+)/gim)].map((m) => m[1]));
        assert.deepEqual([...warehouseTables].sort(), created.sort());
    });
});

/** Fake services on this machine: the Docker engine on a unix socket, Airflow and Spark over HTTP. */
async function serve(handler: http.RequestListener, socketPath?: string): Promise<{ url: string; close: () => Promise<void> }> {
    const server = http.createServer(handler);
    await new Promise<void>((resolve) => (socketPath ? server.listen(socketPath, resolve) : server.listen(0, "127.0.0.1", resolve)));
    const address = server.address();
    return {
        url: typeof address === "object" && address ? `http://127.0.0.1:${address.port}` : `unix://${socketPath}`,
        close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
    };
}

function outputsFor(urls: { airflow: string; spark: string }): StackOutputs {
    return {
        airflowUrl: urls.airflow,
        airflowAdminUser: "admin",
        airflowAdminPassword: "air-pw",
        sparkUiUrl: urls.spark,
        sparkWorkers: 1,
        executorAddress: "executor:3170",
        postgresHost: "127.0.0.1",
        postgresPort: 1, // nothing listens: the warehouse check fails, quickly
        warehouseMigrations: [1, 2, 3, 4],
        warehouseWriterUrl: "postgresql://writer:w-pw@127.0.0.1:1/landslide_warehouse",
        warehouseAnalystUrl: "postgresql://analyst:a-pw@127.0.0.1:1/landslide_warehouse",
        postgresAdminUser: "postgres",
        postgresAdminPassword: password,
        logVolumeName: "t-logs",
        bufferVolumeName: "t-buffer",
        postgresDataVolumeName: "t-postgres-data",
        backupVolumeName: "t-backups",
        airflowKeysVolumeName: "t-airflow-keys",
        containers: ["t-executor", "t-spark-worker-1", "t-gone"],
        executorContainer: "t-executor",
        postgresContainer: "t-postgres",
        maintenanceContainer: "t-maintenance",
        airflowInitContainer: "t-airflow-init",
    } as StackOutputs;
}

describe("gathering from a fake engine and services", () => {
    const closers: (() => Promise<void>)[] = [];
    const savedHost = process.env.DOCKER_HOST;
    after(async () => {
        process.env.DOCKER_HOST = savedHost;
        if (savedHost === undefined) delete process.env.DOCKER_HOST;
        await Promise.all(closers.map((close) => close()));
    });

    it("reads containers, logs, exec results and volume sizes, and bounds a hung service", async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-status-"));
        const frame = (stream: number, text: string) => {
            const header = Buffer.alloc(8);
            header[0] = stream;
            header.writeUInt32BE(Buffer.byteLength(text), 4);
            return Buffer.concat([header, Buffer.from(text)]);
        };
        const execs = new Map<string, string[]>();
        const state = (status: string, health?: string, probe?: { ExitCode: number; Output: string }) => ({
            RestartCount: 0,
            Config: { Tty: false },
            State: {
                Status: status,
                ExitCode: 0,
                OOMKilled: false,
                StartedAt: "2026-11-28T10:00:00Z",
                FinishedAt: "2026-11-28T10:01:00Z",
                ...(health ? { Health: { Status: health, Log: probe ? [probe] : [] } } : {}),
            },
        });
        const engine = await serve((req, res) => {
            let body = "";
            req.on("data", (c: Buffer) => (body += c));
            req.on("end", () => {
                const url = req.url ?? "";
                const json = (status: number, value: unknown) => (res.writeHead(status, { "content-type": "application/json" }), res.end(JSON.stringify(value)));
                if (url === "/containers/t-executor/json") return json(200, state("running", "healthy", { ExitCode: 0, Output: "" }));
                if (url === "/containers/t-spark-worker-1/json") {
                    return json(200, state("running", "unhealthy", { ExitCode: 7, Output: `curl: (7) Failed to connect\npassword ${password}\n` }));
                }
                if (url === "/containers/t-airflow-init/json") return json(200, state("exited"));
                if (url.startsWith("/containers/t-spark-worker-1/logs?")) {
                    assert.match(url, /stdout=1&stderr=1&tail=10/);
                    res.writeHead(200, { "content-type": "application/vnd.docker.raw-stream" });
                    return res.end(Buffer.concat([frame(1, "worker started\n"), frame(2, "ERROR lost master\n")]));
                }
                const created = /^\/containers\/([^/]+)\/exec$/.exec(url);
                if (created && req.method === "POST") {
                    const id = `exec${execs.size}`;
                    execs.set(id, (JSON.parse(body) as { Cmd: string[] }).Cmd);
                    return json(201, { Id: id });
                }
                const exec = /^\/exec\/([^/]+)\/(start|json)$/.exec(url);
                if (exec) {
                    const cmd = execs.get(exec[1])!.join(" ");
                    const listing = cmd === "vpe-backup --list";
                    const failureFile = cmd.startsWith("sh -c");
                    if (exec[2] === "start") {
                        res.writeHead(200, { "content-type": "application/vnd.docker.raw-stream" });
                        if (listing) return res.end(frame(1, "20261128T000000Z\t100\tairflow landslide_warehouse\n20261128T060000Z\t200\tairflow landslide_warehouse\n"));
                        if (failureFile) return res.end(frame(1, "2026-11-28T07:00:00Z\npg_dump: error: disk full\n"));
                        return res.end(frame(2, "unhealthy: UNAVAILABLE: connection refused\n"));
                    }
                    return json(200, { Running: false, ExitCode: listing || failureFile ? 0 : 1 });
                }
                if (url === "/system/df") {
                    return json(200, { Volumes: [{ Name: "t-logs", UsageData: { Size: 2048 } }, { Name: "t-buffer", UsageData: { Size: -1 } }, { Name: "other", UsageData: { Size: 5 } }] });
                }
                json(404, { message: `No such container: ${url}` });
            });
        }, path.join(dir, "docker.sock"));
        closers.push(async () => (await engine.close(), fs.rmSync(dir, { recursive: true, force: true })));
        const hungAirflow = await serve(() => undefined); // accepts, never answers
        closers.push(hungAirflow.close);
        const spark = await serve((_req, res) => (res.writeHead(200), res.end(JSON.stringify({ status: "ALIVE", aliveworkers: 0 }))));
        closers.push(spark.close);
        process.env.DOCKER_HOST = engine.url;

        const started = Date.now();
        const snap = await gather("dev", outputsFor({ airflow: hungAirflow.url, spark: spark.url }), 400);
        assert.ok(Date.now() - started < 1500, `gathering took ${Date.now() - started} ms`);

        const byName = Object.fromEntries(snap.containers.map((c) => [c.name, c]));
        assert.equal(byName["t-executor"].logs, undefined, "a well container's logs are not read");
        assert.deepEqual(byName["t-spark-worker-1"].probe, { exitCode: 7, output: ["curl: (7) Failed to connect", `password ${password}`] });
        assert.deepEqual(byName["t-spark-worker-1"].logs, ["worker started", "ERROR lost master"]);
        assert.equal(byName["t-gone"].missing, true);
        assert.equal(byName["t-airflow-init"].oneShot, true);
        assert.deepEqual(snap.airflow, { ok: false, ms: snap.airflow.ms, error: `GET ${hungAirflow.url}/api/v2/monitor/health: no answer within 0.4 s` });
        assert.deepEqual(snap.spark.ok && snap.spark.value, { status: "ALIVE", aliveWorkers: 0 });
        assert.deepEqual(snap.executor.ok && snap.executor.value, { exitCode: 1, output: ["unhealthy: UNAVAILABLE: connection refused"] });
        assert.deepEqual(execs.get("exec0"), ["/opt/vpe/envs/server/bin/python", "-m", "vpe_executor.health", "--timeout", "0.2"]);
        assert.equal(snap.warehouse.ok, false);
        assert.match(!snap.warehouse.ok ? snap.warehouse.error : "", /PostgreSQL postgres@127\.0\.0\.1:1\/landslide_warehouse: .*ECONNREFUSED/);
        assert.deepEqual(snap.volumes.ok && snap.volumes.value.volumes.slice(0, 3), [
            { name: "t-logs", found: true, bytes: 2048 },
            { name: "t-buffer", found: true, bytes: null },
            { name: "t-postgres-data", found: false, bytes: null },
        ]);
        assert.deepEqual(snap.backups.ok && snap.backups.value, {
            sets: [
                { name: "20261128T000000Z", bytes: 100, databases: ["airflow", "landslide_warehouse"] },
                { name: "20261128T060000Z", bytes: 200, databases: ["airflow", "landslide_warehouse"] },
            ],
            lastFailure: ["2026-11-28T07:00:00Z", "pg_dump: error: disk full"],
        });

        const report = judge(snap);
        assert.equal(report.ok, false);
        assert.ok(report.problems.some((p) => p.startsWith("t-spark-worker-1: unhealthy; last probe (exit 7): curl: (7) Failed to connect")));
        assert.doesNotMatch(renderScreen(report, secretsOf(outputsFor({ airflow: "", spark: "" }))), new RegExp(password));
    });
});

describe("the command", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-status-cmd-"));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const outputsFile = path.join(dir, "outputs.json");
    fs.writeFileSync(outputsFile, JSON.stringify(outputsFor({ airflow: "http://127.0.0.1:18080", spark: "http://127.0.0.1:18181" })));
    const emptyFile = path.join(dir, "empty.json");
    fs.writeFileSync(emptyFile, "{}");

    async function run(argv: string[], found: Snapshot = snapshot(), file = outputsFile) {
        const out: string[] = [];
        const err: string[] = [];
        const io: StatusIo = {
            env: { VPE_STACK_OUTPUTS_FILE: file },
            stdout: (text) => out.push(text),
            stderr: (text) => err.push(text),
            gather: async () => found,
        };
        const code = await main(argv, io);
        return { code, stdout: out.join("\n"), stderr: err.join("\n") };
    }

    it("exits 0 when all is well, 1 when anything is wrong", async () => {
        const well = await run(["--stack", "dev"]);
        assert.equal(well.code, 0);
        assert.match(well.stdout, /stack dev: all well/);
        const sick = await run(["--stack", "dev"], snapshot((s) => (s.spark = { ok: true, ms: 1, value: { status: "ALIVE", aliveWorkers: 0 } })));
        assert.equal(sick.code, 1);
        assert.match(sick.stdout, /FAIL spark: 0 of 1 workers alive/);
        const json = await run(["--stack", "dev", "--json"], snapshot((s) => (s.spark = { ok: true, ms: 1, value: { status: "ALIVE", aliveWorkers: 0 } })));
        assert.equal(json.code, 1);
        assert.equal((JSON.parse(json.stdout) as { ok: boolean }).ok, false);
    });

    it("exits 2 on a usage error, naming it", async () => {
        for (const [argv, message] of [
            [[], /--stack: required/],
            [["--stack"], /--stack/],
            [["--stack", "dev", "--verbose"], /Unknown option '--verbose'/],
            [["--stack", "nosuch"], /no Pulumi\.nosuch\.yaml/],
        ] as [string[], RegExp][]) {
            const result = await run(argv);
            assert.equal(result.code, 2, argv.join(" "));
            assert.match(result.stderr, message);
            assert.match(result.stderr, /usage: npm run status -- --stack NAME \[--json\]/);
        }
    });

    it("exits 2 when the stack is not deployed, with the reason and no stack trace", async () => {
        for (const file of [path.join(dir, "absent.json"), emptyFile]) {
            const result = await run(["--stack", "dev"], snapshot(), file);
            assert.equal(result.code, 2);
            assert.match(result.stderr, /^status: stack dev is not deployed \(.+\): bring it up with `npm run up -- dev`$/);
            assert.equal(result.stdout, "");
        }
    });

    it("never prints the admin password it read from the outputs", async () => {
        const leaky = snapshot((s) => Object.assign(container(s, "vpe-dev-executor"), { health: "unhealthy", logs: [`PGPASSWORD=${password}`] }));
        for (const argv of [["--stack", "dev"], ["--stack", "dev", "--json"]]) {
            const result = await run(argv, leaky);
            assert.equal(result.code, 1);
            assert.match(result.stdout, /PGPASSWORD=\*\*\*/);
            assert.doesNotMatch(result.stdout + result.stderr, new RegExp(password));
        }
    });
});
