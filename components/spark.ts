import * as pulumi from "@pulumi/pulumi";
import type { SparkConfig } from "../config";
import { publish, serviceContainer } from "../lib/containers";
import { localImage } from "../lib/images";
import type { ScrapeJob } from "./monitoring";
import { platform, userSpec } from "../platform";

export interface SparkArgs {
    namePrefix: string;
    network: pulumi.Input<string>;
    bindAddress: string;
    config: SparkConfig;
    logVolume: pulumi.Input<string>;
    /** Days a finished application's work folder is kept (Spark's own worker cleanup removes it). */
    logRetentionDays: number;
}

/**
 * The worker's own cleanup of finished applications' work folders under logs/spark, which it
 * owns (the maintenance container cannot remove them), checked as often as the log groomer runs.
 */
export function workerCleanupOpts(retentionDays: number): string {
    return [
        "-Dspark.worker.cleanup.enabled=true",
        `-Dspark.worker.cleanup.interval=${platform.maintenance.groomEveryMinutes * 60}`,
        `-Dspark.worker.cleanup.appDataTtl=${retentionDays * 24 * 3600}`,
    ].join(" ");
}

/**
 * Spark's PrometheusServlet on each daemon's UI port: the master's own metrics (alive workers,
 * applications) at platform paths.sparkMasterMetrics, a worker's at paths.sparkWorkerMetrics.
 */
export const prometheusServletOpts = [
    "-Dspark.metrics.conf.*.sink.prometheusServlet.class=org.apache.spark.metrics.sink.PrometheusServlet",
    `-Dspark.metrics.conf.*.sink.prometheusServlet.path=${platform.paths.sparkWorkerMetrics}`,
    `-Dspark.metrics.conf.master.sink.prometheusServlet.path=${platform.paths.sparkMasterMetrics}`,
].join(" ");

export const sparkMasterUrl = `spark://${platform.aliases.sparkMaster}:${platform.ports.sparkMaster}`;

/** Spark standalone: one master and `workers` workers registered with it. */
export class Spark extends pulumi.ComponentResource {
    declare readonly masterUrl: string;
    declare readonly uiUrl: string;
    declare readonly workerCount: number;
    declare readonly containerNames: string[];
    /** What Prometheus scrapes: the master's and each worker's PrometheusServlet. */
    declare readonly scrapeJobs: ScrapeJob[];

    constructor(name: string, args: SparkArgs, opts?: pulumi.ComponentResourceOptions) {
        super("vpe:platform:Spark", name, {}, opts);
        const image = localImage(
            `${args.namePrefix}-spark-image`,
            {
                namePrefix: args.namePrefix,
                service: "spark",
                args: { DEBIAN_IMAGE: platform.images.debian, SPARK_HOME: platform.paths.sparkHome },
            },
            { parent: this },
        );
        const logs = { volumeName: args.logVolume, containerPath: platform.paths.logs };
        const user = userSpec(platform.users.spark);
        const containerNames = [`${args.namePrefix}-spark-master`];
        const master = serviceContainer(
            {
                name: containerNames[0],
                image: image.repoDigest,
                network: args.network,
                alias: platform.aliases.sparkMaster,
                user,
                command: [
                    "spark-class",
                    "org.apache.spark.deploy.master.Master",
                    "--host",
                    platform.aliases.sparkMaster,
                    "--port",
                    String(platform.ports.sparkMaster),
                    "--webui-port",
                    String(platform.ports.sparkMasterUi),
                ],
                envs: [`SPARK_MASTER_OPTS=${prometheusServletOpts}`],
                volumes: [logs],
                ports: [publish(args.bindAddress, platform.ports.sparkMasterUi, args.config.masterUiHostPort)],
                healthcheck: {
                    test: ["CMD", "curl", "-fsS", "-o", "/dev/null", `http://localhost:${platform.ports.sparkMasterUi}/json/`],
                    startPeriodSeconds: 20,
                },
            },
            { parent: this },
        );
        const workerAliases: string[] = [];
        for (let i = 1; i <= args.config.workers; i++) {
            const alias = `${platform.aliases.sparkWorker}-${i}`;
            workerAliases.push(alias);
            containerNames.push(`${args.namePrefix}-${alias}`);
            serviceContainer(
                {
                    name: containerNames.at(-1)!,
                    image: image.repoDigest,
                    network: args.network,
                    alias,
                    user,
                    command: ["spark-class", "org.apache.spark.deploy.worker.Worker", sparkMasterUrl],
                    envs: [
                        `SPARK_WORKER_CORES=${args.config.workerCores}`,
                        `SPARK_WORKER_MEMORY=${args.config.workerMemory}`,
                        `SPARK_WORKER_WEBUI_PORT=${platform.ports.sparkWorkerUi}`,
                        `SPARK_WORKER_DIR=${platform.paths.logs}/spark/${alias}`,
                        `SPARK_WORKER_OPTS=${workerCleanupOpts(args.logRetentionDays)} ${prometheusServletOpts}`,
                    ],
                    volumes: [logs],
                    healthcheck: {
                        test: ["CMD", "curl", "-fsS", "-o", "/dev/null", `http://localhost:${platform.ports.sparkWorkerUi}/json/`],
                        startPeriodSeconds: 20,
                    },
                },
                { parent: this, dependsOn: [master] },
            );
        }
        this.masterUrl = sparkMasterUrl;
        this.uiUrl = `http://${args.bindAddress}:${args.config.masterUiHostPort}`;
        this.workerCount = args.config.workers;
        this.containerNames = containerNames;
        this.scrapeJobs = [
            { job: "spark-master", targets: [`${platform.aliases.sparkMaster}:${platform.ports.sparkMasterUi}`], metricsPath: platform.paths.sparkMasterMetrics },
            { job: "spark-worker", targets: workerAliases.map((a) => `${a}:${platform.ports.sparkWorkerUi}`), metricsPath: platform.paths.sparkWorkerMetrics },
        ];
        this.registerOutputs({ masterUrl: this.masterUrl, uiUrl: this.uiUrl });
    }
}
