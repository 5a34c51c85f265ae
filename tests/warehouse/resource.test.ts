// The dynamic provider as Pulumi ships it: serialized by the SDK (taken from
// the resource's `__provider` input under mocks), revived with
// require-from-string like the dynamic-provider host does, and run against a
// real PostgreSQL.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { MigrationFile } from "../../warehouse/migrate";
import { PostgresServer, startPostgres } from "../support/postgres";
import { createInPlainNode, declaredInputs, type Props, revive } from "./dynamicProviders";
import { count, tableExists, withClient } from "./support";

let pg: PostgresServer;
let serialized: string;
let declared: Props;

before(async () => {
    pg = await startPostgres();
    const { WarehouseMigrations, readMigrationFiles } = await import("../../warehouse/migrationsResource");
    const recorded = await declaredInputs(async () => [
        new WarehouseMigrations("warehouse-migrations", {
            host: pg.host,
            port: pg.port,
            database: "placeholder",
            user: pg.user,
            password: pg.password,
            sslmode: "disable",
            cluster: pg.cluster,
            migrations: readMigrationFiles(),
        }),
    ]);
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
        const provider = revive(declared);
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

    it("applies nothing to a PostgreSQL that is not the stack's, and says which one answered", async () => {
        const inputs = await inputsFor({ cluster: "vpe-server" });
        await assert.rejects(revive(declared).create(inputs), /PostgreSQL at 127\.0\.0\.1:\d+ is the cluster "vpe-test", not this stack's "vpe-server"/);
        await withClient(pg.config(inputs.database as string), async (client) => {
            assert.equal(await tableExists(client, "schema_migrations"), false);
        });
    });

    it("runs in plain node, as in Pulumi's dynamic-provider host", async () => {
        const inputs = await inputsFor();
        const created = await createInPlainNode(declared, inputs);
        assert.deepEqual(created.outs.applied, (inputs.migrations as MigrationFile[]).map((f) => f.name));
    });
});
