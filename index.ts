// The vpe platform, one stack per environment: composes the components and exports what a
// user needs to reach each service.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as path from "path";
import { Airflow } from "./components/airflow";
import { ContentVolume } from "./components/contentVolume";
import { Executor } from "./components/executor";
import { Maintenance } from "./components/maintenance";
import { Monitoring, airflowStatsd } from "./components/monitoring";
import { MutualTls } from "./components/mutualTls";
import { Network } from "./components/network";
import { Postgres } from "./components/postgres";
import { PreparedVolume } from "./components/preparedVolume";
import { Spark } from "./components/spark";
import { Warehouse, postgresUrl } from "./components/warehouse";
import { loadConfig } from "./config";
import { useEngine } from "./lib/dockerEngine";
import { engineRuntime } from "./lib/workload";
import { sshArgs } from "./lib/ssh";
import { platform, projectRoot } from "./platform";

const config = loadConfig();
try {
    useEngine(config.engine);
} catch (err) {
    throw new pulumi.RunError((err as Error).message); // before any resource: nothing is changed
}
const prefix = config.namePrefix;
const retainData = !config.deleteDataOnDestroy;

// Every stack file so far runs on one engine; the swarm runtime is exercised by the test swarm.
const runtime = engineRuntime;
const network = new Network(prefix, { namePrefix: prefix, runtime });

const debian = new docker.RemoteImage(`${prefix}-debian-image`, { name: platform.images.debian, keepLocally: true });
const airflowVolume = (volume: string, subdirs: string[], mode: string, retainOnDelete = retainData) =>
    new PreparedVolume(`${prefix}-${volume}`, {
        volumeName: `${prefix}-${volume}`,
        initImage: debian.imageId,
        subdirs,
        owner: platform.users.airflow,
        mode,
        retainOnDelete,
    });
const logVolume = airflowVolume("logs", platform.logSubdirs, "2775");
const bufferVolume = airflowVolume("buffer", [], "2775");
// Backup sets hold every row: readable by the maintenance user (the Airflow uid) alone.
const backupVolume = airflowVolume("backups", [], "0700");
// Airflow's earlier Fernet keys, kept with the data so a stack that comes back can re-encrypt.
const airflowKeysVolume = airflowVolume("airflow-keys", [], "0700");
// The backups' state as maintenance writes it for node_exporter, readable by its nobody; derived, so not kept.
const metricsVolume = config.metrics.enabled ? airflowVolume("metrics", [], "0755", false) : undefined;
// What containers read from the project travels as stack content, never as a bind mount of the
// checkout (which a remote engine would create empty).
const projectContent = (volume: string, sourceDir: string) =>
    new ContentVolume(`${prefix}-${volume}`, { volumeName: `${prefix}-${volume}`, sourceDir, syncImage: debian.imageId });
const dagsVolume = projectContent("dags", "dags");
const dataVolume = projectContent("data", "data/fixtures");

const postgres = new Postgres(prefix, {
    namePrefix: prefix,
    network: network.name,
    bindAddress: config.bindAddress,
    config: config.postgres,
    retainData,
    ssh: config.engine.ssh,
});

const warehouse = new Warehouse(prefix, {
    namePrefix: prefix,
    host: postgres.host,
    port: postgres.port,
    adminUser: postgres.adminUser,
    adminPassword: postgres.adminPassword,
    cluster: postgres.clusterName,
    migrationsDir: path.join(projectRoot, "warehouse", "migrations"),
    retainData,
    monitoring: config.metrics.enabled,
});

const internal = { host: postgres.internalHost, port: postgres.internalPort };
// Only Airflow holds a client certificate the executor accepts.
const executorTls = new MutualTls(`${prefix}-executor`, {
    namePrefix: prefix,
    generation: config.tls.generation,
    serverName: platform.aliases.executor,
    clientName: "airflow",
});
const executor = new Executor(prefix, {
    namePrefix: prefix,
    network: network.name,
    bindAddress: config.bindAddress,
    config: config.executor,
    bufferVolume: bufferVolume.name,
    logVolume: logVolume.name,
    data: dataVolume,
    warehouseUrl: postgresUrl(warehouse.writerLogin, internal.host, internal.port, platform.databases.warehouse),
    weather: config.weather,
    tls: { caCert: executorTls.caCert, identity: executorTls.server },
});

const spark = new Spark(prefix, {
    namePrefix: prefix,
    runtime,
    network: network.name,
    bindAddress: config.bindAddress,
    config: config.spark,
    logVolume: logVolume.name,
    logRetentionDays: config.logs.retentionDays,
});

