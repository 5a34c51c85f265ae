// Each long-running service is described once, as a workload, and the stack chooses how it runs:
// as a container on one Docker engine, or as a service on a Docker Swarm. Components describe;
// the runtime decides where. A workload with copies (Spark workers) is one description of a copy,
// given the copy's hostname: one engine runs `<name>-<n>` containers, a swarm one service whose
// tasks fill in their slot number from a template.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { type Healthcheck, defaultWaitSeconds, probeTimings, serviceContainer } from "./containers";
import { swarmDuration } from "./durations";

export interface Workload {
    /** Container or service name; also the Pulumi resource name. */
    name: string;
    image: pulumi.Input<string>;
    /** The stack network as the runtime names it (components/network `attachTo`). */
    network: pulumi.Input<string>;
    /** Stable DNS name on the stack network; also the container's hostname. */
    alias: string;
    healthcheck: Healthcheck;
    /** Arguments to the image's entrypoint (a container's command, a service's args). */
    command?: pulumi.Input<string>[];
    envs?: pulumi.Input<pulumi.Input<string>[]>;
    user?: string;
    volumes?: pulumi.Input<docker.types.input.ContainerVolume>[];
    ports?: docker.types.input.ContainerPort[];
    labels?: docker.types.input.ContainerLabel[];
    /**
     * Files written before the container starts: credentials (lib/secretFiles) and TLS material.
     * Plain entries (their content may be an output): a swarm names a secret after each file.
     */
    uploads?: docker.types.input.ContainerUpload[];
    /** Supplementary groups of the container's user. */
    groupAdds?: string[];
    memoryMb?: number;
    /** Seconds `pulumi up` waits for the workload to be healthy. */
    waitTimeoutSeconds?: number;
    /** Seconds Docker waits after SIGTERM before SIGKILL. */
    stopTimeoutSeconds?: number;
    /**
     * A node label (`vpe.postgres`) that pins a stateful workload to the nodes labelled
     * `<label>=true`, where its volume lives; on one engine there is nowhere else to run.
     */
    pinnedTo?: string;
}

/** What one copy of a replicated workload is told about itself. */
export interface Copy {
    /** Its own hostname: `<alias>-<n>`, n counting from 1. */
    hostname: string;
}

export interface ReplicatedWorkload {
    /** Base name: copies are `<name>-<n>` on one engine; the swarm service is `<name>`. */
    name: string;
    /** Base alias: each copy's hostname is `<alias>-<n>`; on a swarm `<alias>` names them all. */
    alias: string;
    count: number;
    describe(copy: Copy): Omit<Workload, "name" | "alias">;
}

export interface Runtime {
    readonly kind: "engine" | "swarm";
    /** Where images go so that every node can pull them; none on one engine. */
    readonly registry?: string;
    /** The stack network's driver and options, and whether workloads name it by its ID (else its name). */
    readonly network: { driver: string; attachable?: boolean; options?: Record<string, string>; byId?: boolean };
    run(workload: Workload, opts: pulumi.CustomResourceOptions): pulumi.CustomResource;
    /** The containers or the service, each with the name `status` and the exporter know it by. */
    runReplicated(workload: ReplicatedWorkload, opts: pulumi.CustomResourceOptions): Deployed[];
}

export interface Deployed {
    name: string;
    resource: pulumi.CustomResource;
}

/** One engine: each workload a container, each copy a container of its own. */
export const engineRuntime: Runtime = {
    kind: "engine",
    network: { driver: "bridge" },
    run: (workload, opts) => serviceContainer(workload, opts),
    runReplicated: (workload, opts) =>
        Array.from({ length: workload.count }, (_, i) => {
            const [name, alias] = [`${workload.name}-${i + 1}`, `${workload.alias}-${i + 1}`];
            return { name, resource: serviceContainer({ ...workload.describe({ hostname: alias }), name, alias }, opts) };
        }),
};

