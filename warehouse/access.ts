// Login roles and databases, converged rather than created: a stack destroyed with its data kept
// leaves them in the cluster, and the next `pulumi up` takes them over (password and owner set to
// the new stack's) instead of failing on "already exists".
import { Client, type ClientConfig } from "pg";

export interface Converged {
    /** Whether the role or database existed before this call. */
    existed: boolean;
}

/** A connected client for the duration of `run`, always closed afterwards. */
export async function withClient<T>(config: ClientConfig, run: (client: Client) => Promise<T>): Promise<T> {
    const client = new Client(config);
    await client.connect();
    try {
        return await run(client);
    } finally {
        await client.end();
    }
}

/**
 * Refuses to work on a PostgreSQL that is not the stack's: its `cluster_name` must be `expected`
 * (the stack's prefix). What answers at the stack's address may be another stack's server (the
 * same local port, a tunnel that did not open), which must be left untouched.
 */
export async function checkCluster(config: ClientConfig, expected: string): Promise<void> {
    const where = `PostgreSQL at ${config.host}:${config.port}`;
    const advice = "another PostgreSQL answers where this stack's should (another stack on the same port?): nothing was changed there; stop it or change vpe:postgres.hostPort";
    let actual: string;
    try {
        actual = await withClient(config, async (client) => (await client.query<{ name: string }>("SELECT current_setting('cluster_name') AS name")).rows[0].name);
    } catch (err) {
        if ((err as { code?: string }).code === "28P01") {
            throw new Error(`${where} refused this stack's admin password: ${advice}`);
        }
        throw err;
    }
    if (actual !== expected) {
        throw new Error(`${where} is ${actual === "" ? "a server without a cluster_name" : `the cluster ${JSON.stringify(actual)}`}, not this stack's ${JSON.stringify(expected)}: ${advice}`);
    }
}

/** Creates a login role with this password, or sets it on the role that exists. */
/** A login role with `password`, member of the built-in roles `memberOf` (pg_monitor, say). */
export async function ensureLoginRole(config: ClientConfig, name: string, password: string, memberOf: string[] = []): Promise<Converged> {
    return withClient(config, async (client) => {
        const existed = (await client.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [name])).rowCount === 1;
        const verb = existed ? "ALTER" : "CREATE";
        const role = client.escapeIdentifier(name);
        await client.query(`${verb} ROLE ${role} WITH LOGIN PASSWORD ${client.escapeLiteral(password)}`);
        for (const granted of memberOf) await client.query(`GRANT ${client.escapeIdentifier(granted)} TO ${role}`);
        return { existed };
    });
}

export async function dropRole(config: ClientConfig, name: string): Promise<void> {
    await withClient(config, (client) => client.query(`DROP ROLE IF EXISTS ${client.escapeIdentifier(name)}`));
}

/** Creates a database owned by `owner`, or makes `owner` the owner of the one that exists. */
export async function ensureDatabase(config: ClientConfig, name: string, owner: string): Promise<Converged> {
    return withClient(config, async (client) => {
        const existed = (await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name])).rowCount === 1;
        const database = client.escapeIdentifier(name);
        const ownerRole = client.escapeIdentifier(owner);
        // CREATE DATABASE cannot run inside a transaction block, hence no single DO statement.
        await client.query(existed ? `ALTER DATABASE ${database} OWNER TO ${ownerRole}` : `CREATE DATABASE ${database} OWNER ${ownerRole}`);
        return { existed };
    });
}

/** Drops the database, ending its sessions first. */
export async function dropDatabase(config: ClientConfig, name: string): Promise<void> {
    await withClient(config, (client) => client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`));
}
