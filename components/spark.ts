import * as pulumi from "@pulumi/pulumi";
import type { SparkConfig } from "../config";
import { publish } from "../lib/containers";
import { localImage } from "../lib/images";
import type { Runtime } from "../lib/workload";
import type { ScrapeJob } from "./monitoring";
import { platform, userSpec } from "../platform";

export interface SparkArgs {
    namePrefix: string;
    runtime: Runtime;
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
                registry: args.runtime.registry,
            },
            { parent: this },
        );
        const logs = { volumeName: args.logVolume, containerPath: platform.paths.logs };
        const user = userSpec(platform.users.spark);
        const masterName = `${args.namePrefix}-spark-master`;
        const master = args.runtime.run(
            {
                name: masterName,
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
        const workers = {
            name: `${args.namePrefix}-${platform.aliases.sparkWorker}`,
            alias: platform.aliases.sparkWorker,
            count: args.config.workers,
        };
        const workerServices = args.runtime.runReplicated(
            {
                ...workers,
                describe: ({ hostname }) => ({
                    image: image.repoDigest,
                    network: args.network,
                    user,
                    command: ["spark-class", "org.apache.spark.deploy.worker.Worker", sparkMasterUrl],
                    envs: [
                        `SPARK_WORKER_CORES=${args.config.workerCores}`,
                        `SPARK_WORKER_MEMORY=${args.config.workerMemory}`,
                        `SPARK_WORKER_WEBUI_PORT=${platform.ports.sparkWorkerUi}`,
                        `SPARK_WORKER_DIR=${platform.paths.logs}/spark/${hostname}`,
                        `SPARK_WORKER_OPTS=${workerCleanupOpts(args.logRetentionDays)} ${prometheusServletOpts}`,
                    ],
                    volumes: [logs],
                    healthcheck: {
                        test: ["CMD", "curl", "-fsS", "-o", "/dev/null", `http://localhost:${platform.ports.sparkWorkerUi}/json/`],
                        startPeriodSeconds: 20,
                    },
                }),
            },
            { parent: this, dependsOn: [master] },
        );
        const workerAliases = Array.from({ length: workers.count }, (_, i) => `${workers.alias}-${i + 1}`);
        this.masterUrl = sparkMasterUrl;
        this.uiUrl = `http://${args.bindAddress}:${args.config.masterUiHostPort}`;
        this.workerCount = args.config.workers;
        this.containerNames = [masterName, ...workerServices.map((w) => w.name)];
        // A swarm task's hostname does not resolve on the overlay network (its tasks are found as
        // tasks.<service>), which Monitoring does not query yet: no scrape jobs there.
        this.scrapeJobs =
            args.runtime.kind === "engine"
                ? [
                      { job: "spark-master", targets: [`${platform.aliases.sparkMaster}:${platform.ports.sparkMasterUi}`], metricsPath: platform.paths.sparkMasterMetrics },
                      { job: "spark-worker", targets: workerAliases.map((a) => `${a}:${platform.ports.sparkWorkerUi}`), metricsPath: platform.paths.sparkWorkerMetrics },
                  ]
                : [];
        this.registerOutputs({ masterUrl: this.masterUrl, uiUrl: this.uiUrl });
    }
}
