// The maintenance container's scripts (docker/maintenance/bin) run as they are, with bash and the
// PostgreSQL client tools, against a real throwaway PostgreSQL cluster.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Client } from "pg";
import { platform, projectRoot } from "../../platform";
import { type PostgresServer, startPostgres } from "../support/postgres";
import { tempDir as tempRoot } from "../warehouse/support";

const root = tempRoot("vpe-maintenance-");
const tempDir = (prefix: string) => fs.mkdtempSync(path.join(root, prefix));
const bin = path.join(projectRoot, "docker", "maintenance", "bin");
const env = platform.env;

let server: PostgresServer;
let warehouse: string;
let metadata: string;

before(async () => {
    server = await startPostgres();
    warehouse = await server.createDatabase();
    metadata = await server.createDatabase();
    await sql(warehouse, "CREATE TABLE landslide_event (id int PRIMARY KEY, country text); INSERT INTO landslide_event SELECT g, 'NP' FROM generate_series(1, 500) g");
    await sql(metadata, "CREATE TABLE dag_run (id int PRIMARY KEY, dag_id text); INSERT INTO dag_run VALUES (1, 'ingestion'), (2, 'ping_grpc')");
});

after(() => server?.stop());

async function sql<T extends object = Record<string, string>>(database: string, text: string): Promise<T[]> {
    const client = new Client(server.config(database));
    await client.connect();
    try {
        const result = await client.query(text);
        return (Array.isArray(result) ? result.at(-1)!.rows : result.rows) as T[];
    } finally {
        await client.end();
    }
}

const count = async (database: string, table: string) => Number((await sql<{ n: string }>(database, `SELECT count(*) AS n FROM ${table}`))[0].n);

function scriptEnv(backupDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
        PATH: `${bin}:${process.env.PATH}`,
        PGHOST: server.host,
        PGPORT: String(server.port),
        PGUSER: server.user,
        PGPASSWORD: server.password,
        [env.backupDir]: backupDir,
        [env.backupKeep]: "2",
        [env.backupDatabases]: `${warehouse} ${metadata}`,
        ...extra,
    };
}

/** The environment as the stack sets it: no PGPASSWORD, only PGPASSWORD_FILE naming a file that
 * holds it (root-owned 0440 in the container, which libpq's PGPASSFILE would ignore). */
function fileEnv(backupDir: string, passwordFile: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const fromFile = scriptEnv(backupDir, { ...extra, PGPASSWORD_FILE: passwordFile });
    delete fromFile.PGPASSWORD;
    return fromFile;
}

function passwordFile(content: string = `${server.password}\n`): string {
    const file = path.join(tempDir("vpe-secrets-"), "postgres-password");
    fs.writeFileSync(file, content, { mode: 0o440 });
    return file;
}

function run(script: string, args: string[], scriptsEnv: NodeJS.ProcessEnv) {
    const ran = spawnSync(path.join(bin, script), args, { env: scriptsEnv, encoding: "utf8" });
    return { code: ran.status, stdout: ran.stdout, stderr: ran.stderr };
}

function backup(backupDir: string): string {
    const ran = run("vpe-backup", [], scriptEnv(backupDir));
    assert.equal(ran.code, 0, ran.stderr);
    return ran.stdout.trim().split("\n").at(-1)!;
}

