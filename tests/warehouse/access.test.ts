// The login-role and database resources as Pulumi ships them (serialized by the SDK under mocks,
// revived with require-from-string like the dynamic-provider host), against a real PostgreSQL:
// creating what already exists takes it over, which is what lets a destroyed stack come back.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Client } from "pg";
import { PostgresServer, startPostgres } from "../support/postgres";
import { createInPlainNode, declaredInputs, type DynamicProvider, type Props, revive } from "./dynamicProviders";
import { withClient } from "./support";

let pg: PostgresServer;
let declared: Record<string, Props> = {};

before(async () => {
    pg = await startPostgres();
    const { Database, LoginRole } = await import("../../warehouse/accessResource");
    const admin = { host: pg.host, port: pg.port, adminUser: pg.user, adminPassword: pg.password, sslmode: "disable" as const, cluster: pg.cluster };
    declared = await declaredInputs(async () => [
        new LoginRole("role", { admin, name: "placeholder", password: "placeholder" }),
        new Database("db", { admin, name: "placeholder", owner: "placeholder" }),
    ]);
});
after(async () => {
    await pg?.stop();
});

function provider(resource: "role" | "db"): DynamicProvider {
    return revive(declared[resource]);
}

function inputs(resource: "role" | "db", values: Props): Props {
    return { ...declared[resource], adminPassword: pg.password, ...values };
}

let unique = 0;
const uniqueName = (prefix: string) => `${prefix}_${process.pid}_${++unique}`;

async function canLogIn(user: string, password: string): Promise<boolean> {
    return withClient({ ...pg.config("postgres"), user, password }, async () => true).catch(() => false);
}

async function databaseOwner(name: string): Promise<string | undefined> {
    return withClient(pg.config("postgres"), async (client) => {
        const rows = (await client.query("SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1", [name])).rows;
        return rows[0]?.owner;
    });
}

describe("LoginRole", () => {
    it("creates a login role, and on a second create takes it over with the new password", async () => {
        const roles = provider("role");
        const name = uniqueName("writer");
        const first = await roles.create(inputs("role", { name, password: "first-password" }));
        assert.deepEqual([first.id, first.outs.existed], [name, false]);
        assert.ok(await canLogIn(name, "first-password"));

        // A destroyed stack kept the role; the next stack creates it again with its own password.
        const again = await roles.create(inputs("role", { name, password: "second-password" }));
        assert.equal(again.outs.existed, true);
        assert.ok(await canLogIn(name, "second-password"));
        assert.equal(await canLogIn(name, "first-password"), false);
    });

    it("updates the password in place, replaces on a new name, and drops the role on delete", async () => {
        const roles = provider("role");
        const name = uniqueName("analyst");
        const created = await roles.create(inputs("role", { name, password: "one" }));
        assert.deepEqual(await roles.diff(name, created.outs, inputs("role", { name, password: "one" })), { changes: false, replaces: [], deleteBeforeReplace: false });
        const rotated = inputs("role", { name, password: "two" });
        assert.deepEqual((await roles.diff(name, created.outs, rotated)).replaces, []);
        const updated = await roles.update(name, created.outs, rotated);
        assert.ok(await canLogIn(name, "two"));
        assert.deepEqual((await roles.diff(name, updated.outs, inputs("role", { name: "other", password: "two" }))).replaces, ["name"]);
        await roles.delete(name, updated.outs);
        assert.equal(await canLogIn(name, "two"), false);
    });

    it("makes the role a member of the roles it names, shows no change for one recorded before memberOf, and a change when it moves", async () => {
        const roles = provider("role");
        const name = uniqueName("monitoring");
        const created = await roles.create(inputs("role", { name, password: "watch", memberOf: ["pg_monitor"] }));
        const memberOf = () =>
            withClient(pg.config("postgres"), async (client) =>
                (await client.query("SELECT b.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member JOIN pg_roles b ON b.oid = m.roleid WHERE r.rolname = $1", [name])).rows.map((r) => r.rolname),
            );
        assert.deepEqual(await memberOf(), ["pg_monitor"]);
        // Converging again grants again, which PostgreSQL takes as a no-op.
        await roles.update(name, created.outs, inputs("role", { name, password: "watch", memberOf: ["pg_monitor"] }));
        assert.deepEqual(await memberOf(), ["pg_monitor"]);
        assert.ok(await canLogIn(name, "watch"));
        const plain = await roles.create(inputs("role", { name: uniqueName("plain"), password: "p" }));
        assert.equal((await roles.diff(plain.id, plain.outs, inputs("role", { name: plain.id, password: "p" }))).changes, false);
        assert.equal((await roles.diff(name, created.outs, inputs("role", { name, password: "watch" }))).changes, true);
    });

    it("rejects a wrong admin password before changing anything", async () => {
        const name = uniqueName("nobody");
        await assert.rejects(provider("role").create(inputs("role", { name, password: "x", adminPassword: "wrong" })), /PostgreSQL at 127\.0\.0\.1:\d+ refused this stack's admin password: another PostgreSQL answers/);
        assert.equal(await canLogIn(name, "x"), false);
    });

    it("refuses a PostgreSQL that is not the stack's, naming it, and creates nothing there", async () => {
        const name = uniqueName("elsewhere");
        await assert.rejects(
            provider("role").create(inputs("role", { name, password: "x", cluster: "vpe-server" })),
            new RegExp(`PostgreSQL at 127\\.0\\.0\\.1:${pg.port} is the cluster "vpe-test", not this stack's "vpe-server": another PostgreSQL answers`),
        );
        await assert.rejects(provider("db").create(inputs("db", { name, owner: pg.user, cluster: "vpe-server" })), /not this stack's "vpe-server"/);
        assert.equal(await canLogIn(name, "x"), false);
        assert.equal(await databaseOwner(name), undefined);
    });

    it("runs in plain node, as in Pulumi's dynamic-provider host", async () => {
        const name = uniqueName("plain");
        const created = await createInPlainNode(declared.role, inputs("role", { name, password: "plain-node" }));
        assert.equal(created.id, name);
        assert.ok(await canLogIn(name, "plain-node"));
    });
});

describe("Database", () => {
    it("creates a database, takes an existing one over with the declared owner, and drops it on delete despite open sessions", async () => {
        const roles = provider("role");
        const databases = provider("db");
        const owner = uniqueName("owner");
        await roles.create(inputs("role", { name: owner, password: "owner-password" }));
        const name = uniqueName("db");

        const created = await databases.create(inputs("db", { name, owner }));
        assert.deepEqual([created.id, created.outs.existed, await databaseOwner(name)], [name, false, owner]);

        await withClient(pg.config("postgres"), (client) => client.query(`ALTER DATABASE "${name}" OWNER TO "${pg.user}"`));
        const again = await databases.create(inputs("db", { name, owner }));
        assert.deepEqual([again.outs.existed, await databaseOwner(name)], [true, owner]);

        const session = new Client(pg.config(name));
        session.on("error", () => undefined); // the forced drop ends this session
        await session.connect();
        await databases.delete(name, again.outs);
        await session.end().catch(() => undefined);
        assert.equal(await databaseOwner(name), undefined);
    });
});
