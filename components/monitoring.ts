import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as fs from "node:fs";
import * as path from "node:path";
import type { MetricsConfig } from "../config";
import { publish, serviceContainer } from "../lib/containers";
import type { Workload } from "../lib/workload";
import { goDuration } from "../lib/durations";
import { localImage } from "../lib/images";
import { type SecretFile, secretPath, secretReaderGroups, secretUploads } from "../lib/secretFiles";
import { platform, projectRoot } from "../platform";
import { countedTables } from "../warehouse/tables";
import type { Login } from "./warehouse";

/** One Prometheus scrape job: the services answering `metricsPath` on the stack network. */
export interface ScrapeJob {
    job: string;
    /** `alias:port` on the stack network. */
    targets: string[];
    metricsPath: string;
    /** Its own interval, where a scrape costs more than the global one allows. */
    intervalSeconds?: number;
}

/** The warehouse as the PostgreSQL exporter reaches it on the stack network. */
export interface MonitoredWarehouse {
    login: Login;
    host: string;
    port: number;
}

export interface MonitoringArgs {
    namePrefix: string;
    network: pulumi.Input<string>;
    bindAddress: string;
    config: MetricsConfig;
    jobs: ScrapeJob[];
    warehouse: MonitoredWarehouse;
    /** With CeleryExecutor: Redis' password, for the Redis exporter. */
    redisPassword?: pulumi.Output<string>;
    /** Where maintenance writes the backups' state; its filesystem is the one holding the stack's volumes. */
    metricsVolume: pulumi.Input<string>;
    /** The stack's other long-running containers, whose restarts, memory and CPU the container exporter reports. */
    watchedContainers: string[];
    /** Keep the samples and silences volumes when the stack is destroyed. */
    retainData: boolean;
}

/** The alert rules shipped with the stack (unit-tested with promtool). */
export const alertRulesFile = path.join(projectRoot, "monitoring", "alerts.yml");
/** How Airflow's StatsD names become the Prometheus names of the official Helm chart. */
export const statsdMappingFile = path.join(projectRoot, "monitoring", "statsd-mapping.yml");

/** Where Airflow sends its StatsD metrics: the exporter translating them for Prometheus. */
export const airflowStatsd = { host: platform.aliases.statsdExporter, port: platform.ports.statsd, prefix: "airflow" };

const prometheusConfigFile = `${platform.paths.prometheusConfig}/vpe.yml`;
const rulesFile = `${platform.paths.prometheusConfig}/rules/vpe.yml`;
const alertmanagerConfigFile = `${platform.paths.alertmanagerConfig}/vpe.yml`;

/** How soon a new alert group is sent, how often it is re-sent while it fires. */
export const alertTiming = { groupWait: goDuration(10), groupInterval: goDuration(60), repeatInterval: goDuration(4 * 3600) };

/** Prometheus' configuration: JSON, which its YAML parser reads as it is. */
export function prometheusConfig(namePrefix: string, config: MetricsConfig, jobs: ScrapeJob[]): string {
    const interval = goDuration(config.scrapeIntervalSeconds);
    const self: ScrapeJob = { job: "prometheus", targets: [`localhost:${platform.ports.prometheus}`], metricsPath: "/metrics" };
    return JSON.stringify(
        {
            global: { scrape_interval: interval, evaluation_interval: interval, external_labels: { stack: namePrefix } },
            rule_files: [rulesFile],
            alerting: {
                alertmanagers: [{ static_configs: [{ targets: [`${platform.aliases.alertmanager}:${platform.ports.alertmanager}`] }] }],
            },
            scrape_configs: [self, ...jobs].map((j) => ({
                job_name: j.job,
                ...(j.intervalSeconds === undefined ? {} : { scrape_interval: goDuration(j.intervalSeconds) }),
                metrics_path: j.metricsPath,
                static_configs: [{ targets: j.targets }],
            })),
        },
        null,
        2,
    );
}

