import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { ExecutorConfig, WeatherConfig } from "../config";
import { publish, serviceContainer } from "../lib/containers";
import { localImage } from "../lib/images";
import { type SecretFile, fileVariable, secretUploads } from "../lib/secretFiles";
import { platform, projectRoot, userSpec } from "../platform";
import type { ContentVolume } from "./contentVolume";
import type { ScrapeJob } from "./monitoring";
import { type TlsIdentity, tlsUploads } from "./mutualTls";

export interface ExecutorArgs {
    namePrefix: string;
    network: pulumi.Input<string>;
    bindAddress: string;
    config: ExecutorConfig;
    bufferVolume: pulumi.Input<string>;
    logVolume: pulumi.Input<string>;
    /** The pipelines' source data (a ContentVolume), mounted read-only. */
    data: ContentVolume;
    /** libpq URL of the pipeline writer role (secret). */
    warehouseUrl: pulumi.Input<string>;
    /** Where and how fast fetch_weather fetches hourly weather. */
    weather: WeatherConfig;
    /** The stack's CA and the executor's server identity: it serves mutual TLS only. */
    tls: { caCert: pulumi.Input<string>; identity: TlsIdentity };
}

/**
 * Whether any executor environment is a conda spec (environment.yml) rather than a locked uv
 * project: only then is the image built on the conda base image.
 */
export function usesConda(envsDir: string): boolean {
    return fs.readdirSync(envsDir).some((name) => fs.existsSync(path.join(envsDir, name, "environment.yml")));
}

/** The executor image's build args (the Dockerfile header documents them). */
export function executorBuildArgs(conda: boolean): Record<string, string> {
    return {
        BASE_IMAGE: conda ? platform.images.conda : platform.images.debian,
        PLATFORM_FILE: platform.paths.platformFile,
        ENVS_DIR: platform.paths.envs,
        EXECUTOR_UID: String(platform.users.executor.uid),
        GRPC_PORT: String(platform.ports.executorGrpc),
    };
}

/** The gRPC executor: runs declared pipeline tasks, each in its pipeline's own environment. */
export class Executor extends pulumi.ComponentResource {
    /** host:port on the stack network. */
    declare readonly address: string;
    declare readonly containerName: string;
    /** host:port on the host, or null when unpublished (a stack output of undefined warns on every up). */
    declare readonly hostAddress: string | null;
    /** Its task counts and durations (vpe_executor/metrics.py), for Prometheus. */
    declare readonly scrapeJobs: ScrapeJob[];

    constructor(name: string, args: ExecutorArgs, opts?: pulumi.ComponentResourceOptions) {
        super("vpe:platform:Executor", name, {}, opts);
        this.containerName = `${args.namePrefix}-executor`;
        const conda = usesConda(path.join(projectRoot, "docker", "executor", "envs"));
        const image = localImage(
            `${args.namePrefix}-executor-image`,
            {
                namePrefix: args.namePrefix,
                service: "executor",
                args: executorBuildArgs(conda),
            },
            { parent: this },
        );
        const port = platform.ports.executorGrpc;
        const warehouseUrl: SecretFile = { name: "warehouse-url", value: args.warehouseUrl };
        serviceContainer(
            {
                name: this.containerName,
                image: image.repoDigest,
                network: args.network,
                alias: platform.aliases.executor,
                user: userSpec(platform.users.executor),
                envs: [
                    fileVariable(platform.env.warehouseUrl, warehouseUrl),
                    `${platform.env.executorMaxConcurrent}=${args.config.maxConcurrentTasks}`,
                    `${platform.env.weatherBaseUrl}=${args.weather.baseUrl}`,
                    `${platform.env.weatherRequestsPerMinute}=${args.weather.requestsPerMinute}`,
                ],
                uploads: [...secretUploads([warehouseUrl]), ...tlsUploads(args.tls.caCert, args.tls.identity)],
                volumes: [
                    { volumeName: args.bufferVolume, containerPath: platform.paths.buffer },
                    { volumeName: args.logVolume, containerPath: platform.paths.logs },
                    { volumeName: args.data.volumeName, containerPath: platform.paths.data, readOnly: true },
                ],
                ports:
                    args.config.hostPort === undefined
                        ? undefined
                        : [publish(args.bindAddress, port, args.config.hostPort)],
                memoryMb: args.config.memoryMb,
                healthcheck: {
                    test: ["CMD", `${platform.paths.envs}/server/bin/python`, "-m", "vpe_executor.health"],
                    // A Python gRPC client: 0.1 s of CPU per probe.
                    intervalSeconds: 3,
                    retries: 10,
                    startPeriodSeconds: 20,
                },
                // In-flight tasks get this long to finish after SIGTERM.
                stopTimeoutSeconds: 60,
            },
            { parent: this, dependsOn: [args.data.synced] },
        );
        this.address = `${platform.aliases.executor}:${port}`;
        this.hostAddress =
            args.config.hostPort === undefined ? null : `${args.bindAddress}:${args.config.hostPort}`;
        this.scrapeJobs = [
            { job: "executor", targets: [`${platform.aliases.executor}:${platform.ports.executorMetrics}`], metricsPath: "/metrics" },
        ];
        this.registerOutputs({ address: this.address });
    }
}