const airflow = new Airflow(prefix, {
    namePrefix: prefix,
    network: network.name,
    bindAddress: config.bindAddress,
    config: config.airflow,
    logVolume: logVolume.name,
    keysVolume: airflowKeysVolume.name,
    dags: dagsVolume,
    metadataUrl: postgresUrl(
        warehouse.airflowLogin,
        internal.host,
        internal.port,
        platform.databases.airflow,
        "postgresql+psycopg2",
    ),
    warehouse: {
        jdbcUrl: `jdbc:postgresql://${internal.host}:${internal.port}/${platform.databases.warehouse}`,
        user: warehouse.writerLogin.user,
        password: warehouse.writerLogin.password,
    },
    executorAddress: { host: platform.aliases.executor, port: platform.ports.executorGrpc },
    sparkMasterUrl: spark.masterUrl,
    executorTls: { caCert: executorTls.caCert, identity: executorTls.client },
    statsd: config.metrics.enabled ? airflowStatsd : undefined,
});

const maintenance = new Maintenance(prefix, {
    namePrefix: prefix,
    network: network.name,
    backup: config.backup,
    logs: config.logs,
    logVolume: logVolume.name,
    backupVolume: backupVolume.name,
    keysVolume: airflowKeysVolume.name,
    postgres: { host: internal.host, port: internal.port, user: postgres.adminUser, passwordFile: postgres.adminPasswordFile },
    databases: [platform.databases.warehouse, platform.databases.airflow],
    metricsVolume: metricsVolume?.name,
});

const serviceContainers = [
    postgres.containerName,
    executor.containerName,
    ...spark.containerNames,
    ...airflow.containerNames,
    maintenance.containerName,
];

const monitoring = config.metrics.enabled
    ? new Monitoring(prefix, {
          namePrefix: prefix,
          network: network.name,
          bindAddress: config.bindAddress,
          config: config.metrics,
          jobs: [...executor.scrapeJobs, ...spark.scrapeJobs],
          warehouse: { login: warehouse.monitoringLogin!, host: internal.host, port: internal.port },
          metricsVolume: metricsVolume!.name,
          redisPassword: airflow.redisPassword,
          watchedContainers: serviceContainers,
          retainData,
      })
    : undefined;

/** The engine the stack runs on, for the commands: null is this machine's own. */
export const dockerHost = config.engine.host ?? null;
export const sshOpts = config.engine.ssh?.options ?? null;
/** On a server, the published ports are the server's: this opens them on this machine. */
export const tunnelCommand = config.engine.ssh
    ? ["ssh", ...sshArgs(config.engine.ssh, ["-N", ...[config.airflow.hostPort, config.spark.masterUiHostPort, config.postgres.hostPort, ...(monitoring ? [config.metrics.hostPort] : [])].flatMap((p) => ["-L", `${p}:127.0.0.1:${p}`])])].join(" ")
    : null;
export const airflowUrl = airflow.url;
export const airflowAdminUser = airflow.adminUser;
export const airflowAdminPassword = airflow.adminPassword;
export const sparkMasterUrl = spark.masterUrl;
/** Prometheus' UI and query API, or null when vpe:metrics.enabled is off. */
export const prometheusUrl = monitoring?.prometheusUrl ?? null;
export const prometheusDataVolumeName = monitoring?.dataVolumeName ?? null;
export const sparkUiUrl = spark.uiUrl;
export const sparkWorkers = spark.workerCount;
export const executorAddress = executor.address;
export const executorHostAddress = executor.hostAddress;
export const postgresHost = postgres.host;
export const postgresPort = postgres.port;
export const databases = platform.databases;
export const warehouseMigrations = warehouse.appliedMigrations;
export const warehouseWriterUrl = postgresUrl(warehouse.writerLogin, postgres.host, postgres.port, platform.databases.warehouse);
export const warehouseAnalystUrl = postgresUrl(warehouse.analystLogin, postgres.host, postgres.port, platform.databases.warehouse);
export const airflowDatabaseUrl = postgresUrl(warehouse.airflowLogin, postgres.host, postgres.port, platform.databases.airflow);
export const postgresAdminUser = postgres.adminUser;
export const postgresAdminPassword = postgres.adminPassword;
export const networkName = network.name;
export const logVolumeName = logVolume.name;
export const bufferVolumeName = bufferVolume.name;
export const postgresDataVolumeName = postgres.dataVolumeName;
export const backupVolumeName = backupVolume.name;
export const airflowKeysVolumeName = airflowKeysVolume.name;
/** Every long-running container, for `npm run status`; the commands find the rest by name here. */
export const containers = [...serviceContainers, ...(monitoring?.containerNames ?? [])];
export const executorContainer = executor.containerName;
export const postgresContainer = postgres.containerName;
export const maintenanceContainer = maintenance.containerName;
export const airflowInitContainer = airflow.initContainerName;
