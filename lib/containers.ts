// Container policies shared by every component, so each service gets the same lifecycle.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { engineSupportsStartInterval } from "./dockerEngine";
import { goDuration } from "./durations";
import type { Workload } from "./workload";

export interface Healthcheck {
    /** Docker healthcheck test, starting with CMD or CMD-SHELL. */
    test: string[];
    intervalSeconds?: number;
    timeoutSeconds?: number;
    retries?: number;
    startPeriodSeconds?: number;
}

/**
 * Probe timing. `pulumi up` waits for each service to be healthy before starting what depends on
 * it, and an engine without a start interval (before Docker 25) first probes `interval` after the
 * start, so the interval bounds how soon a started service counts as up: probes are kept cheap
 * (no interpreter-heavy CLI) and frequent. Retries allow 30 s of failures before "unhealthy".
 */
export const probeDefaults = { intervalSeconds: 2, timeoutSeconds: 5, retries: 15, startPeriodSeconds: 10 };

/** Seconds between probes during the start period where the engine supports it (Docker 25+). */
export const startIntervalSeconds = 1;

/** The healthcheck as the provider takes it, with the start interval only where the engine has one. */
export function healthcheckSpec(h: Healthcheck, startInterval: boolean): docker.types.input.ContainerHealthcheck {
    return { ...probeTimings(h, goDuration), ...(startInterval ? { startInterval: goDuration(startIntervalSeconds) } : {}) };
}

/** The probe with its defaults, each duration written by `format` (as its provider stores it). */
export function probeTimings(h: Healthcheck, format: (seconds: number) => string) {
    return {
        tests: h.test,
        interval: format(h.intervalSeconds ?? probeDefaults.intervalSeconds),
        timeout: format(h.timeoutSeconds ?? probeDefaults.timeoutSeconds),
        retries: h.retries ?? probeDefaults.retries,
        startPeriod: format(h.startPeriodSeconds ?? probeDefaults.startPeriodSeconds),
    };
}

/** Seconds `pulumi up` waits for a workload to be healthy unless it says otherwise. */
export const defaultWaitSeconds = 180;

/**
 * A long-running service: healthchecked, restarted unless stopped by hand, on the stack network,
 * created only once healthy. Named containers must go before their replacement is created
 * (the name is unique on the engine), and healthcheck edits are not applied in place by the
 * provider (kreuzwerker #988), so a healthcheck change replaces the container.
 */
export function serviceContainer(
    args: Workload,
    opts: pulumi.CustomResourceOptions,
): docker.Container {
    return new docker.Container(
        args.name,
        {
            name: args.name,
            image: args.image,
            hostname: args.alias,
            command: args.command,
            envs: args.envs,
            user: args.user,
            volumes: args.volumes,
            ports: args.ports,
            labels: args.labels,
            uploads: args.uploads,
            groupAdds: args.groupAdds,
            memory: args.memoryMb,
            // No swap beyond the limit. Left unset, the engine records twice the memory as the
            // swap limit, the provider stores that, and every later `up` shows a change.
            memorySwap: args.memoryMb,
            networksAdvanced: [{ name: args.network, aliases: [args.alias] }],
            healthcheck: pulumi.output(engineSupportsStartInterval()).apply((ok) => healthcheckSpec(args.healthcheck, ok)),
            restart: "unless-stopped",
            wait: true,
            waitTimeout: args.waitTimeoutSeconds ?? defaultWaitSeconds,
            stopTimeout: args.stopTimeoutSeconds,
        },
        { ...opts, deleteBeforeReplace: true, replaceOnChanges: ["healthcheck"] },
    );
}

export interface OneShotContainerArgs {
    name: string;
    image: pulumi.Input<string>;
    command: pulumi.Input<string>[];
    network?: pulumi.Input<string>;
    envs?: pulumi.Input<pulumi.Input<string>[]>;
    user?: string;
    volumes?: pulumi.Input<docker.types.input.ContainerVolume>[];
    uploads?: pulumi.Input<docker.types.input.ContainerUpload>[];
}

export interface OneShotContainer {
    container: docker.Container;
    /**
     * Resolves to the container id once the command exited 0; fails the update otherwise.
     * Dependents consume it, because `attach` alone ignores the exit code.
     */
    succeeded: pulumi.Output<string>;
}

/** A command that runs to completion during `pulumi up`, and must succeed. */
export function oneShotContainer(
    args: OneShotContainerArgs,
    opts: pulumi.CustomResourceOptions,
): OneShotContainer {
    const container = new docker.Container(
        args.name,
        {
            name: args.name,
            image: args.image,
            command: args.command,
            envs: args.envs,
            user: args.user,
            volumes: args.volumes,
            uploads: args.uploads,
            networksAdvanced: args.network ? [{ name: args.network }] : undefined,
            attach: true,
            logs: true,
            restart: "no",
            mustRun: false,
        },
        { ...opts, deleteBeforeReplace: true },
    );
    const succeeded = pulumi
        .all([container.id, container.exitCode, container.containerLogs])
        .apply(([id, exitCode, logs]) => requireSuccess(args.name, id, exitCode, logs));
    return { container, succeeded };
}

/**
 * Throws, naming the container and quoting its last output, unless it exited 0 (a RunError:
 * the CLI prints the message once, without a stack trace).
 */
export function requireSuccess(
    name: string,
    id: string,
    exitCode: number | undefined,
    logs: string | undefined,
): string {
    if (exitCode !== 0) {
        const tail = (logs ?? "").trim().split("\n").slice(-20).join("\n");
        throw new pulumi.RunError(`${name} exited with code ${exitCode}; last output:\n${tail}`);
    }
    return id;
}

/** A port published on the configured host address (127.0.0.1 unless configured otherwise). */
export function publish(bindAddress: string, internal: number, external: number): docker.types.input.ContainerPort {
    return { internal, external, ip: bindAddress, protocol: "tcp" };
}
