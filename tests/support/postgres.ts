// A throwaway PostgreSQL cluster for tests: initdb into a temp dir, start it on
// a free loopback port with password (scram) authentication, stop and delete it.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Client, ClientConfig } from "pg";

const run = promisify(execFile);
const HOST = "127.0.0.1";
const SUPERUSER = "postgres";
const CLUSTER = "vpe-test";

export interface PostgresServer {
    readonly host: string;
    readonly port: number;
    readonly user: string;
    readonly password: string;
    /** Its `cluster_name`, as the stack sets its PostgreSQL's to the stack's prefix. */
    readonly cluster: string;
    /** Client settings for one database of this cluster. */
    config(database: string): ClientConfig;
    url(database: string): string;
    /** Creates an empty database with a unique name and returns that name. */
    createDatabase(): Promise<string>;
    stop(): Promise<void>;
}

export interface StartOptions {
    /**
     * Keep fsync and synchronous commit on (benchmarks). Tests turn them off:
     * they only need correctness, and the cluster is deleted afterwards.
     */
    durable?: boolean;
}

// initdb and postgres refuse to run as root, so root delegates to the distro's
// postgres account.
async function serverAccount(): Promise<{ uid: number; gid: number } | undefined> {
    if (process.getuid?.() !== 0) {
        return undefined;
    }
    const uid = Number((await run("id", ["-u", SUPERUSER])).stdout.trim());
    const gid = Number((await run("id", ["-g", SUPERUSER])).stdout.trim());
    return { uid, gid };
}

async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = createServer();
        server.once("error", reject);
        server.listen(0, HOST, () => {
            const address = server.address();
            server.close(() =>
                typeof address === "object" && address !== null
                    ? resolve(address.port)
                    : reject(new Error("could not determine a free port")),
            );
        });
    });
}

export async function startPostgres(options: StartOptions = {}): Promise<PostgresServer> {
    const account = await serverAccount();
    const root = mkdtempSync(join(tmpdir(), "vpe-pg-"));
    const dataDir = join(root, "data");
    const passwordFile = join(root, "password");
    const password = randomBytes(18).toString("base64url");
    writeFileSync(passwordFile, password, { mode: 0o600 });
    if (account) {
        chownSync(root, account.uid, account.gid);
        chownSync(passwordFile, account.uid, account.gid);
    }
    const asServer = (command: string, args: string[]) => run(command, args, { ...account });

    await asServer("initdb", [
        "-D", dataDir, "-U", SUPERUSER, "--auth=scram-sha-256", `--pwfile=${passwordFile}`,
        "--encoding=UTF8", "--locale=C", "--no-instructions",
    ]);
    const durability = options.durable ? "" : " -c fsync=off -c synchronous_commit=off -c full_page_writes=off";
    const port = await freePort();
    await asServer("pg_ctl", [
        "-D", dataDir, "-l", join(root, "server.log"), "-w", "-o",
        `-c listen_addresses=${HOST} -p ${port} -k ${root} -c cluster_name=${CLUSTER}${durability}`, "start",
    ]);

    let databases = 0;
    const config = (database: string): ClientConfig => ({ host: HOST, port, user: SUPERUSER, password, database });
    return {
        host: HOST,
        port,
        user: SUPERUSER,
        password,
        cluster: CLUSTER,
        config,
        url: (database) =>
            `postgresql://${SUPERUSER}:${encodeURIComponent(password)}@${HOST}:${port}/${database}`,
        async createDatabase() {
            databases += 1;
            const name = `test_${databases}_${randomBytes(4).toString("hex")}`;
            const client = new Client(config("postgres"));
            await client.connect();
            try {
                await client.query(`CREATE DATABASE ${name}`);
            } finally {
                await client.end();
            }
            return name;
        },
        async stop() {
            try {
                await asServer("pg_ctl", ["-D", dataDir, "-m", "fast", "-w", "stop"]);
            } finally {
                rmSync(root, { recursive: true, force: true });
            }
        },
    };
}
