import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { PostgresConfig } from "../config";
import { publish, serviceContainer } from "../lib/containers";
import { type SecretFile, fileVariable, secretReaderGroups, secretUploads } from "../lib/secretFiles";
import { type SshTarget, openTunnel } from "../lib/ssh";
import { urlSafePassword } from "../lib/secrets";
import { platform, userSpec } from "../platform";

export interface PostgresArgs {
    namePrefix: string;
    network: pulumi.Input<string>;
    bindAddress: string;
    config: PostgresConfig;
    /** Keep the data volume when the stack is destroyed. */
    retainData: boolean;
    /**
     * The server the engine runs on, when it is reached over SSH: PostgreSQL is then published on
     * the server alone, and provisioning reaches it through a tunnel this run opens.
     */
    ssh?: SshTarget;
}

/** The admin password's file name under platform.json paths.secrets. */
export const adminPasswordFileName = "postgres-password";

/**
 * Starts the image's entrypoint with the given `-c` settings. On a data directory kept from an
 * earlier stack (destroy keeps it), the admin password is first set to this stack's generated one
 * in single-user mode, read from the uploaded file, so it never appears in a command line, the
 * environment or a log.
 */
export const startScript = [
    "set -euo pipefail",
    'if [ -s "$PGDATA/PG_VERSION" ]; then',
    `  printf "ALTER ROLE \\"%s\\" PASSWORD '%s'\\n" "$POSTGRES_USER" "$(cat "$POSTGRES_PASSWORD_FILE")" | postgres --single -D "$PGDATA" postgres >/dev/null`,
    "fi",
    "settings=()",
    'for setting in "$@"; do settings+=(-c "$setting"); done',
    'exec docker-entrypoint.sh postgres "${settings[@]}"',
].join("\n");

/**
 * The local end of the provisioning tunnel to a server's PostgreSQL: the same port number as on
 * the server, so the provider's settings (and the state) stay the same from run to run. A local
 * program already listening there makes the tunnel, and so the run, fail, naming the port.
 */
function tunnelled(ssh: SshTarget, bindAddress: string, hostPort: number): Promise<{ host: string; port: number }> {
    const remoteHost = bindAddress === "0.0.0.0" ? "127.0.0.1" : bindAddress;
    return openTunnel(ssh, [{ localPort: hostPort, remoteHost, remotePort: hostPort }]).then(
        () => ({ host: "127.0.0.1", port: hostPort }),
        (err: Error) => {
            throw new pulumi.RunError(`PostgreSQL provisioning tunnel to ${remoteHost}:${hostPort} on the server: ${err.message}`);
        },
    );
}

/**
 * PostgreSQL for Airflow's metadata and the warehouse. Its data lives in a named volume that
 * outlives the container; it is published on the bind address because the postgresql provider
 * connects from the machine running `pulumi up` (through an SSH tunnel to a server's). Its
 * `cluster_name` is the stack's prefix, so provisioning can tell it from another PostgreSQL.
 */
export class Postgres extends pulumi.ComponentResource {
    declare readonly host: pulumi.Output<string>;
    declare readonly port: pulumi.Output<number>;
    /** Host and port inside the stack network. */
    declare readonly internalHost: string;
    declare readonly internalPort: number;
    declare readonly adminUser: string;
    declare readonly adminPassword: pulumi.Output<string>;
    /** The admin password as the file delivered to containers that log in as the admin. */
    declare readonly adminPasswordFile: SecretFile;
    declare readonly dataVolumeName: pulumi.Output<string>;
    declare readonly containerName: string;
    /** The `cluster_name` setting: provisioning refuses a server that reports another. */
    declare readonly clusterName: string;

    constructor(name: string, args: PostgresArgs, opts?: pulumi.ComponentResourceOptions) {
        super("vpe:platform:Postgres", name, {}, opts);
        this.containerName = `${args.namePrefix}-postgres`;
        const image = new docker.RemoteImage(
            `${args.namePrefix}-postgres-image`,
            { name: platform.images.postgres, keepLocally: true },
            { parent: this },
        );
        const dataVolume = new docker.Volume(
            `${args.namePrefix}-postgres-data`,
            { name: `${args.namePrefix}-postgres-data` },
            { parent: this, retainOnDelete: args.retainData },
        );
        const password = urlSafePassword(`${args.namePrefix}-postgres-admin-password`, this);
        const adminUser = "postgres";
        const passwordFile: SecretFile = { name: adminPasswordFileName, value: password.result };
        const container = serviceContainer(
            {
                name: this.containerName,
                image: image.imageId,
                network: args.network,
                alias: platform.aliases.postgres,
                user: userSpec(platform.users.postgres),
                groupAdds: secretReaderGroups,
                uploads: secretUploads([passwordFile]),
                envs: [
                    `POSTGRES_USER=${adminUser}`,
                    fileVariable("POSTGRES_PASSWORD", passwordFile),
                    `PGDATA=${platform.paths.postgresData}`,
                ],
                command: ["bash", "-c", startScript, "vpe-postgres", `shared_buffers=${args.config.sharedBuffers}`, `cluster_name=${args.namePrefix}`],
                volumes: [{ volumeName: dataVolume.name, containerPath: platform.paths.postgresData }],
                ports: [publish(args.bindAddress, platform.ports.postgres, args.config.hostPort)],
                memoryMb: args.config.memoryMb,
                // -h forces TCP: the image's init server listens on the socket only, so a socket
                // check would pass before the real server is up.
                healthcheck: {
                    test: ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", adminUser, "-d", "postgres"],
                    startPeriodSeconds: 30,
                },
                stopTimeoutSeconds: 60,
            },
            { parent: this },
        );
        const endpoint = args.ssh
            ? tunnelled(args.ssh, args.bindAddress, args.config.hostPort)
            : Promise.resolve({ host: args.bindAddress, port: args.config.hostPort });
        const reachable = pulumi.all([container.name, endpoint]).apply(([, e]) => e);
        this.host = reachable.host;
        this.port = reachable.port;
        this.clusterName = args.namePrefix;
        this.internalHost = platform.aliases.postgres;
        this.internalPort = platform.ports.postgres;
        this.adminUser = adminUser;
        this.adminPassword = pulumi.secret(password.result);
        this.adminPasswordFile = passwordFile;
        this.dataVolumeName = dataVolume.name;
        this.registerOutputs({
            host: this.host,
            port: this.port,
            adminPassword: this.adminPassword,
            dataVolumeName: this.dataVolumeName,
        });
    }
}
