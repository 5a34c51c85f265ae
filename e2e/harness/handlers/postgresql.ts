// postgresql provider and its Role, Database, Schema, Grant and DefaultPrivileges resources,
// following terraform-provider-postgresql (cyrilgdn): grants revoke everything on the object
// first and then grant exactly the declared set, in one transaction. The connection user is
// expected to be a superuser (the provider's default), so no temporary role grants are needed.
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import type { Props } from "../wire";
import type { Handler, HandlerContext, ProviderConfig } from "./types";

/** Provider inputs arrive as the SDK sends them: non-string values JSON-encoded. */
function providerValue(config: ProviderConfig, key: string): unknown {
    const raw = config.inputs[key];
    if (typeof raw !== "string") {
        return raw;
    }
    try {
        return JSON.parse(raw);
    } catch {
        return raw;
    }
}

function requireProvider(ctx: HandlerContext): ProviderConfig {
    if (ctx.provider === undefined || ctx.provider.type !== "pulumi:providers:postgresql") {
        throw new Error(
            `${ctx.urn}: needs an explicit postgresql provider ({ provider }); the default provider ` +
                "cannot reach a server created in the same stack",
        );
    }
    return ctx.provider;
}

async function connect(ctx: HandlerContext, database?: string): Promise<Client> {
    const config = requireProvider(ctx);
    const sslmode = String(providerValue(config, "sslmode") ?? providerValue(config, "sslMode") ?? "prefer");
    const client = new Client({
        host: providerValue(config, "host") as string,
        port: Number(providerValue(config, "port") ?? 5432),
        user: providerValue(config, "username") as string,
        password: providerValue(config, "password") as string | undefined,
        database: database ?? ((providerValue(config, "database") as string | undefined) ?? "postgres"),
        ssl: sslmode === "disable" ? false : { rejectUnauthorized: sslmode === "verify-full" },
        connectionTimeoutMillis: Number(providerValue(config, "connectTimeout") ?? 180) * 1000,
    });
    await client.connect();
    return client;
}

async function inTransaction(ctx: HandlerContext, database: string | undefined, statements: string[]): Promise<void> {
    const client = await connect(ctx, database);
    try {
        await client.query("BEGIN");
        for (const sql of statements) {
            await client.query(sql);
        }
        await client.query("COMMIT");
    } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw err;
    } finally {
        await client.end();
    }
}

const id = escapeIdentifier;
const str = (v: unknown) => v as string;

/**
 * The provider's advisory locks: concurrent GRANTs touching one role or database would
 * otherwise fail with "tuple concurrently updated" (Pulumi runs resources in parallel).
 */
function lockRole(role: string): string[] {
    return [
        "SET LOCAL statement_timeout = 0",
        `SELECT pg_advisory_xact_lock(oid::bigint) FROM pg_roles WHERE rolname = ${escapeLiteral(role)}`,
        "SELECT pg_advisory_xact_lock(member::bigint) FROM pg_auth_members JOIN pg_roles ON roleid = pg_roles.oid " +
            `WHERE rolname = ${escapeLiteral(role)}`,
    ];
}

function lockDatabase(database: string): string[] {
    return [`SELECT pg_advisory_xact_lock(oid::bigint) FROM pg_database WHERE datname = ${escapeLiteral(database)}`];
}

function grantLocks(g: Props): string[] {
    return [...lockRole(str(g.role)), ...(g.objectType === "database" ? lockDatabase(str(g.database)) : [])];
}

export const postgresqlProviderHandler: Handler = {
    type: "pulumi:providers:postgresql",
    inputs: ["host", "port", "username", "password", "database", "sslmode", "sslMode", "superuser", "connectTimeout", "maxConnections", "scheme", "expectedVersion", "version"],
    forceNew: [],
    async create() {
        return { id: "provider", outputs: {} };
    },
    async delete() {
        // A provider configuration owns nothing on the server.
    },
};

