import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import {
    MIGRATION_LOCK_KEY,
    applyMigrations,
    connectionConfig,
    parseMigrations,
    readMigrations,
    splitStatements,
} from "../../warehouse/migrate";
import { PostgresServer, startPostgres } from "../support/postgres";
import { MIGRATIONS_DIR, count, migrationDir, tableExists, withClient } from "./support";

const run = promisify(execFile);
const REPO = join(__dirname, "..", "..");

let pg: PostgresServer;
before(async () => {
    pg = await startPostgres();
});
after(async () => {
    await pg?.stop();
});

async function freshDatabase() {
    return pg.config(await pg.createDatabase());
}

describe("applyMigrations", () => {
    const files = readdirSync(MIGRATIONS_DIR).sort();

    it("applies every file in order on a fresh database and records its sha256", async () => {
        const connection = await freshDatabase();
        const result = await applyMigrations({ connection, directory: MIGRATIONS_DIR });
        assert.deepEqual(result.applied, files);
        assert.deepEqual(result.alreadyApplied, []);
        assert.deepEqual(result.versions, files.map((f) => Number(f.slice(0, 4))));
        await withClient(connection, async (client) => {
            const rows = (await client.query("SELECT name, checksum FROM schema_migrations ORDER BY version")).rows;
            const expected = files.map((name) => ({
                name,
                checksum: createHash("sha256").update(readFileSync(join(MIGRATIONS_DIR, name))).digest("hex"),
            }));
            assert.deepEqual(rows, expected);
            for (const table of ["location", "datetime", "landslide_event", "weather_data", "soil", "event", "data"]) {
                assert.ok(await tableExists(client, table), table);
            }
        });
    });

    it("applies nothing on a second run", async () => {
        const connection = await freshDatabase();
        await applyMigrations({ connection, directory: MIGRATIONS_DIR });
        const second = await applyMigrations({ connection, directory: MIGRATIONS_DIR });
        assert.deepEqual(second.applied, []);
        assert.deepEqual(second.alreadyApplied, files);
        await withClient(connection, async (client) => assert.equal(await count(client, "schema_migrations"), files.length));
    });

    it("refuses an edited applied file by name and applies nothing in that run", async () => {
        const connection = await freshDatabase();
        const dir = migrationDir({ "0001_first.sql": "CREATE TABLE first (id int);" });
        await applyMigrations({ connection, directory: dir });
        writeFileSync(join(dir, "0001_first.sql"), "CREATE TABLE first (id bigint);");
        writeFileSync(join(dir, "0002_second.sql"), "CREATE TABLE second (id int);");
        await assert.rejects(applyMigrations({ connection, directory: dir }), /0001_first\.sql was edited after it was applied/);
        await withClient(connection, async (client) => {
            assert.equal(await tableExists(client, "second"), false);
            assert.equal(await count(client, "schema_migrations"), 1);
        });
    });

    it("refuses a renamed, a missing and an out-of-order file", async () => {
        const connection = await freshDatabase();
        await applyMigrations({
            connection,
            files: [
                { name: "0001_a.sql", sql: "SELECT 1" },
                { name: "0003_c.sql", sql: "SELECT 3" },
            ],
        });
        await assert.rejects(
            applyMigrations({ connection, files: [{ name: "0001_renamed.sql", sql: "SELECT 1" }, { name: "0003_c.sql", sql: "SELECT 3" }] }),
            /Version 1 was applied as 0001_a\.sql but the file is now 0001_renamed\.sql/,
        );
        await assert.rejects(
            applyMigrations({ connection, files: [{ name: "0001_a.sql", sql: "SELECT 1" }] }),
            /0003_c\.sql is recorded as applied but its file is missing/,
        );
        await assert.rejects(
            applyMigrations({
                connection,
                files: [
                    { name: "0001_a.sql", sql: "SELECT 1" },
                    { name: "0002_b.sql", sql: "SELECT 2" },
                    { name: "0003_c.sql", sql: "SELECT 3" },
                ],
            }),
            /0002_b\.sql is not applied but version 3 already is/,
        );
    });

    it("rolls a failing file back completely and names the file, line and statement", async () => {
        const connection = await freshDatabase();
        const dir = migrationDir({
            "0001_ok.sql": "CREATE TABLE ok_table (id int);\n",
            "0002_bad.sql": "CREATE TABLE half_done (id int);\n\nINSERT INTO half_done VALUES (1);\nSELECT 1 / 0;\n",
        });
        await assert.rejects(
            applyMigrations({ connection, directory: dir }),
            (error: Error) => {
                assert.match(error.message, /^0002_bad\.sql failed at line 4 \(statement 3: SELECT 1 \/ 0\): division by zero$/);
                return true;
            },
        );
        await withClient(connection, async (client) => {
            assert.equal(await tableExists(client, "ok_table"), true, "the earlier file keeps its own transaction");
            assert.equal(await tableExists(client, "half_done"), false);
            const versions = (await client.query("SELECT version FROM schema_migrations")).rows.map((r) => r.version);
            assert.deepEqual(versions, [1]);
        });
    });

    it("uses the error position to point at the failing line inside a statement", async () => {
        const connection = await freshDatabase();
        const sql = "-- two tables\nCREATE TABLE t1 (id int);\nCREATE TABLE t2 (\n    id int,\n    v no_such_type\n);\n";
        await assert.rejects(
            applyMigrations({ connection, files: [{ name: "0001_types.sql", sql }] }),
            /^MigrationError: 0001_types\.sql failed at line 5 \(statement 2: CREATE TABLE t2 \( id int, v no_such_type \)\): type "no_such_type" does not exist$/,
        );
        await withClient(connection, async (client) => assert.equal(await tableExists(client, "t1"), false));
    });

    it("lets only one of two concurrent appliers apply; the other waits and finds nothing to do", async () => {
        const connection = await freshDatabase();
        await withClient(connection, async (holder) => {
            // Both appliers must really contend: hold the lock until both wait on it.
            await holder.query("SELECT pg_advisory_lock($1::bigint)", [MIGRATION_LOCK_KEY]);
            const runs = [1, 2].map(() => applyMigrations({ connection, directory: MIGRATIONS_DIR }));
            let waiting = 0;
            while (waiting < 2) {
                const result = await holder.query(
                    "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                );
                waiting = result.rows[0].n as number;
            }
            await holder.query("SELECT pg_advisory_unlock($1::bigint)", [MIGRATION_LOCK_KEY]);
            const results = await Promise.all(runs);
            const counts = results.map((r) => r.applied.length).sort();
            assert.deepEqual(counts, [0, files.length]);
            assert.deepEqual(results.find((r) => r.applied.length === 0)?.alreadyApplied, files);
            assert.equal(await count(holder, "schema_migrations"), files.length);
        });
    });
});

describe("migration files", () => {
    it("rejects a bad file name, naming it", () => {
        for (const name of ["1_init.sql", "0001-init.sql", "0001_Init.sql", "0001_init.txt", "0000_zero.sql"]) {
            assert.throws(() => parseMigrations([{ name, sql: "" }]), new RegExp(`"${name.replace(".", "\\.")}"`));
        }
        const dir = migrationDir({ "0001_a.sql": "SELECT 1", "README.md": "notes" });
        assert.throws(() => readMigrations(dir), /Invalid migration file name "README\.md"/);
    });

    it("rejects a duplicate version, naming both files", () => {
        assert.throws(
            () => parseMigrations([{ name: "0002_b.sql", sql: "" }, { name: "0002_a.sql", sql: "" }, { name: "0001_x.sql", sql: "" }]),
            /Duplicate migration version 2: 0002_[ab]\.sql and 0002_[ab]\.sql/,
        );
    });

    it("rejects transaction control, since each file already runs in a transaction", () => {
        assert.throws(
            () => parseMigrations([{ name: "0001_tx.sql", sql: "CREATE TABLE x (id int);\n  commit;" }]),
            /0001_tx\.sql line 2: "commit" is not allowed/,
        );
    });

    it("orders by version whatever the input order", () => {
        const names = parseMigrations([{ name: "0010_j.sql", sql: "" }, { name: "0002_b.sql", sql: "" }]).map((m) => m.name);
        assert.deepEqual(names, ["0002_b.sql", "0010_j.sql"]);
    });
});

describe("splitStatements", () => {
    it("splits only at semicolons outside quotes, dollar quotes and comments", () => {
        const sql = [
            "-- leading; comment",
            "SELECT 'a;b', \"odd;name\", E'it\\'s;' AS x;",
            "/* block /* nested; */ still comment; */ SELECT 2;",
            "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END $body$;",
            "SELECT $$x;y$$, a$b FROM t;",
            "SELECT 'it''s;' -- trailing; comment",
        ].join("\n");
        assert.deepEqual(
            splitStatements(sql).map((s) => s.text),
            [
                "SELECT 'a;b', \"odd;name\", E'it\\'s;' AS x",
                "SELECT 2",
                "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END $body$",
                "SELECT $$x;y$$, a$b FROM t",
                "SELECT 'it''s;' -- trailing; comment",
            ],
        );
    });

    it("reports each statement's offset in the file", () => {
        const sql = "SELECT 1;\n\n  SELECT 2;";
        assert.deepEqual(splitStatements(sql).map((s) => s.offset), [0, 13]);
    });
});

describe("connectionConfig", () => {
    const settings = { host: "db", port: 5432, database: "w", user: "u", password: "p", sslmode: "disable" as const };

    it("maps sslmode to the driver's ssl setting", () => {
        assert.equal(connectionConfig(settings).ssl, false);
        assert.deepEqual(connectionConfig({ ...settings, sslmode: "verify-full" }).ssl, { rejectUnauthorized: true });
    });

    it("names the bad field", () => {
        assert.throws(() => connectionConfig({ ...settings, sslmode: "prefer" as never }), /sslmode must be one of/);
        assert.throws(() => connectionConfig({ ...settings, port: 70000 }), /port must be an integer/);
    });
});

describe("cli", () => {
    const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
        run(process.execPath, ["--import", "tsx", join(REPO, "warehouse", "cli.ts"), ...args], {
            cwd: REPO,
            env: { ...process.env, DATABASE_URL: "", ...env },
        }).then(
            ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
            (error: { code: number; stdout: string; stderr: string }) => error,
        );

    it("applies the migrations, then nothing, and reports both", async () => {
        const url = pg.url(await pg.createDatabase());
        const first = await cli(["--database-url", url]);
        assert.equal(first.code, 0, first.stderr);
        assert.match(first.stdout, /applied 0001_dimensions\.sql\n/);
        const second = await cli([], { DATABASE_URL: url });
        assert.equal(second.code, 0, second.stderr);
        assert.match(second.stdout, /^0 applied, \d+ already applied/);
    });

    it("fails with the error and without the password", async () => {
        const url = pg.url(await pg.createDatabase()).replace(encodeURIComponent(pg.password), "wrong-Secret-1");
        const denied = await cli(["--database-url", url]);
        assert.equal(denied.code, 1);
        assert.match(denied.stderr, /error: password authentication failed/);
        const positional = await cli([url]);
        assert.equal(positional.code, 1);
        assert.match(positional.stderr, /Unexpected argument/);
        for (const output of [denied, positional]) {
            assert.ok(!(output.stdout + output.stderr).includes("wrong-Secret-1"), "password printed");
        }
        const missing = await cli([]);
        assert.equal(missing.code, 1);
        assert.match(missing.stderr, /no database URL given/);
    });
});