/** Alertmanager's configuration: every alert to the stack's webhook, or, without one, nowhere. */
export function alertmanagerConfig(webhookUrl: string | undefined): string {
    const receiver = webhookUrl ? "webhook" : "none";
    return JSON.stringify(
        {
            route: {
                receiver,
                group_by: ["alertname", "job", "instance"],
                group_wait: alertTiming.groupWait,
                group_interval: alertTiming.groupInterval,
                repeat_interval: alertTiming.repeatInterval,
            },
            receivers: [webhookUrl ? { name: receiver, webhook_configs: [{ url: webhookUrl, send_resolved: true }] } : { name: receiver }],
        },
        null,
        2,
    );
}

/**
 * The PostgreSQL exporter's own query (its --extend.query-path format, JSON being YAML): each
 * warehouse table's exact row count as `vpe_warehouse_rows{relation}`.
 */
export function warehouseQueries(tables: string[]): string {
    return JSON.stringify(
        {
            vpe_warehouse: {
                query: tables.map((t) => `SELECT '${t}' AS relation, count(*) AS rows FROM public.${t}`).join(" UNION ALL "),
                master: true,
                metrics: [
                    { relation: { usage: "LABEL", description: "The warehouse table" } },
                    { rows: { usage: "GAUGE", description: "Its rows, counted exactly" } },
                ],
            },
        },
        null,
        2,
    );
}

/** Every mount of node_exporter's container but the metrics volume: its own root, /etc/hosts and the like. */
export const nodeExporterMountsExcluded = `^/(dev|proc|sys|etc)($|/)|^/$`;

/** Exact counts of millions of rows: once a minute is history enough. */
export const warehouseScrapeSeconds = 60;

const readable = "0444";

type ImageKey = "prometheus" | "alertmanager" | "statsd-exporter" | "postgres-exporter" | "node-exporter" | "redis-exporter";
/** An image the stack builds from docker/<service>. */
interface LocalBuild {
    service: string;
    args: Record<string, string>;
}

/** An exporter on the stack network: its image, where Prometheus scrapes it, what its container adds. */
interface Exporter {
    image: ImageKey | LocalBuild;
    alias: string;
    port: number;
    job: string;
    /** What its healthcheck fetches: a page that costs nothing to serve. */
    probePath: string;
    intervalSeconds?: number;
    container: Pick<Workload, "command" | "envs" | "uploads" | "volumes" | "groupAdds">;
}

/** Airflow's StatsD in, Prometheus' names out. Its counters live in memory: a restart resets them, which rate() and increase() allow for. */
function statsdExporter(): Exporter {
    return {
        image: "statsd-exporter",
        alias: platform.aliases.statsdExporter,
        port: platform.ports.statsdExporterWeb,
        job: "airflow",
        probePath: "/-/ready",
        container: {
            command: [
                `--statsd.mapping-config=${platform.paths.statsdMapping}`,
                `--statsd.listen-udp=:${platform.ports.statsd}`,
                "--statsd.listen-tcp=",
                `--web.listen-address=:${platform.ports.statsdExporterWeb}`,
            ],
            uploads: [{ file: platform.paths.statsdMapping, content: fs.readFileSync(statsdMappingFile, "utf8"), permissions: readable }],
        },
    };
}

/** As the read-only monitoring role, its password a file (the image's _FILE variable). */
function postgresExporter(warehouse: MonitoredWarehouse): Exporter {
    const password: SecretFile = { name: "monitoring-password", value: warehouse.login.password };
    return {
        image: "postgres-exporter",
        alias: platform.aliases.postgresExporter,
        port: platform.ports.postgresExporter,
        job: "postgres",
        // Its landing page: /metrics would count the warehouse on every probe. pg_up says whether it reaches PostgreSQL.
        probePath: "/",
        intervalSeconds: warehouseScrapeSeconds,
        container: {
            groupAdds: secretReaderGroups,
            envs: [
                `DATA_SOURCE_URI=${warehouse.host}:${warehouse.port}/${platform.databases.warehouse}?sslmode=disable`,
                `DATA_SOURCE_USER=${warehouse.login.user}`,
                `DATA_SOURCE_PASS_FILE=${secretPath(password.name)}`,
            ],
            command: [`--extend.query-path=${platform.paths.postgresExporterQueries}`, `--web.listen-address=:${platform.ports.postgresExporter}`],
            uploads: [...secretUploads([password]), { file: platform.paths.postgresExporterQueries, content: warehouseQueries(countedTables), permissions: readable }],
        },
    };
}