describe("vpe-backup", () => {
    it("writes a checksummed set of every database, listed with its size", () => {
        const dir = tempDir("vpe-backups-");
        const name = backup(dir);
        assert.match(name, /^\d{8}T\d{6}Z$/);
        assert.deepEqual(fs.readdirSync(path.join(dir, name)).sort(), ["SHA256SUMS", `${metadata}.dump`, `${warehouse}.dump`].sort());
        const verified = spawnSync("sha256sum", ["--check", "--strict", "SHA256SUMS"], { cwd: path.join(dir, name), encoding: "utf8" });
        assert.equal(verified.status, 0, verified.stderr);
        const listed = run("vpe-backup", ["--list"], scriptEnv(dir));
        const [listedName, bytes, databases] = listed.stdout.trim().split("\t");
        assert.equal(listedName, name);
        assert.ok(Number(bytes) > 1000, `size ${bytes}`);
        assert.deepEqual(databases.split(" ").sort(), [metadata, warehouse].sort());
    });

    it("keeps the newest sets only, and removes what a killed backup left", () => {
        const dir = tempDir("vpe-backups-");
        for (const old of ["20200101T000000Z", "20200102T000000Z", "20200103T000000Z", ".partial-20200104T000000Z"]) {
            fs.mkdirSync(path.join(dir, old));
        }
        const name = backup(dir);
        assert.deepEqual(fs.readdirSync(dir).sort(), ["20200103T000000Z", name]);
    });

    it("fails, naming the database, when one cannot be dumped, and leaves no set behind", () => {
        const dir = tempDir("vpe-backups-");
        const ran = run("vpe-backup", [], scriptEnv(dir, { [env.backupDatabases]: `${warehouse} no_such_db` }));
        assert.notEqual(ran.code, 0);
        assert.match(ran.stderr, /no_such_db/);
        assert.deepEqual(fs.readdirSync(dir), []);
    });

    it("rejects a retention that is not a whole number", () => {
        const ran = run("vpe-backup", [], scriptEnv(tempDir("vpe-backups-"), { [env.backupKeep]: "all" }));
        assert.notEqual(ran.code, 0);
        assert.match(ran.stderr, /VPE_BACKUP_KEEP: expected a whole number of sets, got 'all'/);
    });
});

describe("vpe-restore", () => {
    it("puts every database back as it was in the set, ending sessions left on it", async () => {
        const dir = tempDir("vpe-backups-");
        const name = backup(dir);
        await sql(warehouse, "DELETE FROM landslide_event WHERE id > 100");
        await sql(metadata, "DROP TABLE dag_run");
        const idle = new Client(server.config(warehouse));
        await idle.connect();
        const ended = new Promise((resolve) => idle.on("error", resolve));
        const ran = run("vpe-restore", [name], scriptEnv(dir));
        assert.equal(ran.code, 0, ran.stderr);
        assert.equal(await count(warehouse, "landslide_event"), 500);
        assert.equal(await count(metadata, "dag_run"), 2);
        assert.ok(await ended, "the idle session was not ended");
        await idle.end().catch(() => undefined);
    });

    const refusals: [string, (set: string) => void, RegExp][] = [
        ["a truncated archive", (set) => fs.truncateSync(path.join(set, `${warehouse}.dump`), 2000), /does not match its checksum/],
        ["a changed archive with its checksum updated", (set) => {
            const file = path.join(set, `${warehouse}.dump`);
            fs.writeFileSync(file, "not a pg_dump archive");
            const sums = spawnSync("sha256sum", [`${warehouse}.dump`, `${metadata}.dump`], { cwd: set, encoding: "utf8" }).stdout;
            fs.writeFileSync(path.join(set, "SHA256SUMS"), sums);
        }, /is not a readable pg_dump archive/],
        ["a set without its checksums", (set) => fs.rmSync(path.join(set, "SHA256SUMS")), /SHA256SUMS is missing/],
    ];
    for (const [what, spoil, message] of refusals) {
        it(`refuses ${what} before touching any database`, async () => {
            const dir = tempDir("vpe-backups-");
            const name = backup(dir);
            spoil(path.join(dir, name));
            await sql(warehouse, "INSERT INTO landslide_event VALUES (9999, 'XX')");
            const ran = run("vpe-restore", [name], scriptEnv(dir));
            assert.notEqual(ran.code, 0);
            assert.match(ran.stderr, message);
            assert.equal(await count(warehouse, "landslide_event"), 501, "the warehouse was changed");
            await sql(warehouse, "DELETE FROM landslide_event WHERE id = 9999");
        });
    }

    it("refuses names that are not sets: unknown, or a path", () => {
        const dir = tempDir("vpe-backups-");
        assert.match(run("vpe-restore", ["20990101T000000Z"], scriptEnv(dir)).stderr, /no such backup set/);
        assert.match(run("vpe-restore", ["../etc"], scriptEnv(dir)).stderr, /expected a set name/);
    });

    it("leaves a database as it was when its restore fails part way", async () => {
        const dir = tempDir("vpe-backups-");
        await sql(warehouse, "CREATE ROLE ghost; CREATE TABLE haunted (id int); ALTER TABLE haunted OWNER TO ghost");
        const name = backup(dir);
        await sql(warehouse, "DROP TABLE haunted; DROP ROLE ghost; DELETE FROM landslide_event WHERE id > 400");
        const ran = run("vpe-restore", [name], scriptEnv(dir));
        assert.notEqual(ran.code, 0);
        assert.match(ran.stderr, /ghost/);
        assert.equal(await count(warehouse, "landslide_event"), 400, "a failed restore changed the database");
        await sql(warehouse, "INSERT INTO landslide_event SELECT g, 'NP' FROM generate_series(401, 500) g");
    });
});