export interface SwarmOptions {
    /** The swarm manager's engine, which creates and updates the services. */
    provider: docker.Provider;
    /** A registry every node pulls from, as host:port. */
    registry: string;
    /** Tasks of one service at most on one node (Spark and Celery workers spread out). */
    maxPerNode: number;
    /** Whether the overlay network encrypts traffic between nodes (IPsec; needs the kernel's ESP). */
    encrypted: boolean;
}

/** Seconds a task has to stop after SIGTERM unless its workload says otherwise (Docker's default). */
const swarmStopSeconds = 10;

/** The swarm's template for a task's slot number (1..replicas). */
export const taskSlot = "{{.Task.Slot}}";

function envMap(envs: string[] | undefined): Record<string, string> {
    const map: Record<string, string> = {};
    for (const entry of envs ?? []) {
        const at = entry.indexOf("=");
        map[at < 0 ? entry : entry.slice(0, at)] = at < 0 ? "" : entry.slice(at + 1);
    }
    return map;
}

/**
 * The service spec of a workload. Published ports bind every interface of the node that runs the
 * task (a swarm cannot bind one address), so only ports configured for 0.0.0.0 are published;
 * others are left out with a warning. Endpoints resolve by DNS round robin: the swarm's virtual
 * IPs need IPVS, which not every kernel has.
 */
export function serviceArgs(
    workload: Workload,
    replicas: number,
    hostname: string,
    swarm: Omit<SwarmOptions, "provider">,
    files: docker.types.input.ServiceTaskSpecContainerSpecSecret[] = [],
): docker.ServiceArgs {
    const order = workload.pinnedTo === undefined ? "start-first" : "stop-first";
    const published = (workload.ports ?? []).filter((p) => p.ip === "0.0.0.0");
    for (const p of (workload.ports ?? []).filter((q) => q.ip !== "0.0.0.0")) {
        pulumi.log.warn(`${workload.name}: port ${p.external} is not published: on a swarm it would bind every interface of the node, and vpe:bindAddress is ${p.ip}`);
    }
    return {
        name: workload.name,
        taskSpec: {
            containerSpec: {
                image: workload.image,
                hostname,
                args: workload.command,
                env: pulumi.output(workload.envs ?? []).apply((envs) => envMap(envs)),
                user: workload.user,
                groups: workload.groupAdds,
                labels: workload.labels,
                secrets: files,
                mounts: (workload.volumes ?? []).map((v) =>
                    pulumi.output(v).apply((volume) => ({ type: "volume", source: volume.volumeName, target: volume.containerPath!, readOnly: volume.readOnly })),
                ),
                healthcheck: probeTimings(workload.healthcheck, swarmDuration),
                // Set, so that delete waits for the task's container (the provider waits only then).
                stopGracePeriod: swarmDuration(workload.stopTimeoutSeconds ?? swarmStopSeconds),
            },
            // By ID: the provider reads networks back as IDs, and a name would replace the service on every up.
            networksAdvanceds: [{ id: workload.network, aliases: [workload.alias] }],
            placement: {
                maxReplicas: swarm.maxPerNode,
                ...(workload.pinnedTo === undefined ? {} : { constraints: [`node.labels.${workload.pinnedTo}==true`] }),
            },
            resources: workload.memoryMb === undefined ? undefined : { limits: { memoryBytes: workload.memoryMb * 1024 * 1024 } },
            // All four fields: the engine stores the ones left out as zero, which the next diff would show.
            restartPolicy: { condition: "any", delay: swarmDuration(5), maxAttempts: 0, window: swarmDuration(0) },
        },
        mode: { replicated: { replicas } },
        endpointSpec: {
            mode: "dnsrr",
            ports: published.map((p) => ({ targetPort: p.internal, publishedPort: p.external, publishMode: "host", protocol: p.protocol ?? "tcp" })),
        },
        // The new task starts, and must be healthy, before the old one stops, unless the workload
        // is pinned: two tasks must not share its data, and at most maxPerNode fit on its node.
        // A failed update is rolled back.
        updateConfig: { order, parallelism: 1, failureAction: "rollback", monitor: swarmDuration(10), delay: swarmDuration(0), maxFailureRatio: "0.0" },
        rollbackConfig: { order, parallelism: 1, failureAction: "pause", monitor: swarmDuration(5), delay: swarmDuration(0), maxFailureRatio: "0.0" },
        convergeConfig: { delay: swarmDuration(2), timeout: swarmDuration(workload.waitTimeoutSeconds ?? defaultWaitSeconds) },
    };
}