// ---- Role ----

const roleDefaults: Props = {
    login: false,
    superuser: false,
    createDatabase: false,
    createRole: false,
    inherit: true,
    replication: false,
    bypassRowLevelSecurity: false,
    connectionLimit: -1,
    encryptedPassword: true,
    skipDropRole: false,
    skipReassignOwned: false,
};

function roleOptions(r: Props): string {
    const flag = (on: unknown, yes: string, no: string) => (on === true ? yes : no);
    const parts = [
        flag(r.superuser, "SUPERUSER", "NOSUPERUSER"),
        flag(r.createDatabase, "CREATEDB", "NOCREATEDB"),
        flag(r.createRole, "CREATEROLE", "NOCREATEROLE"),
        flag(r.inherit, "INHERIT", "NOINHERIT"),
        flag(r.login, "LOGIN", "NOLOGIN"),
        flag(r.bypassRowLevelSecurity, "BYPASSRLS", "NOBYPASSRLS"),
        flag(r.replication, "REPLICATION", "NOREPLICATION"),
        `CONNECTION LIMIT ${Number(r.connectionLimit)}`,
        `VALID UNTIL ${escapeLiteral(typeof r.validUntil === "string" && r.validUntil !== "" ? r.validUntil : "infinity")}`,
    ];
    if (typeof r.password === "string" && r.password !== "") {
        parts.unshift(`${r.encryptedPassword === false ? "UNENCRYPTED" : "ENCRYPTED"} PASSWORD ${escapeLiteral(r.password)}`);
    }
    return parts.join(" ");
}

function roleSettings(r: Props): string[] {
    const role = id(str(r.name));
    const paths = r.searchPaths as string[] | undefined;
    return [
        paths && paths.length > 0 ? `ALTER ROLE ${role} SET search_path TO ${paths.map(id).join(", ")}` : `ALTER ROLE ${role} RESET search_path`,
        r.statementTimeout !== undefined ? `ALTER ROLE ${role} SET statement_timeout TO ${Number(r.statementTimeout)}` : `ALTER ROLE ${role} RESET statement_timeout`,
    ];
}

export const roleHandler: Handler = {
    type: "postgresql:index/role:Role",
    inputs: [
        "name", "login", "password", "superuser", "createDatabase", "createRole", "inherit", "replication",
        "bypassRowLevelSecurity", "connectionLimit", "validUntil", "encryptedPassword", "roles[]", "searchPaths[]",
        "statementTimeout", "skipDropRole", "skipReassignOwned",
    ],
    forceNew: [],
    defaults: roleDefaults,
    autoName: "name",
    async check(_ctx, news) {
        return { ...roleDefaults, ...news };
    },
    async create(ctx, r) {
        const role = id(str(r.name));
        const memberships = ((r.roles ?? []) as string[]).map((m) => `GRANT ${id(m)} TO ${role}`);
        await inTransaction(ctx, undefined, [`CREATE ROLE ${role} WITH ${roleOptions(r)}`, ...memberships, ...roleSettings(r)]);
        return { id: str(r.name), outputs: { ...r } };
    },
    async update(ctx, _id, olds, news) {
        const statements: string[] = [];
        if (olds.name !== news.name) {
            statements.push(`ALTER ROLE ${id(str(olds.name))} RENAME TO ${id(str(news.name))}`);
        }
        const role = id(str(news.name));
        statements.push(`ALTER ROLE ${role} WITH ${roleOptions(news)}`);
        const before = new Set((olds.roles ?? []) as string[]);
        const after = new Set((news.roles ?? []) as string[]);
        before.forEach((m) => after.has(m) || statements.push(`REVOKE ${id(m)} FROM ${role}`));
        after.forEach((m) => before.has(m) || statements.push(`GRANT ${id(m)} TO ${role}`));
        statements.push(...roleSettings(news));
        await inTransaction(ctx, undefined, statements);
        return { ...news };
    },
    async delete(ctx, _id, r) {
        // One transaction in the provider's database, as the provider does (owned objects in
        // other databases are not reassigned).
        const role = id(str(r.name));
        const statements = [...lockRole(str(r.name))];
        if (r.skipReassignOwned !== true) {
            statements.push(`REASSIGN OWNED BY ${role} TO CURRENT_USER`, `DROP OWNED BY ${role}`);
        }
        if (r.skipDropRole !== true) {
            statements.push(`DROP ROLE ${role}`);
        }
        await inTransaction(ctx, undefined, statements);
    },
};

