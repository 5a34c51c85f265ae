// The dynamic provider as Pulumi ships it: serialized by the SDK (taken from
// the resource's `__provider` input under mocks), revived with
// require-from-string like the dynamic-provider host does, and run against a
// real PostgreSQL.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import * as pulumi from "@pulumi/pulumi";
import type { MigrationFile } from "../../warehouse/migrate";
import { PostgresServer, startPostgres } from "../support/postgres";
import { count, tableExists, tempDir, withClient } from "./support";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const requireFromString = require("require-from-string") as (code: string) => { handler(): DynamicProvider };

type Props = Record<string, unknown>;
interface DynamicProvider {
    create(inputs: Props): Promise<{ id: string; outs: Props }>;
    diff(id: string, olds: Props, news: Props): Promise<{ changes: boolean; replaces: string[] }>;
    update(id: string, olds: Props, news: Props): Promise<{ outs: Props }>;
    delete(id: string, props: Props): Promise<void>;
}

const REPO = join(__dirname, "..", "..");
const run = promisify(execFile);

let pg: PostgresServer;
let serialized: string;
let declared: Props;

before(async () => {
    pg = await startPostgres();
    const recorded: Record<string, Props> = {};
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                recorded[args.name] = args.inputs;
                return { id: `${args.name}-id`, state: args.inputs };
            },
            call: (args) => args.inputs,
        },
        "vpe",
        "test",
        false,
    );
    const { WarehouseMigrations, readMigrationFiles } = await import("../../warehouse/migrationsResource");
    const resource = new WarehouseMigrations("warehouse-migrations", {
        host: pg.host,
        port: pg.port,
        database: "placeholder",
        user: pg.user,
        password: pg.password,
        sslmode: "disable",
        migrations: readMigrationFiles(),
    });
    await new Promise<void>((resolve) => resource.urn.apply(() => resolve()));
    declared = recorded["warehouse-migrations"];
    serialized = declared.__provider as string;
});
after(async () => {
    await pg?.stop();
});

/** The plain inputs the engine hands a dynamic provider for one database. */
async function inputsFor(overrides: Props = {}): Promise<Props> {
    return { ...declared, database: await pg.createDatabase(), password: pg.password, ...overrides };
}

describe("WarehouseMigrations", () => {
    it("declares the migration files' names and contents as inputs", async () => {
        const { readMigrationFiles } = await import("../../warehouse/migrationsResource");
        assert.deepEqual(declared.migrations, readMigrationFiles());
        assert.equal(typeof serialized, "string");
    });

    it("creates, diffs, updates and deletes through the serialized provider", async () => {
        const provider = requireFromString(serialized).handler();
        const inputs = await inputsFor();
        const files = inputs.migrations as MigrationFile[];

        const created = await provider.create(inputs);
        assert.equal(created.id, `${pg.host}:${pg.port}/${inputs.database}`);
        assert.deepEqual(created.outs.applied, files.map((f) => f.name));
        assert.deepEqual(created.outs.versions, files.map((f) => Number(f.name.slice(0, 4))));
        assert.equal("password" in created.outs, false, "password kept out of the state's outputs");

        assert.deepEqual(await provider.diff(created.id, created.outs, inputs), { changes: false, replaces: [], deleteBeforeReplace: false });

        const extra: MigrationFile = { name: "0099_extra.sql", sql: "CREATE TABLE extra (id int);" };
        const grown = { ...inputs, migrations: [...files, extra] };
        const grownDiff = await provider.diff(created.id, created.outs, grown);
        assert.equal(grownDiff.changes, true);
        assert.deepEqual(grownDiff.replaces, []);
        const updated = await provider.update(created.id, created.outs, grown);
        assert.deepEqual(updated.outs.applied, ["0099_extra.sql"]);
        assert.equal((updated.outs.versions as number[]).at(-1), 99);

        const edited = { ...grown, migrations: [...files, { ...extra, sql: "CREATE TABLE extra (id bigint);" }] };
        assert.equal((await provider.diff(created.id, updated.outs, edited)).changes, true);
        await assert.rejects(provider.update(created.id, updated.outs, edited), /0099_extra\.sql was edited after it was applied/);

        const moved = await provider.diff(created.id, updated.outs, { ...grown, database: "elsewhere" });
        assert.deepEqual([moved.changes, moved.replaces], [true, []], "a new target is an update, never a replacement");

        await provider.delete(created.id, updated.outs);
        await withClient(pg.config(inputs.database as string), async (client) => {
            assert.equal(await tableExists(client, "extra"), true, "delete keeps the schema");
            assert.equal(await count(client, "schema_migrations"), files.length + 1);
        });
    });

    it("runs in plain node, as in Pulumi's dynamic-provider host", async () => {
        const dir = tempDir("vpe-provider-");
        writeFileSync(join(dir, "provider.js"), serialized);
        const inputs = await inputsFor();
        writeFileSync(join(dir, "inputs.json"), JSON.stringify(inputs));
        const script = `
            const fs = require("node:fs");
            const provider = require("require-from-string")(fs.readFileSync(process.argv[1], "utf8")).handler();
            provider.create(JSON.parse(fs.readFileSync(process.argv[2], "utf8")))
                .then((result) => console.log(JSON.stringify(result.outs.applied)));`;
        // cwd is the project directory, as for the host; no tsx preloaded.
        const { stdout } = await run(process.execPath, ["-e", script, join(dir, "provider.js"), join(dir, "inputs.json")], {
            cwd: REPO,
            env: { ...process.env, NODE_OPTIONS: "" },
        });
        assert.deepEqual(JSON.parse(stdout), (inputs.migrations as MigrationFile[]).map((f) => f.name));
    });
});