/** Swarm secret names are at most 64 characters; the provider's auto-name adds 8. */
const secretNameBudget = 64 - 8;

/** The Pulumi name of the secret delivering `file` to `workload`: the workload and the file's base name. */
export function secretResourceName(workload: string, file: string): string {
    const base = file.slice(file.lastIndexOf("/") + 1).replace(/[^A-Za-z0-9_.-]/g, "-");
    return `${workload}-${base}`.slice(0, secretNameBudget).replace(/[-_.]+$/, "");
}

/** The secret's data, as the provider takes it (standard base64), secret in the state. */
function secretData(upload: docker.types.input.ContainerUpload, workload: string): pulumi.Output<string> {
    if (upload.contentBase64 !== undefined) return pulumi.secret(pulumi.output(upload.contentBase64).apply((c) => c ?? ""));
    if (upload.content === undefined) {
        throw new pulumi.RunError(`${workload}: file ${String(upload.file)}: a swarm service takes files by content or contentBase64, not source`);
    }
    return pulumi.secret(pulumi.output(upload.content).apply((c) => Buffer.from(c ?? "", "utf8").toString("base64")));
}

/**
 * Each file as a swarm secret (encrypted in the managers' store, mounted on a tmpfs), owned by
 * root:root with the upload's mode, as an upload is. The secrets are auto-named: a content change
 * replaces a secret, and only an auto-named one is created before the old is deleted (the
 * provider deletes an explicitly named one first, which the engine refuses while the service
 * uses it). The service moves to the new secret in between.
 */
export function swarmSecrets(
    workload: Workload,
    opts: pulumi.CustomResourceOptions,
): docker.types.input.ServiceTaskSpecContainerSpecSecret[] {
    const names = new Set<string>();
    return (workload.uploads ?? []).map((upload) => {
        if (typeof upload.file !== "string") throw new pulumi.RunError(`${workload.name}: a file's path must be known when the program runs`);
        const name = secretResourceName(workload.name, upload.file);
        if (names.has(name)) throw new pulumi.RunError(`${workload.name}: two files are delivered as the secret ${name}; give them distinct names`);
        names.add(name);
        const secret = new docker.Secret(name, { data: secretData(upload, workload.name) }, opts);
        const mode = typeof upload.permissions === "string" ? parseInt(upload.permissions, 8) : 0o444;
        return { secretId: secret.id, secretName: secret.name, fileName: upload.file, fileUid: "0", fileGid: "0", fileMode: mode };
    });
}

/** A swarm: each workload one service, its copies the service's replicas. */
export function swarmRuntime(options: SwarmOptions): Runtime {
    const service = (workload: Workload, replicas: number, hostname: string, opts: pulumi.CustomResourceOptions) => {
        const onManager = { ...opts, provider: options.provider };
        return new docker.Service(workload.name, serviceArgs(workload, replicas, hostname, options, swarmSecrets(workload, onManager)), onManager);
    };
    return {
        kind: "swarm",
        registry: options.registry,
        // Options only when encrypting: an empty map is left to the engine rather than stored as set.
        network: { driver: "overlay", attachable: true, byId: true, ...(options.encrypted ? { options: { encrypted: "true" } } : {}) },
        run: (workload, opts) => service(workload, 1, workload.alias, opts),
        runReplicated: (workload, opts) => {
            if (workload.count === 0) return [];
            const hostname = `${workload.alias}-${taskSlot}`;
            const described = { ...workload.describe({ hostname }), name: workload.name, alias: workload.alias };
            return [{ name: workload.name, resource: service(described, workload.count, hostname, opts) }];
        },
    };
}