// ---- Database ----

export const databaseHandler: Handler = {
    type: "postgresql:index/database:Database",
    inputs: ["name", "owner", "template", "encoding", "lcCollate", "lcCtype", "connectionLimit", "allowConnections", "isTemplate", "tablespaceName"],
    forceNew: ["template", "encoding", "lcCollate", "lcCtype"],
    defaults: { connectionLimit: -1, allowConnections: true, isTemplate: false },
    autoName: "name",
    async create(ctx, d) {
        const opt = (key: string, sql: (v: string) => string) => (typeof d[key] === "string" ? ` ${sql(d[key] as string)}` : "");
        const sql =
            `CREATE DATABASE ${id(str(d.name))}` +
            (typeof d.owner === "string" ? ` OWNER ${id(d.owner)}` : " OWNER CURRENT_USER") +
            ` TEMPLATE ${id(typeof d.template === "string" ? d.template : "template0")}` +
            ` ENCODING ${escapeLiteral(typeof d.encoding === "string" ? d.encoding : "UTF8")}` +
            opt("lcCollate", (v) => `LC_COLLATE ${escapeLiteral(v)}`) +
            opt("lcCtype", (v) => `LC_CTYPE ${escapeLiteral(v)}`) +
            opt("tablespaceName", (v) => `TABLESPACE ${id(v)}`) +
            ` ALLOW_CONNECTIONS ${d.allowConnections === false ? "false" : "true"}` +
            ` CONNECTION LIMIT ${Number(d.connectionLimit ?? -1)}` +
            ` IS_TEMPLATE ${d.isTemplate === true ? "true" : "false"}`;
        const client = await connect(ctx);
        try {
            await client.query(sql);
        } finally {
            await client.end();
        }
        return { id: str(d.name), outputs: { ...d } };
    },
    async update(ctx, _id, olds, news) {
        const statements: string[] = [];
        let name = id(str(olds.name));
        if (olds.name !== news.name) {
            statements.push(`ALTER DATABASE ${name} RENAME TO ${id(str(news.name))}`);
            name = id(str(news.name));
        }
        if (olds.owner !== news.owner && typeof news.owner === "string") {
            statements.push(`ALTER DATABASE ${name} OWNER TO ${id(news.owner)}`);
        }
        statements.push(
            `ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS ${news.allowConnections === false ? "false" : "true"} ` +
                `CONNECTION LIMIT ${Number(news.connectionLimit ?? -1)} IS_TEMPLATE ${news.isTemplate === true ? "true" : "false"}`,
        );
        if (olds.tablespaceName !== news.tablespaceName && typeof news.tablespaceName === "string") {
            statements.push(`ALTER DATABASE ${name} SET TABLESPACE ${id(news.tablespaceName)}`);
        }
        const client = await connect(ctx);
        try {
            for (const sql of statements) {
                await client.query(sql); // ALTER DATABASE cannot run inside a transaction block.
            }
        } finally {
            await client.end();
        }
        return { ...news };
    },
    async delete(ctx, _id, d) {
        const name = str(d.name);
        const client = await connect(ctx);
        try {
            if (d.isTemplate === true) {
                await client.query(`ALTER DATABASE ${id(name)} IS_TEMPLATE false`);
            }
            await client.query(`ALTER DATABASE ${id(name)} ALLOW_CONNECTIONS false`);
            await client.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [name]);
            await client.query(`DROP DATABASE IF EXISTS ${id(name)}`);
        } finally {
            await client.end();
        }
    },
};