/**
 * Only what the stack needs of node_exporter: the backups' state maintenance writes, and how full
 * the filesystem under the volumes is (local volumes share the engine's data filesystem).
 */
function nodeExporter(metricsVolume: pulumi.Input<string>): Exporter {
    return {
        image: "node-exporter",
        alias: platform.aliases.nodeExporter,
        port: platform.ports.nodeExporter,
        job: "node",
        probePath: "/",
        container: {
            command: [
                "--collector.disable-defaults",
                "--collector.textfile",
                `--collector.textfile.directory=${platform.paths.metricsTextfiles}`,
                "--collector.filesystem",
                `--collector.filesystem.mount-points-exclude=${nodeExporterMountsExcluded}`,
                `--web.listen-address=:${platform.ports.nodeExporter}`,
            ],
            volumes: [{ volumeName: metricsVolume, containerPath: platform.paths.metricsTextfiles, readOnly: true }],
        },
    };
}

/** Celery's broker; its password file maps each Redis address to the password it logs in with. */
function redisExporter(redisPassword: pulumi.Output<string>): Exporter {
    const address = `redis://${platform.aliases.redis}:${platform.ports.redis}`;
    const passwords: SecretFile = { name: "redis-exporter-passwords.json", value: redisPassword.apply((password) => JSON.stringify({ [address]: password })) };
    return {
        image: "redis-exporter",
        alias: platform.aliases.redisExporter,
        port: platform.ports.redisExporter,
        job: "redis",
        probePath: "/health",
        container: {
            groupAdds: secretReaderGroups,
            command: [`--redis.addr=${address}`, `--redis.password-file=${secretPath(passwords.name)}`, `--web.listen-address=:${platform.ports.redisExporter}`],
            uploads: secretUploads([passwords]),
        },
    };
}

/**
 * Each watched container's restarts, state, health, memory and CPU, from the engine running it.
 * Reading the engine's socket is root-equivalent on its host: the exporter starts as root only to
 * learn the socket's group, then runs as nobody with that group, and only inspects and reads stats.
 */
function containerExporter(watched: string[], engineSocket: string): Exporter {
    return {
        image: { service: "container-exporter", args: { BASE_IMAGE: platform.images.debian, UV_VERSION: platform.versions.uv } },
        alias: platform.aliases.containerExporter,
        port: platform.ports.containerExporter,
        job: "containers",
        probePath: "/-/healthy",
        container: {
            command: [
                `--port=${platform.ports.containerExporter}`,
                `--socket=${platform.paths.engineSocket}`,
                `--uid=${platform.users.containerExporter.uid}`,
                `--gid=${platform.users.containerExporter.gid}`,
                ...watched,
            ],
            volumes: [{ hostPath: engineSocket, containerPath: platform.paths.engineSocket, readOnly: true }],
        },
    };
}

/**
 * Prometheus scraping every service of the stack and evaluating the shipped alert rules,
 * Alertmanager sending what fires to the stack's webhook, the StatsD exporter that turns
 * Airflow's StatsD metrics into Prometheus ones, the PostgreSQL, node and (with Celery) Redis
 * exporters, and (unless vpe:metrics.containers is off) the container exporter. Prometheus and
 * Alertmanager keep their state (samples, silences) in volumes that outlive their containers;
 * each runs as its image's non-root user.
 */
export class Monitoring extends pulumi.ComponentResource {
    declare readonly prometheusUrl: string;
    declare readonly containerNames: string[];
    declare readonly dataVolumeName: pulumi.Output<string>;

    constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
        super("vpe:platform:Monitoring", name, {}, opts);
        const prefix = args.namePrefix;
        const prometheusName = `${prefix}-${platform.aliases.prometheus}`;
        const alertmanagerName = `${prefix}-${platform.aliases.alertmanager}`;
        const image = (key: ImageKey) =>
            new docker.RemoteImage(`${prefix}-${key}-image`, { name: platform.images[key], keepLocally: true }, { parent: this });
        const exporterImage = (source: ImageKey | LocalBuild): pulumi.Output<string> =>
            typeof source === "string"
                ? image(source).imageId
                : localImage(`${prefix}-${source.service}-image`, { namePrefix: prefix, ...source }, { parent: this }).repoDigest;
        const volume = (suffix: string) =>
            new docker.Volume(`${prefix}-${suffix}`, { name: `${prefix}-${suffix}` }, { parent: this, retainOnDelete: args.retainData });
        const samples = volume("prometheus-data");
        const silences = volume("alertmanager-data");
        const probe = (port: number, urlPath = "/-/ready") => ({
            test: ["CMD", "wget", "-q", "-O", "/dev/null", `http://localhost:${port}${urlPath}`],
            startPeriodSeconds: 10,
        });