describe("the password as a file (PGPASSWORD_FILE)", () => {
    it("vpe-backup and vpe-restore read it, and never print it", async () => {
        const dir = tempDir("vpe-backups-");
        const file = passwordFile();
        const backedUp = run("vpe-backup", [], fileEnv(dir, file));
        assert.equal(backedUp.code, 0, backedUp.stderr);
        const name = backedUp.stdout.trim().split("\n").at(-1)!;
        assert.deepEqual(fs.readdirSync(path.join(dir, name)).sort(), ["SHA256SUMS", `${metadata}.dump`, `${warehouse}.dump`].sort());
        await sql(metadata, "DELETE FROM dag_run WHERE id = 2");
        const restored = run("vpe-restore", [name], fileEnv(dir, file));
        assert.equal(restored.code, 0, restored.stderr);
        assert.equal(await count(metadata, "dag_run"), 2);
        for (const output of [backedUp.stdout, backedUp.stderr, restored.stdout, restored.stderr]) {
            assert.ok(!output.includes(server.password), "the password was printed");
        }
    });

    it("is the password used: a wrong one in the file fails the backup", () => {
        const dir = tempDir("vpe-backups-");
        const ran = run("vpe-backup", [], fileEnv(dir, passwordFile("wrong-password\n")));
        assert.notEqual(ran.code, 0);
        assert.match(ran.stderr, /password authentication failed/);
        assert.deepEqual(fs.readdirSync(dir), []);
    });

    it("refuses a file it cannot read, an empty one, or both variables, naming them, before connecting", () => {
        const dir = tempDir("vpe-backups-");
        const folder = tempDir("vpe-secrets-");
        const missing = path.join(folder, "none");
        const empty = passwordFile("\n");
        const cases: [NodeJS.ProcessEnv, string][] = [
            [fileEnv(dir, missing), `vpe-backup: PGPASSWORD_FILE=${missing}: no such file`],
            // A folder cannot be read as a file, even by root (the tests may run as root).
            [fileEnv(dir, folder), `vpe-backup: PGPASSWORD_FILE=${folder}: a folder, not a file`],
            [fileEnv(dir, empty), `vpe-backup: PGPASSWORD_FILE=${empty}: the file is empty`],
            [scriptEnv(dir, { PGPASSWORD_FILE: passwordFile() }), "vpe-backup: both PGPASSWORD and PGPASSWORD_FILE are set: expected only one"],
        ];
        for (const [casesEnv, message] of cases) {
            const ran = run("vpe-backup", [], casesEnv);
            assert.equal(ran.code, 1, message);
            assert.equal(ran.stderr.trim(), message);
            assert.ok(!ran.stderr.includes(server.password), "the password was printed");
        }
        const restore = run("vpe-restore", ["20200101T000000Z"], fileEnv(dir, missing));
        assert.equal(restore.stderr.trim(), `vpe-restore: PGPASSWORD_FILE=${missing}: no such file`);
        assert.deepEqual(fs.readdirSync(dir), []);
    });

    it("vpe-backup --list needs no password", () => {
        const ran = run("vpe-backup", ["--list"], fileEnv(tempDir("vpe-backups-"), "/nonexistent/password"));
        assert.equal(ran.code, 0, ran.stderr);
    });
});

