import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { AirflowConfig } from "../config";
import { type Healthcheck, oneShotContainer, publish, serviceContainer } from "../lib/containers";
import { localImage } from "../lib/images";
import { type SecretFile, airflowCommandVariable, fileVariable, secretPath, secretReaderGroups, secretUploads } from "../lib/secretFiles";
import { urlSafePassword } from "../lib/secrets";
import { platform, userSpec } from "../platform";
import type { ContentVolume } from "./contentVolume";
import { type TlsIdentity, tlsUploads } from "./mutualTls";

export interface AirflowArgs {
    namePrefix: string;
    network: pulumi.Input<string>;
    bindAddress: string;
    config: AirflowConfig;
    logVolume: pulumi.Input<string>;
    /** Where the init step keeps the Fernet keys it has used (mounted in the init step only). */
    keysVolume: pulumi.Input<string>;
    /** The DAG files (a ContentVolume), mounted read-only. */
    dags: ContentVolume;
    /** SQLAlchemy URL of Airflow's metadata database (secret). */
    metadataUrl: pulumi.Input<string>;
    /** Warehouse login the Spark job uses, and its JDBC URL. */
    warehouse: { jdbcUrl: string; user: string; password: pulumi.Input<string> };
    executorAddress: { host: string; port: number };
    sparkMasterUrl: string;
    /** The stack's CA and Airflow's client identity for the executor's mutual TLS. */
    executorTls: { caCert: pulumi.Input<string>; identity: TlsIdentity };
    /** Where every Airflow process sends its StatsD metrics; unset: none are sent. */
    statsd?: { host: string; port: number; prefix: string };
}

/**
 * The grpc connection's extras naming the mutual-TLS files. The provider's SSL/TLS auth type
 * passes only a CA file, never a client certificate, so the DAGs open the channel themselves
 * (vpe_dags.executor.mutual_tls_channel, the provider's CUSTOM auth type).
 */
export const grpcTlsExtras = {
    auth_type: "CUSTOM",
    ca_file: `${platform.tls.dir}/${platform.tls.caFile}`,
    cert_file: `${platform.tls.dir}/${platform.tls.certFile}`,
    key_file: `${platform.tls.dir}/${platform.tls.keyFile}`,
};

/** Connections provisioned as AIRFLOW_CONN_* variables, keyed by connection id. */
export function airflowConnections(args: Pick<AirflowArgs, "executorAddress" | "sparkMasterUrl">): Record<string, object> {
    const master = new URL(args.sparkMasterUrl);
    return {
        [platform.connections.grpc]: {
            conn_type: "grpc",
            host: args.executorAddress.host,
            port: args.executorAddress.port,
            extra: grpcTlsExtras,
        },
        [platform.connections.spark]: {
            conn_type: "spark",
            host: `${master.protocol}//${master.hostname}`,
            port: Number(master.port),
        },
    };
}

export function connectionEnv(connections: Record<string, object>): string[] {
    return Object.entries(connections).map(([id, conn]) => `AIRFLOW_CONN_${id.toUpperCase()}=${JSON.stringify(conn)}`);
}

/** Slots per Celery worker: the stack's parallelism shared out, so the workers together offer it. */
export function celeryWorkerConcurrency(config: Pick<AirflowConfig, "parallelism" | "celeryWorkers">): number {
    return Math.ceil(config.parallelism / Math.max(config.celeryWorkers, 1));
}