        const alertmanager = serviceContainer(
            {
                name: alertmanagerName,
                image: image("alertmanager").imageId,
                network: args.network,
                alias: platform.aliases.alertmanager,
                command: [
                    `--config.file=${alertmanagerConfigFile}`,
                    `--storage.path=${platform.paths.alertmanagerData}`,
                    `--web.listen-address=:${platform.ports.alertmanager}`,
                    // One instance: no gossip port for peers.
                    "--cluster.listen-address=",
                ],
                // The webhook URL may carry a token: secret in the state, never in `docker inspect`.
                uploads: [{ file: alertmanagerConfigFile, content: pulumi.secret(alertmanagerConfig(args.config.alertWebhookUrl)), permissions: readable }],
                volumes: [{ volumeName: silences.name, containerPath: platform.paths.alertmanagerData }],
                healthcheck: probe(platform.ports.alertmanager),
            },
            { parent: this },
        );
        const exporters = [
            statsdExporter(),
            postgresExporter(args.warehouse),
            nodeExporter(args.metricsVolume),
            ...(args.redisPassword ? [redisExporter(args.redisPassword)] : []),
        ];
        const monitoringNames = [prometheusName, alertmanagerName, ...exporters.map((e) => `${prefix}-${e.alias}`)];
        if (args.config.containers) {
            // It reports on itself too: its own restarts are the first sign of an engine it cannot read.
            const name = `${prefix}-${platform.aliases.containerExporter}`;
            exporters.push(containerExporter([...args.watchedContainers, ...monitoringNames, name], args.config.engineSocket));
        }
        for (const e of exporters) {
            serviceContainer(
                { name: `${prefix}-${e.alias}`, image: exporterImage(e.image), network: args.network, alias: e.alias, healthcheck: probe(e.port, e.probePath), ...e.container },
                { parent: this },
            );
        }
        const exporterJobs: ScrapeJob[] = exporters.map((e) => ({ job: e.job, targets: [`${e.alias}:${e.port}`], metricsPath: "/metrics", intervalSeconds: e.intervalSeconds }));
        serviceContainer(
            {
                name: prometheusName,
                image: image("prometheus").imageId,
                network: args.network,
                alias: platform.aliases.prometheus,
                command: [
                    `--config.file=${prometheusConfigFile}`,
                    `--storage.tsdb.path=${platform.paths.prometheusData}`,
                    `--storage.tsdb.retention.time=${args.config.retentionDays}d`,
                    `--web.listen-address=:${platform.ports.prometheus}`,
                ],
                uploads: [
                    { file: prometheusConfigFile, content: prometheusConfig(prefix, args.config, [...exporterJobs, ...args.jobs]), permissions: readable },
                    { file: rulesFile, content: fs.readFileSync(alertRulesFile, "utf8"), permissions: readable },
                ],
                volumes: [{ volumeName: samples.name, containerPath: platform.paths.prometheusData }],
                ports: [publish(args.bindAddress, platform.ports.prometheus, args.config.hostPort)],
                healthcheck: probe(platform.ports.prometheus),
                // Prometheus closes its TSDB cleanly on SIGTERM; after a kill the next start replays its WAL.
                stopTimeoutSeconds: 30,
            },
            { parent: this, dependsOn: [alertmanager] },
        );
        this.prometheusUrl = `http://${args.bindAddress}:${args.config.hostPort}`;
        this.containerNames = [prometheusName, alertmanagerName, ...exporters.map((e) => `${prefix}-${e.alias}`)];
        this.dataVolumeName = samples.name;
        this.registerOutputs({ prometheusUrl: this.prometheusUrl, dataVolumeName: this.dataVolumeName });
    }
}