describe("vpe-groom-logs", () => {
    const daysAgo = (file: string, days: number) => {
        const when = new Date(Date.now() - days * 86_400_000);
        fs.utimesSync(file, when, when);
    };

    it("removes log files past the retention in the folders it grooms, and the folders left empty, never those folders", () => {
        const logs = tempDir("vpe-logs-");
        const write = (rel: string, days: number) => {
            const file = path.join(logs, rel);
            fs.mkdirSync(path.dirname(file), { recursive: true });
            fs.writeFileSync(file, "x".repeat(100));
            daysAgo(file, days);
        };
        write("airflow/dag_id=ingestion/run_id=old/task_id=extract/attempt=1.log", 9);
        write("airflow/dag_id=ingestion/run_id=new/task_id=extract/attempt=1.log", 2);
        write("executor/old-run.log", 8);
        write("executor/new-run.log", 6.9);
        write("spark/spark-worker-1/app-1/0/stderr", 30); // Spark's workers clean their own folders
        const dirs = `${path.join(logs, "airflow")} ${path.join(logs, "executor")}`;
        const ran = run("vpe-groom-logs", [], { PATH: process.env.PATH, [env.logDirs]: dirs, [env.logRetentionDays]: "7" });
        assert.equal(ran.code, 0, ran.stderr);
        assert.match(ran.stdout, /removed 2 files \(200 bytes\) older than 7 days/);
        const left = spawnSync("find", [".", "-mindepth", "1"], { cwd: logs, encoding: "utf8" }).stdout.trim().split("\n").sort();
        assert.deepEqual(left, [
            "./airflow", "./airflow/dag_id=ingestion", "./airflow/dag_id=ingestion/run_id=new",
            "./airflow/dag_id=ingestion/run_id=new/task_id=extract", "./airflow/dag_id=ingestion/run_id=new/task_id=extract/attempt=1.log",
            "./executor", "./executor/new-run.log",
            "./spark", "./spark/spark-worker-1", "./spark/spark-worker-1/app-1", "./spark/spark-worker-1/app-1/0", "./spark/spark-worker-1/app-1/0/stderr",
        ]);
    });

    it("rejects a retention that is not a whole number of days", () => {
        const ran = run("vpe-groom-logs", [], { PATH: process.env.PATH, [env.logDirs]: tempDir("vpe-logs-"), [env.logRetentionDays]: "0" });
        assert.notEqual(ran.code, 0);
        assert.match(ran.stderr, /VPE_LOG_RETENTION_DAYS: expected a whole number of days, got '0'/);
    });
});