/** A Fernet key: 32 random bytes as padded URL-safe base64 (the unpadded form is rejected). */
export function fernetKey(bytes: random.RandomBytes): pulumi.Output<string> {
    return pulumi.secret(bytes.base64.apply((b64) => b64.replace(/\+/g, "-").replace(/\//g, "_")));
}

const fabAuthManager = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager";

// An Airflow job (scheduler, DAG processor, triggerer) that has not beaten for jobHeartbeatMaxAgeSeconds
// is unhealthy (Airflow's triggerer default); a scheduler silent for schedulerRestartAfterSeconds is
// ended by its probe, for Docker to restart.
const { jobHeartbeatMaxAgeSeconds, schedulerRestartAfterSeconds } = platform.airflowProbes;

/**
 * Airflow 3: a one-shot init (db migrate, Fernet key rotation, admin user) that must succeed, then the API server,
 * scheduler, DAG processor and triggerer (plus Redis and Celery workers with CeleryExecutor),
 * all sharing one JWT secret, Fernet key and execution API URL.
 */
export class Airflow extends pulumi.ComponentResource {
    declare readonly url: string;
    declare readonly adminUser: string;
    declare readonly adminPassword: pulumi.Output<string>;
    /** The long-running containers (services, Redis, Celery workers). */
    declare readonly containerNames: string[];
    /** The one-shot init: db migrate, Fernet key rotation, admin user. Run again after a restore. */
    declare readonly initContainerName: string;
    /** With CeleryExecutor: Redis' password, for the Redis exporter. */
    declare readonly redisPassword: pulumi.Output<string> | undefined;

    constructor(name: string, args: AirflowArgs, opts?: pulumi.ComponentResourceOptions) {
        super("vpe:platform:Airflow", name, {}, opts);
        const prefix = args.namePrefix;
        const image = localImage(
            `${prefix}-airflow-image`,
            {
                namePrefix: prefix,
                service: "airflow",
                args: { AIRFLOW_IMAGE: platform.images.airflow, PLATFORM_FILE: platform.paths.platformFile },
            },
            { parent: this },
        );
        const jwtSecret = urlSafePassword(`${prefix}-airflow-jwt-secret`, this);
        const apiSecretKey = urlSafePassword(`${prefix}-airflow-api-secret-key`, this);
        const adminPassword = urlSafePassword(`${prefix}-airflow-admin-password`, this);
        const fernet = new random.RandomBytes(`${prefix}-airflow-fernet-key`, { length: 32 }, { parent: this });

        const celery = args.config.executor === "CeleryExecutor";
        const redis = celery ? this.redis(prefix, args) : undefined;
        const brokerUrl = redis?.brokerUrl;
        this.redisPassword = redis?.password;
        const secret = (name: string, value: pulumi.Input<string>): SecretFile => ({ name, value });
        const metadataUrl = secret("airflow-metadata-url", args.metadataUrl);
        const secrets = {
            metadataUrl,
            fernetKey: secret("airflow-fernet-key", fernetKey(fernet)),
            jwtSecret: secret("airflow-jwt-secret", jwtSecret.result),
            apiSecretKey: secret("airflow-api-secret-key", apiSecretKey.result),
            warehousePassword: secret("warehouse-password", args.warehouse.password),
            brokerUrl: brokerUrl && secret("airflow-broker-url", brokerUrl),
            resultBackend: secret("airflow-result-backend", pulumi.interpolate`db+${args.metadataUrl}`),
        };
        const apiServerUrl = `http://${platform.aliases.airflowApiServer}:${platform.ports.airflowApi}`;
        const envs: pulumi.Input<string>[] = [
            `AIRFLOW__CORE__EXECUTOR=${args.config.executor}`,
            `AIRFLOW__CORE__AUTH_MANAGER=${fabAuthManager}`,
            "AIRFLOW__CORE__LOAD_EXAMPLES=False",
            // A deployed platform runs its schedules: nobody has to unpause a DAG first.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False",
            `AIRFLOW__CORE__DAGS_FOLDER=${platform.paths.airflowDags}`,
            `AIRFLOW__CORE__EXECUTION_API_SERVER_URL=${apiServerUrl}/execution/`,
            `AIRFLOW__LOGGING__BASE_LOG_FOLDER=${platform.paths.logs}/airflow`,
            // Airflow's default of 32 starts 32 LocalExecutor processes (or Celery slots per worker) at once.
            `AIRFLOW__CORE__PARALLELISM=${args.config.parallelism}`,
            airflowCommandVariable("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", secrets.metadataUrl),
            airflowCommandVariable("AIRFLOW__CORE__FERNET_KEY", secrets.fernetKey),
            airflowCommandVariable("AIRFLOW__API_AUTH__JWT_SECRET", secrets.jwtSecret),
            airflowCommandVariable("AIRFLOW__API__SECRET_KEY", secrets.apiSecretKey),
            ...connectionEnv(airflowConnections(args)),
            `${platform.env.warehouseJdbcUrl}=${args.warehouse.jdbcUrl}`,
            `${platform.env.warehouseUser}=${args.warehouse.user}`,
            fileVariable(platform.env.warehousePassword, secrets.warehousePassword),
        ];
        const files: SecretFile[] = [
            secrets.metadataUrl,
            secrets.fernetKey,
            secrets.jwtSecret,
            secrets.apiSecretKey,
            secrets.warehousePassword,
        ];
        if (args.statsd) {
            envs.push(
                "AIRFLOW__METRICS__STATSD_ON=True",
                `AIRFLOW__METRICS__STATSD_HOST=${args.statsd.host}`,
                `AIRFLOW__METRICS__STATSD_PORT=${args.statsd.port}`,
                `AIRFLOW__METRICS__STATSD_PREFIX=${args.statsd.prefix}`,
            );
        }
        if (secrets.brokerUrl) {
            envs.push(
                `AIRFLOW__CELERY__WORKER_CONCURRENCY=${celeryWorkerConcurrency(args.config)}`,
                airflowCommandVariable("AIRFLOW__CELERY__BROKER_URL", secrets.brokerUrl),
                airflowCommandVariable("AIRFLOW__CELERY__RESULT_BACKEND", secrets.resultBackend),
            );
            files.push(secrets.brokerUrl, secrets.resultBackend);
        }
        const uploads = [...secretUploads(files), ...tlsUploads(args.executorTls.caCert, args.executorTls.identity)];
        const volumes: docker.types.input.ContainerVolume[] = [
            { volumeName: args.dags.volumeName, containerPath: platform.paths.airflowDags, readOnly: true },
            { volumeName: args.logVolume, containerPath: platform.paths.logs },
        ];
        const user = userSpec(platform.users.airflow);

        this.initContainerName = `${prefix}-airflow-init`;
        const adminPasswordFile = secret("airflow-admin-password", adminPassword.result);
        const init = oneShotContainer(
            {
                name: this.initContainerName,
                image: image.repoDigest,
                network: args.network,
                user,
                command: ["bash", platform.paths.airflowInit],
                envs: [
                    ...envs,
                    `${platform.env.adminUsername}=${args.config.adminUser}`,
                    fileVariable(platform.env.adminPassword, adminPasswordFile),
                ],
                uploads: [...uploads, ...secretUploads([adminPasswordFile])],
                volumes: [...volumes, { volumeName: args.keysVolume, containerPath: platform.paths.airflowKeys }],
            },
            { parent: this, dependsOn: [args.dags.synced] },
        );

        const containerNames: string[] = celery ? [`${prefix}-${platform.aliases.redis}`] : [];
        const service = (alias: string, command: string[], healthcheck: Healthcheck, ports?: docker.types.input.ContainerPort[]) => {
            const name = `${prefix}-${alias}`;
            containerNames.push(name);
            serviceContainer(
                {
                    name,
                    image: image.repoDigest,
                    network: args.network,
                    alias,
                    user,
                    command,
                    envs,
                    uploads,
                    volumes,
                    ports,
                    // Ties every service to a successful init: a failed init stops the update here.
                    labels: [{ label: "org.vpe.airflow-init", value: init.succeeded }],
                    healthcheck,
                    waitTimeoutSeconds: 300,
                },
                { parent: this, dependsOn: [args.dags.synced] },
            );
        };
        const httpCheck = (port: number, path: string): Healthcheck => ({
            test: ["CMD", "curl", "-fsS", "-o", "/dev/null", `http://localhost:${port}${path}`],
            timeoutSeconds: 10,
            startPeriodSeconds: 60,
        });
        // `airflow jobs check` would import Airflow on every probe (2.4 s of CPU here); this asks
        // the metadata database the same question in 0.05 s.
        const jobCheck = (jobType: string, restartAfterSeconds?: number): Healthcheck => ({
            test: [
                "CMD",
                "python",
                platform.paths.airflowJobProbe,
                jobType,
                String(jobHeartbeatMaxAgeSeconds),
                ...(restartAfterSeconds === undefined ? [] : [String(restartAfterSeconds)]),
            ],
            intervalSeconds: 3,
            timeoutSeconds: 10,
            retries: 10,
            startPeriodSeconds: 60,
        });

        service(
            platform.aliases.airflowApiServer,
            ["api-server"],
            httpCheck(platform.ports.airflowApi, "/api/v2/monitor/health"),
            [publish(args.bindAddress, platform.ports.airflowApi, args.config.hostPort)],
        );
        // The scheduler's probe is also its liveness probe: a scheduler that hangs is ended, and Docker restarts it.
        service(platform.aliases.airflowScheduler, ["scheduler"], jobCheck("SchedulerJob", schedulerRestartAfterSeconds));
        service(platform.aliases.airflowDagProcessor, ["dag-processor"], jobCheck("DagProcessorJob"));
        service(platform.aliases.airflowTriggerer, ["triggerer"], jobCheck("TriggererJob"));
        for (let i = 1; i <= args.config.celeryWorkers; i++) {
            // A ping through the broker to this worker, as `celery inspect ping` sends it, from a
            // bare Celery app: 0.2 s of CPU where `--app <celeryApp>` imports Airflow (2.5 s).
            service(`${platform.aliases.airflowWorker}-${i}`, ["celery", "worker"], {
                test: ["CMD", "python", platform.paths.airflowCeleryProbe, "5"],
                intervalSeconds: 5,
                timeoutSeconds: 15,
                retries: 6,
                startPeriodSeconds: 60,
            });
        }

        this.url = `http://${args.bindAddress}:${args.config.hostPort}`;
        this.adminUser = args.config.adminUser;
        this.adminPassword = pulumi.secret(adminPassword.result);
        this.containerNames = containerNames;
        this.registerOutputs({ url: this.url, adminUser: this.adminUser, adminPassword: this.adminPassword });
    }

    /** Redis as the Celery broker; returns the broker URL and the password (both secret). */
    private redis(prefix: string, args: AirflowArgs): { brokerUrl: pulumi.Output<string>; password: pulumi.Output<string> } {
        const image = new docker.RemoteImage(
            `${prefix}-redis-image`,
            { name: platform.images.redis, keepLocally: true },
            { parent: this },
        );
        const password = urlSafePassword(`${prefix}-redis-password`, this);
        // Redis reads no password file, but it reads its config file: the password lives there,
        // off the command line and out of the environment. The probe reads its own copy.
        const config: SecretFile = { name: "redis.conf", value: pulumi.interpolate`requirepass ${password.result}\n` };
        const probePassword: SecretFile = { name: "redis-password", value: password.result };
        const container = serviceContainer(
            {
                name: `${prefix}-${platform.aliases.redis}`,
                image: image.imageId,
                network: args.network,
                alias: platform.aliases.redis,
                // The image's redis user, who owns /data; group 0 reads the uploaded files.
                user: userSpec(platform.users.redis),
                groupAdds: secretReaderGroups,
                command: ["redis-server", secretPath(config.name)],
                uploads: secretUploads([config, probePassword]),
                healthcheck: {
                    test: ["CMD-SHELL", `REDISCLI_AUTH="$(cat ${secretPath(probePassword.name)})" redis-cli ping | grep -q PONG`],
                },
            },
            { parent: this },
        );
        return {
            brokerUrl: pulumi.secret(
                pulumi.interpolate`redis://:${password.result}@${container.name.apply(() => platform.aliases.redis)}:${platform.ports.redis}/0`,
            ),
            // Once Redis runs: the exporter logs in at start.
            password: pulumi.secret(pulumi.all([container.name, password.result]).apply(([, value]) => value)),
        };
    }
}