// ---- Schema ----

export const schemaHandler: Handler = {
    type: "postgresql:index/schema:Schema",
    inputs: ["name", "database", "owner", "ifNotExists", "dropCascade"],
    forceNew: ["database"],
    defaults: { ifNotExists: true, dropCascade: false },
    autoName: "name",
    async create(ctx, s) {
        const owner = typeof s.owner === "string" ? ` AUTHORIZATION ${id(s.owner)}` : "";
        const ifNot = s.ifNotExists === false ? "" : "IF NOT EXISTS ";
        await inTransaction(ctx, s.database as string | undefined, [`CREATE SCHEMA ${ifNot}${id(str(s.name))}${owner}`]);
        return { id: `${s.database ?? ""}.${s.name}`, outputs: { ...s } };
    },
    async update(ctx, _id, olds, news) {
        const statements: string[] = [];
        if (olds.name !== news.name) {
            statements.push(`ALTER SCHEMA ${id(str(olds.name))} RENAME TO ${id(str(news.name))}`);
        }
        if (olds.owner !== news.owner && typeof news.owner === "string") {
            statements.push(`ALTER SCHEMA ${id(str(news.name))} OWNER TO ${id(news.owner)}`);
        }
        await inTransaction(ctx, news.database as string | undefined, statements);
        return { ...news };
    },
    async delete(ctx, _id, s) {
        const cascade = s.dropCascade === true ? " CASCADE" : "";
        await inTransaction(ctx, s.database as string | undefined, [`DROP SCHEMA IF EXISTS ${id(str(s.name))}${cascade}`]);
    },
};

// ---- Grant ----

function grantTarget(g: Props): string {
    const type = str(g.objectType).toUpperCase();
    const objects = (g.objects ?? []) as string[];
    const schema = typeof g.schema === "string" ? g.schema : "";
    switch (type) {
        case "DATABASE":
            return `DATABASE ${id(str(g.database))}`;
        case "SCHEMA":
            return `SCHEMA ${id(schema)}`;
        case "TABLE":
        case "SEQUENCE":
        case "FUNCTION":
        case "PROCEDURE":
        case "ROUTINE":
            return objects.length > 0
                ? `${type} ${objects.map((o) => `${id(schema)}.${id(o)}`).join(", ")}`
                : `ALL ${type}S IN SCHEMA ${id(schema)}`;
        default:
            throw new Error(`objectType: ${g.objectType} is not implemented by the harness (database, schema, table, sequence, function, procedure, routine)`);
    }
}

function validateGrant(g: Props): void {
    const type = str(g.objectType);
    if (!["database"].includes(type) && typeof g.schema !== "string") {
        throw new Error("schema: parameter 'schema' is mandatory for postgresql_grant resource");
    }
    if (((g.objects ?? []) as string[]).length > 0 && (type === "database" || type === "schema")) {
        throw new Error("objects: cannot specify `objects` when `objectType` is `database` or `schema`");
    }
}

/**
 * The provider's revoke: on listed tables/sequences/functions only the declared privileges are
 * revoked (so column-level grants survive); otherwise everything on the object.
 */
function revokeStatement(g: Props): string {
    const objectLevel = ["TABLE", "SEQUENCE", "FUNCTION", "PROCEDURE", "ROUTINE"].includes(str(g.objectType).toUpperCase());
    const privileges = (g.privileges ?? []) as string[];
    const objects = (g.objects ?? []) as string[];
    const what = objectLevel && objects.length > 0 && privileges.length > 0 ? privileges.join(",") : "ALL PRIVILEGES";
    return `REVOKE ${what} ON ${grantTarget(g)} FROM ${id(str(g.role))}`;
}