describe("vpe-maintenance", () => {
    function loopEnv(dir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
        return scriptEnv(dir, {
            [env.backupEveryHours]: "0",
            [env.logDirs]: tempDir("vpe-logs-"),
            [env.logRetentionDays]: "7",
            [env.maintenanceTickSeconds]: "1",
            [env.groomEveryMinutes]: "60",
            [env.maintenanceHeartbeat]: path.join(dir, "heartbeat"),
            ...extra,
        });
    }

    /** Runs the loop until `done` holds (or 20 s), then stops it as Docker would. */
    async function loopUntil(loopsEnv: NodeJS.ProcessEnv, done: () => boolean): Promise<{ code: number | null; output: string }> {
        const child = spawn(path.join(bin, "vpe-maintenance"), [], { env: loopsEnv });
        let output = "";
        child.stdout.on("data", (chunk) => (output += chunk));
        child.stderr.on("data", (chunk) => (output += chunk));
        const deadline = Date.now() + 20_000;
        while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
        const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
        child.kill("SIGTERM");
        return { code: await exited, output };
    }

    it("beats, grooms the logs and takes a backup when one is due, and stops on SIGTERM", async () => {
        const dir = tempDir("vpe-backups-");
        const sets = () => fs.readdirSync(dir).filter((f) => /^\d{8}T\d{6}Z$/.test(f));
        const { code, output } = await loopUntil(loopEnv(dir), () => sets().length > 0);
        assert.equal(code, 0, output);
        assert.equal(sets().length, 1, output);
        assert.match(output, /vpe-groom-logs: removed 0 files/);
        const alive = run("vpe-maintenance", ["--alive", "60"], loopEnv(dir));
        assert.equal(alive.code, 0, alive.stdout);
    });

    it("takes its backups with the password from PGPASSWORD_FILE", async () => {
        const dir = tempDir("vpe-backups-");
        const sets = () => fs.readdirSync(dir).filter((f) => /^\d{8}T\d{6}Z$/.test(f));
        const loopsEnv: NodeJS.ProcessEnv = { ...loopEnv(dir), PGPASSWORD_FILE: passwordFile() };
        delete loopsEnv.PGPASSWORD;
        const { code, output } = await loopUntil(loopsEnv, () => sets().length > 0);
        assert.equal(code, 0, output);
        assert.equal(sets().length, 1, output);
        assert.ok(!output.includes(server.password), "the password was printed");
    });

    it("stops at start, naming the file, when it cannot read PGPASSWORD_FILE", () => {
        const dir = tempDir("vpe-backups-");
        const loopsEnv: NodeJS.ProcessEnv = { ...loopEnv(dir), PGPASSWORD_FILE: path.join(dir, "none") };
        delete loopsEnv.PGPASSWORD;
        const ran = run("vpe-maintenance", [], loopsEnv);
        assert.equal(ran.code, 1);
        assert.equal(ran.stderr.trim(), `vpe-maintenance: PGPASSWORD_FILE=${path.join(dir, "none")}: no such file`);
        assert.ok(!fs.existsSync(path.join(dir, "heartbeat")), "the loop started");
    });

    it("records a failed backup where the status command reads it", async () => {
        const dir = tempDir("vpe-backups-");
        const failure = path.join(dir, "last-failure");
        const { output } = await loopUntil(loopEnv(dir, { PGPORT: "1" }), () => fs.existsSync(failure));
        assert.ok(fs.existsSync(failure), output);
        assert.match(fs.readFileSync(failure, "utf8"), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n[\s\S]*(pg_dump|vpe-backup)/);
    });

    it("writes the backups' state for node_exporter's textfile collector: the newest set, the last failure, the interval, its start", async () => {
        const dir = tempDir("vpe-backups-");
        const metricsDir = tempDir("vpe-metrics-");
        const file = path.join(metricsDir, "backups.prom");
        const gauges = () =>
            Object.fromEntries(
                fs.readFileSync(file, "utf8").split("\n").filter((l) => l && !l.startsWith("#")).map((l) => [l.split(" ")[0], Number(l.split(" ")[1])]),
            );
        const started = Math.floor(Date.now() / 1000);
        const failing = await loopUntil(loopEnv(dir, { PGPORT: "1", [env.metricsDir]: metricsDir }), () => fs.existsSync(file));
        const failed = gauges();
        assert.equal(failed.vpe_backup_newest_timestamp_seconds, 0, failing.output);
        assert.equal(failed.vpe_backup_last_failure_timestamp_seconds, fs.statSync(path.join(dir, "last-failure")).mtime.getTime() / 1000 | 0);
        assert.equal(failed.vpe_backup_interval_seconds, 0);
        assert.ok(failed.vpe_maintenance_started_timestamp_seconds >= started - 1);
        fs.rmSync(file);
        const sets = () => fs.readdirSync(dir).filter((f) => /^\d{8}T\d{6}Z$/.test(f));
        await loopUntil(loopEnv(dir, { [env.metricsDir]: metricsDir }), () => sets().length > 0 && fs.existsSync(file));
        const ok = gauges();
        assert.equal(ok.vpe_backup_last_failure_timestamp_seconds, 0, "a success clears the failure");
        assert.equal(ok.vpe_backup_newest_timestamp_seconds, fs.statSync(path.join(dir, sets()[0])).mtime.getTime() / 1000 | 0);
        assert.deepEqual(fs.readdirSync(metricsDir), ["backups.prom"], "a temporary file was left");
    });

    it("fails its probe when the heartbeat is stale or missing", () => {
        const dir = tempDir("vpe-backups-");
        const heartbeatEnv = loopEnv(dir);
        assert.match(run("vpe-maintenance", ["--alive", "60"], heartbeatEnv).stdout, /no heartbeat yet/);
        const heartbeat = path.join(dir, "heartbeat");
        fs.writeFileSync(heartbeat, "");
        const old = new Date(Date.now() - 300_000);
        fs.utimesSync(heartbeat, old, old);
        const stale = run("vpe-maintenance", ["--alive", "60"], heartbeatEnv);
        assert.equal(stale.code, 1);
        assert.match(stale.stdout, /last heartbeat 3\d\d s ago \(max 60 s\)/);
    });
});
