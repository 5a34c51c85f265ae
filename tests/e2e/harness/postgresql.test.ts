// The postgresql handlers against a real PostgreSQL server that the fixture stack itself creates
// in a container (the same shape as the product: provider built from the container's outputs).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { createServer } from "node:net";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Client } from "pg";
import { changed, destroy, outputValues, up } from "../../../e2e/harness";
import { platform } from "../../../platform";
import { provideImages } from "../platform";

const repo = path.resolve(__dirname, "..", "..", "..");
const prefix = `h5pg${randomBytes(3).toString("hex")}`;
const dir = path.join(repo, ".e2e", "fixtures", prefix);
const grantUrn = "urn:pulumi:test::pgfixture::postgresql:index/grant:Grant::writer-db";

function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = createServer();
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const address = server.address();
            server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
        });
    });
}

async function sql<T>(port: number, user: string, password: string, database: string, text: string, params: unknown[] = []): Promise<T[]> {
    const client = new Client({ host: "127.0.0.1", port, user, password, database });
    await client.connect();
    try {
        return (await client.query(text, params)).rows as T[];
    } finally {
        await client.end();
    }
}

before(() => provideImages("postgres"));

describe("postgresql handlers on a PostgreSQL the stack creates", () => {
    let port = 0;
    const options = (...config: string[]) => ({
        projectDir: dir,
        stack: "test",
        config: [`prefix=${prefix}`, `port=${port}`, `image=${platform.images.postgres}`, ...config],
        logStream: "ignore" as const,
    });

    after(async () => {
        try {
            await destroy(options('dbPrivileges=["CONNECT"]'));
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("creates role, database, schema and exact grants; re-applies nothing; updates a grant's set", async () => {
        port = await freePort();
        fs.cpSync(path.join(__dirname, "fixtures", "postgres"), dir, { recursive: true });
        const first = await up(options('dbPrivileges=["CONNECT"]'));
        const out = outputValues(first);
        const admin = String(out.adminPasswordValue);
        const writer = String(out.writerName);
        const db = String(out.databaseName);

        const rows = await sql<{ owner: string }>(port, writer, String(out.writerPasswordValue), db,
            "SELECT nspowner::regrole::text AS owner FROM pg_namespace WHERE nspname = 'staging'");
        assert.deepEqual(rows, [{ owner: writer }], "the writer can log in and owns the schema");
        const privs = () =>
            sql<{ connect: boolean; temp: boolean; pub: boolean }>(port, "postgres", admin, "postgres",
                "SELECT has_database_privilege($1, $2, 'CONNECT') AS connect, has_database_privilege($1, $2, 'TEMP') AS temp, " +
                    "EXISTS (SELECT 1 FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = $2 AND a.grantee = 0) AS pub",
                [writer, db]);
        assert.deepEqual(await privs(), [{ connect: true, temp: false, pub: false }], "PUBLIC lost its default grants");
        const defaults = await sql<{ acl: string }>(port, "postgres", admin, db, "SELECT defaclacl::text AS acl FROM pg_default_acl");
        assert.match(defaults[0].acl, new RegExp(`${writer}=r/postgres`));

        assert.deepEqual(changed(await up(options('dbPrivileges=["CONNECT"]'))), {});

        const updated = await up(options('dbPrivileges=["TEMPORARY"]'));
        assert.deepEqual(changed(updated), { [grantUrn]: "update" });
        assert.deepEqual(await privs(), [{ connect: false, temp: true, pub: false }], "exactly the new set");
    });
});