function grantStatements(g: Props, revokeFrom: Props): string[] {
    const privileges = (g.privileges ?? []) as string[];
    const statements = [...grantLocks(g), revokeStatement(revokeFrom)];
    if (privileges.length > 0) {
        const grantOption = g.withGrantOption === true ? " WITH GRANT OPTION" : "";
        statements.push(`GRANT ${privileges.join(",")} ON ${grantTarget(g)} TO ${id(str(g.role))}${grantOption}`);
    }
    return statements;
}

function grantId(g: Props): string {
    const parts = [str(g.role), str(g.database)];
    if (g.objectType !== "database") {
        parts.push(str(g.schema));
    }
    parts.push(str(g.objectType), ...((g.objects ?? []) as string[]));
    return parts.join("_");
}

export const grantHandler: Handler = {
    type: "postgresql:index/grant:Grant",
    inputs: ["database", "role", "schema", "objectType", "objects[]", "privileges[]", "withGrantOption"],
    forceNew: "*",
    updatable: ["privileges"],
    defaults: { withGrantOption: false },
    async create(ctx, g) {
        validateGrant(g);
        await inTransaction(ctx, str(g.database), grantStatements(g, g));
        return { id: grantId(g), outputs: { ...g } };
    },
    async update(ctx, _id, olds, news) {
        await inTransaction(ctx, str(news.database), grantStatements(news, olds));
        return { ...news };
    },
    async delete(ctx, _id, g) {
        await inTransaction(ctx, str(g.database), [...grantLocks(g), revokeStatement(g)]);
    },
};

// ---- DefaultPrivileges ----

function defaultPrivilegesScope(p: Props): string {
    const inSchema = typeof p.schema === "string" && p.schema !== "" ? ` IN SCHEMA ${id(p.schema)}` : "";
    return `ALTER DEFAULT PRIVILEGES FOR ROLE ${id(str(p.owner))}${inSchema}`;
}

function defaultPrivilegesRevoke(p: Props): string {
    return `${defaultPrivilegesScope(p)} REVOKE ALL ON ${str(p.objectType).toUpperCase()}S FROM ${id(str(p.role))}`;
}

async function applyDefaultPrivileges(ctx: HandlerContext, p: Props, revokeFrom: Props): Promise<void> {
    if (p.withGrantOption === true && str(p.role).toLowerCase() === "public") {
        throw new Error("withGrantOption: cannot be true for role 'public'");
    }
    const privileges = (p.privileges ?? []) as string[];
    const statements = [...lockRole(str(p.owner)), defaultPrivilegesRevoke(revokeFrom)];
    if (privileges.length > 0) {
        const grantOption = p.withGrantOption === true ? " WITH GRANT OPTION" : "";
        statements.push(
            `${defaultPrivilegesScope(p)} GRANT ${privileges.join(",")} ON ${str(p.objectType).toUpperCase()}S TO ${id(str(p.role))}${grantOption}`,
        );
    }
    await inTransaction(ctx, str(p.database), statements);
}

export const defaultPrivilegesHandler: Handler = {
    type: "postgresql:index/defaultPrivileges:DefaultPrivileges",
    inputs: ["database", "role", "owner", "schema", "objectType", "privileges[]", "withGrantOption"],
    forceNew: "*",
    updatable: ["privileges"],
    defaults: { withGrantOption: false },
    async create(ctx, p) {
        await applyDefaultPrivileges(ctx, p, p);
        const schema = typeof p.schema === "string" && p.schema !== "" ? p.schema : "noschema";
        return { id: [p.role, p.database, schema, p.owner, p.objectType].join("_"), outputs: { ...p } };
    },
    async update(ctx, _id, olds, news) {
        await applyDefaultPrivileges(ctx, news, olds);
        return { ...news };
    },
    async delete(ctx, _id, p) {
        await inTransaction(ctx, str(p.database), [...lockRole(str(p.owner)), defaultPrivilegesRevoke(p)]);
    },
};
