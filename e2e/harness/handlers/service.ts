// docker Service (the Terraform docker provider v4.5.0's docker_service, which @pulumi/docker 5.2
// wraps) on a swarm manager's engine. Create and update send the whole ServiceSpec, then, with a
// convergeConfig, wait until every replica runs (the swarm reports a task with a healthcheck as
// running only once healthy) and an update has completed. A service that never converges on create
// is removed and the error names only its ID (the provider loses the tasks' errors, upstream #624).
// The read stores the spec as the engine returns it (durations without trailing zero units,
// networks as IDs), and the next diff compares the program's inputs against that, blocks the
// program leaves unset being the provider's to fill (Optional+Computed).
import type { DockerApi } from "../dockerApi";
import { DockerApiError } from "../dockerApi";
import { getPath, type Props } from "../wire";
import { formatGoDuration, parseGoDuration } from "./container";
import { dockerFor, labelMap } from "./dockerObjects";
import type { Handler, HandlerContext } from "./types";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Labels = { label: string; value: string }[] | undefined;

interface Mount {
    type: string;
    source?: string;
    target: string;
    readOnly?: boolean;
}

interface SecretRef {
    secretId: string;
    secretName?: string;
    fileName: string;
    fileUid: string;
    fileGid: string;
    fileMode: number;
}

interface EngineSpec {
    Name: string;
    Labels?: Record<string, string>;
    TaskTemplate: {
        ContainerSpec: {
            Image: string;
            Hostname?: string;
            Args?: string[];
            Command?: string[];
            Env?: string[];
            User?: string;
            Groups?: string[];
            Labels?: Record<string, string>;
            Mounts?: { Type: string; Source?: string; Target: string; ReadOnly?: boolean }[];
            Secrets?: { SecretID: string; SecretName?: string; File: { Name: string; UID: string; GID: string; Mode: number } }[];
            Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number };
            StopGracePeriod?: number;
        };
        Networks?: { Target: string; Aliases?: string[] }[];
        Placement?: { Constraints?: string[]; MaxReplicas?: number };
        Resources?: { Limits?: { MemoryBytes?: number } };
        RestartPolicy?: { Condition?: string; Delay?: number; MaxAttempts?: number; Window?: number };
        ForceUpdate?: number;
    };
    Mode: { Replicated?: { Replicas?: number } };
    UpdateConfig?: UpdateConfigSpec;
    RollbackConfig?: UpdateConfigSpec;
    EndpointSpec?: { Mode?: string; Ports?: { Protocol?: string; TargetPort: number; PublishedPort?: number; PublishMode?: string }[] };
}

interface UpdateConfigSpec {
    Parallelism?: number;
    Delay?: number;
    FailureAction?: string;
    Monitor?: number;
    MaxFailureRatio?: number;
    Order?: string;
}

interface ServiceInspect {
    ID: string;
    Version: { Index: number };
    Spec: EngineSpec;
    Endpoint?: { Spec?: { Mode?: string } };
    UpdateStatus?: { State?: string; Message?: string };
}

interface Task {
    ID: string;
    Slot?: number;
    NodeID?: string;
    DesiredState: string;
    Status: { State: string; Err?: string; Message?: string; Timestamp?: string; ContainerStatus?: { ContainerID?: string } };
}

const ns = (value: unknown, field: string) => (typeof value === "string" ? parseGoDuration(value, field) : undefined);
/** A duration as the provider's read writes it: Go's form without trailing zero units ("1m", not "1m0s"). */
export function shortDuration(ns: number): string {
    return formatGoDuration(ns).replace(/m0s$/, "m").replace(/h0m$/, "h");
}
const shortOrUndefined = (value: number | undefined) => (value === undefined ? undefined : shortDuration(value));

function updateSpec(config: Props | undefined, field: string): UpdateConfigSpec | undefined {
    if (config === undefined) return undefined;
    return {
        Parallelism: config.parallelism as number | undefined,
        Delay: ns(config.delay, `${field}.delay`),
        FailureAction: config.failureAction as string | undefined,
        Monitor: ns(config.monitor, `${field}.monitor`),
        MaxFailureRatio: config.maxFailureRatio === undefined ? undefined : Number(config.maxFailureRatio),
        Order: config.order as string | undefined,
    };
}

/** The ServiceSpec the provider sends for these inputs. */
function serviceSpec(inputs: Props): EngineSpec {
    const task = inputs.taskSpec as Props;
    const container = task.containerSpec as Props;
    const health = container.healthcheck as Props | undefined;
    const restart = task.restartPolicy as Props | undefined;
    const endpoint = inputs.endpointSpec as Props | undefined;
    const env = (container.env ?? {}) as Record<string, string>;
    return {
        Name: inputs.name as string,
        Labels: labelMap(inputs.labels as Labels),
        TaskTemplate: {
            ContainerSpec: {
                Image: container.image as string,
                Hostname: container.hostname as string | undefined,
                Args: container.args as string[] | undefined,
                Command: container.commands as string[] | undefined,
                Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
                User: container.user as string | undefined,
                Groups: container.groups as string[] | undefined,
                Labels: labelMap(container.labels as Labels),
                Mounts: ((container.mounts ?? []) as Mount[]).map((m) => ({ Type: m.type, Source: m.source, Target: m.target, ReadOnly: m.readOnly === true })),
                Secrets: ((container.secrets ?? []) as SecretRef[]).map((r) => ({
                    SecretID: r.secretId,
                    SecretName: r.secretName === "" ? undefined : r.secretName,
                    File: { Name: r.fileName, UID: r.fileUid, GID: r.fileGid, Mode: r.fileMode },
                })),
                Healthcheck:
                    health === undefined
                        ? undefined
                        : {
                              Test: health.tests as string[] | undefined,
                              Interval: ns(health.interval, "healthcheck.interval"),
                              Timeout: ns(health.timeout, "healthcheck.timeout"),
                              StartPeriod: ns(health.startPeriod, "healthcheck.startPeriod"),
                              Retries: health.retries as number | undefined,
                          },
                StopGracePeriod: ns(container.stopGracePeriod, "stopGracePeriod"),
            },
            Networks: ((task.networksAdvanceds ?? []) as { id?: string; name?: string; aliases?: string[] }[]).map((n) => ({ Target: (n.id ?? n.name)!, Aliases: n.aliases })),
            Placement: task.placement === undefined ? undefined : { Constraints: (task.placement as Props).constraints as string[] | undefined, MaxReplicas: (task.placement as Props).maxReplicas as number | undefined },
            Resources: task.resources === undefined ? undefined : { Limits: { MemoryBytes: ((task.resources as Props).limits as Props | undefined)?.memoryBytes as number | undefined } },
            RestartPolicy:
                restart === undefined
                    ? undefined
                    : {
                          Condition: restart.condition as string | undefined,
                          Delay: ns(restart.delay, "restartPolicy.delay"),
                          MaxAttempts: restart.maxAttempts as number | undefined,
                          Window: ns(restart.window, "restartPolicy.window"),
                      },
            ForceUpdate: task.forceUpdate as number | undefined,
        },
        Mode: { Replicated: { Replicas: (((inputs.mode as Props | undefined)?.replicated as Props | undefined)?.replicas as number | undefined) ?? 1 } },
        UpdateConfig: updateSpec(inputs.updateConfig as Props | undefined, "updateConfig"),
        RollbackConfig: updateSpec(inputs.rollbackConfig as Props | undefined, "rollbackConfig"),
        EndpointSpec:
            endpoint === undefined
                ? undefined
                : {
                      Mode: endpoint.mode as string | undefined,
                      Ports: ((endpoint.ports ?? []) as Props[]).map((p) => ({
                          Protocol: (p.protocol as string | undefined) ?? "tcp",
                          TargetPort: p.targetPort as number,
                          PublishedPort: p.publishedPort as number | undefined,
                          PublishMode: (p.publishMode as string | undefined) ?? "ingress",
                      })),
                  },
    };
}

function readUpdateConfig(c: UpdateConfigSpec | undefined): Props | undefined {
    if (c === undefined) return undefined;
    return {
        parallelism: c.Parallelism ?? 0,
        delay: shortDuration(c.Delay ?? 0),
        failureAction: c.FailureAction,
        monitor: shortDuration(c.Monitor ?? 0),
        maxFailureRatio: (c.MaxFailureRatio ?? 0).toFixed(1),
        order: c.Order,
    };
}

/** The inputs as the provider's read stores them from the engine's spec. */
function readService(spec: EngineSpec, inputs: Props): Props {
    const c = spec.TaskTemplate.ContainerSpec;
    const t = spec.TaskTemplate;
    const labels = (map: Record<string, string> | undefined) => Object.entries(map ?? {}).map(([label, value]) => ({ label, value }));
    const stored: Props = {
        name: spec.Name,
        taskSpec: {
            containerSpec: {
                image: c.Image,
                hostname: c.Hostname,
                args: c.Args,
                commands: c.Command,
                env: Object.fromEntries((c.Env ?? []).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)])),
                user: c.User,
                groups: c.Groups,
                labels: labels(c.Labels),
                mounts: (c.Mounts ?? []).map((m) => ({ type: m.Type, source: m.Source, target: m.Target, readOnly: m.ReadOnly === true })),
                secrets: (c.Secrets ?? []).map((r) => ({ secretId: r.SecretID, secretName: r.SecretName, fileName: r.File.Name, fileUid: r.File.UID, fileGid: r.File.GID, fileMode: r.File.Mode })),
                healthcheck:
                    c.Healthcheck === undefined
                        ? undefined
                        : {
                              tests: c.Healthcheck.Test,
                              interval: shortDuration(c.Healthcheck.Interval ?? 0),
                              timeout: shortDuration(c.Healthcheck.Timeout ?? 0),
                              startPeriod: shortDuration(c.Healthcheck.StartPeriod ?? 0),
                              retries: c.Healthcheck.Retries ?? 0,
                          },
                stopGracePeriod: shortOrUndefined(c.StopGracePeriod),
            },
            // As the engine stores them: by ID (a network given by name reads back as its ID).
            networksAdvanceds: (t.Networks ?? []).map((n) => ({ id: n.Target, aliases: n.Aliases })),
            placement: t.Placement === undefined ? undefined : { constraints: t.Placement.Constraints, maxReplicas: t.Placement.MaxReplicas },
            resources: t.Resources?.Limits === undefined ? undefined : { limits: { memoryBytes: t.Resources.Limits.MemoryBytes } },
            restartPolicy:
                t.RestartPolicy === undefined
                    ? undefined
                    : {
                          condition: t.RestartPolicy.Condition,
                          delay: shortOrUndefined(t.RestartPolicy.Delay),
                          maxAttempts: t.RestartPolicy.MaxAttempts,
                          window: shortOrUndefined(t.RestartPolicy.Window),
                      },
            forceUpdate: t.ForceUpdate ?? 0,
        },
        labels: labels(spec.Labels),
        mode: { replicated: { replicas: spec.Mode.Replicated?.Replicas ?? 1 } },
        updateConfig: readUpdateConfig(spec.UpdateConfig),
        rollbackConfig: readUpdateConfig(spec.RollbackConfig),
        endpointSpec:
            spec.EndpointSpec === undefined
                ? undefined
                : {
                      mode: spec.EndpointSpec.Mode,
                      ports: (spec.EndpointSpec.Ports ?? []).map((p) => ({ protocol: p.Protocol, targetPort: p.TargetPort, publishedPort: p.PublishedPort, publishMode: p.PublishMode })),
                  },
        convergeConfig: inputs.convergeConfig,
    };
    return pruneUndefined(stored) as Props;
}

function pruneUndefined(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(pruneUndefined);
    if (value !== null && typeof value === "object") {
        return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, pruneUndefined(v)]));
    }
    return value;
}

async function tasksOf(docker: DockerApi, filters: Record<string, string[]>): Promise<Task[]> {
    return docker.call<Task[]>("/tasks", { query: { filters: JSON.stringify(filters) } });
}

/** Each task's last error, newest first (for the harness's log: the provider reports none). */
function taskErrors(tasks: Task[]): string[] {
    return tasks
        .filter((t) => t.Status.Err !== undefined && t.Status.Err !== "")
        .sort((a, b) => (b.Status.Timestamp ?? "").localeCompare(a.Status.Timestamp ?? ""))
        .map((t) => `task ${t.ID.slice(0, 12)} (slot ${t.Slot ?? "?"}): ${t.Status.State}: ${t.Status.Err}`);
}

/**
 * The provider's converge wait: a first check after `firstDelayMs`, then polls from 5 s backing
 * off to 10 s, until the service runs its replicas (tasks running on nodes that are not down) and
 * any update has completed; an update that paused or rolled back fails with the provider's words.
 */
async function converge(ctx: HandlerContext, docker: DockerApi, id: string, config: Props, firstDelayMs: number): Promise<void> {
    const timeout = (config.timeout as string | undefined) ?? "3m";
    const deadline = Date.now() + parseGoDuration(timeout, "convergeConfig.timeout") / 1e6;
    let waitMs = firstDelayMs;
    let rollback = false;
    for (;;) {
        await sleep(Math.min(waitMs, Math.max(0, deadline - Date.now())));
        const service = await docker.call<ServiceInspect>(`/services/${id}`);
        const update = service.UpdateStatus;
        const message = update?.Message ?? "";
        if (update?.State === "rollback_completed") throw new Error(`service rollback completed: ${message}`);
        if (update?.State === "paused") throw new Error(`service update paused: ${message}`);
        if (update?.State === "rollback_paused") throw new Error(`service rollback paused: ${message}`);
        rollback ||= update?.State === "rollback_started";
        const wanted = service.Spec.Mode.Replicated?.Replicas;
        if (wanted === undefined) throw new Error("no replica count");
        const tasks = await tasksOf(docker, { service: [id], "desired-state": ["running"] });
        const down = new Set((await docker.call<{ ID: string; Status: { State: string } }[]>("/nodes")).filter((n) => n.Status.State === "down").map((n) => n.ID));
        const running = tasks.filter((t) => t.Status.State === "running" && !down.has(t.NodeID ?? "")).length;
        const updating = update?.State === "updating" || update?.State === "rollback_started";
        if (running === wanted && !updating) {
            if (rollback) throw new Error(`service rollback completed: ${message}`);
            return;
        }
        if (Date.now() >= deadline) {
            const errors = taskErrors(await tasksOf(docker, { service: [id] }));
            if (errors.length > 0) ctx.log(`service ${service.Spec.Name}: ${errors.slice(0, 3).join("; ")}`);
            throw new Error(`Service with ID (${id}) did not converge after ${formatGoDuration(parseGoDuration(timeout, "convergeConfig.timeout"))}`);
        }
        ctx.log(`service ${service.Spec.Name}: ${running}/${wanted} tasks running`);
        waitMs = waitMs < 5000 ? 5000 : Math.min(waitMs * 2, 10_000);
    }
}

async function inspect(docker: DockerApi, id: string): Promise<ServiceInspect> {
    return docker.call<ServiceInspect>(`/services/${id}`);
}

/** The provider's read: it retries until the engine reports the service's endpoint mode. */
async function read(docker: DockerApi, id: string, inputs: Props): Promise<Props> {
    await sleep(2000);
    for (let tries = 0; ; tries++) {
        const service = await inspect(docker, id);
        if (service.Spec.EndpointSpec?.Mode || service.Endpoint?.Spec?.Mode || tries >= 6) return readService(service.Spec, inputs);
        await sleep(5000);
    }
}

const defaultsOfUpdateConfig = { parallelism: 1, delay: "0s", failureAction: "pause", monitor: "5s", maxFailureRatio: "0.0", order: "stop-first" };

/** The schema defaults the provider fills into the inputs the program set. */
function withDefaults(inputs: Props): Props {
    const out = structuredClone(inputs);
    const task = out.taskSpec as Props;
    const container = task.containerSpec as Props;
    if (container.secrets !== undefined) {
        container.secrets = (container.secrets as Props[]).map((r) => ({ fileUid: "0", fileGid: "0", fileMode: 0o444, ...r }));
    }
    if (container.healthcheck !== undefined) {
        container.healthcheck = { interval: "0s", timeout: "0s", startPeriod: "0s", retries: 0, ...(container.healthcheck as Props) };
    }
    if (out.mode !== undefined && (out.mode as Props).replicated !== undefined) {
        out.mode = { replicated: { replicas: 1, ...((out.mode as Props).replicated as Props) } };
    }
    for (const key of ["updateConfig", "rollbackConfig"]) {
        if (out[key] !== undefined) out[key] = { ...defaultsOfUpdateConfig, ...(out[key] as Props) };
    }
    const endpoint = out.endpointSpec as Props | undefined;
    if (endpoint?.ports !== undefined) {
        endpoint.ports = (endpoint.ports as Props[]).map((p) => ({ protocol: "tcp", publishMode: "ingress", ...p }));
    }
    return out;
}

/** restartPolicy's fields are not Computed: one the program leaves out still diffs against the read. */
const restartFields = ["condition", "delay", "maxAttempts", "window"];

/**
 * Whether the provider's diff sees `wanted` (what the program set, defaults filled) differ from
 * `stored` (its read). What the program leaves unset is Computed: the read stands. Lists of blocks
 * are sets; env is a map compared whole.
 */
export function differs(stored: unknown, wanted: unknown, path: string): boolean {
    if (wanted === undefined) return false;
    if (path === "taskSpec.containerSpec.env") return JSON.stringify(Object.entries((stored ?? {}) as Props).sort()) !== JSON.stringify(Object.entries(wanted as Props).sort());
    if (Array.isArray(wanted)) {
        const items = Array.isArray(stored) ? [...(stored as unknown[])] : [];
        if (items.length !== wanted.length) return true;
        if (!wanted.some((w) => w !== null && typeof w === "object")) return JSON.stringify(items) !== JSON.stringify(wanted);
        return !wanted.every((w) => {
            const match = items.findIndex((item) => !differs(item, w, `${path}[]`));
            return match >= 0 && items.splice(match, 1).length === 1;
        });
    }
    if (wanted !== null && typeof wanted === "object") {
        const from = (stored ?? {}) as Props;
        const set = wanted as Props;
        if (path === "taskSpec.restartPolicy") {
            return restartFields.some((k) => (set[k] === undefined ? from[k] !== undefined : differs(from[k], set[k], `${path}.${k}`)));
        }
        return Object.keys(set).some((k) => differs(from[k], set[k], `${path}.${k}`));
    }
    return stored !== wanted;
}

/** For an update the provider sends the program's inputs over its read: Computed values it left unset stay. */
function mergeOver(stored: unknown, wanted: unknown): unknown {
    if (wanted === undefined) return stored;
    const isBlock = (v: unknown) => v !== null && typeof v === "object" && !Array.isArray(v);
    if (!isBlock(wanted) || !isBlock(stored)) return wanted;
    const [from, set] = [stored as Props, wanted as Props];
    const keys = [...new Set([...Object.keys(from), ...Object.keys(set)])];
    return Object.fromEntries(keys.map((k) => [k, mergeOver(from[k], set[k])]));
}

export const serviceHandler: Handler = {
    type: "docker:index/service:Service",
    inputs: [
        "name",
        "labels[].label",
        "labels[].value",
        "taskSpec.containerSpec.image",
        "taskSpec.containerSpec.hostname",
        "taskSpec.containerSpec.args[]",
        "taskSpec.containerSpec.commands[]",
        "taskSpec.containerSpec.env{}",
        "taskSpec.containerSpec.user",
        "taskSpec.containerSpec.groups[]",
        "taskSpec.containerSpec.labels[].label",
        "taskSpec.containerSpec.labels[].value",
        "taskSpec.containerSpec.mounts[].type",
        "taskSpec.containerSpec.mounts[].source",
        "taskSpec.containerSpec.mounts[].target",
        "taskSpec.containerSpec.mounts[].readOnly",
        ...["secretId", "secretName", "fileName", "fileUid", "fileGid", "fileMode"].map((f) => `taskSpec.containerSpec.secrets[].${f}`),
        "taskSpec.containerSpec.healthcheck.tests[]",
        "taskSpec.containerSpec.healthcheck.interval",
        "taskSpec.containerSpec.healthcheck.timeout",
        "taskSpec.containerSpec.healthcheck.startPeriod",
        "taskSpec.containerSpec.healthcheck.retries",
        "taskSpec.containerSpec.stopGracePeriod",
        "taskSpec.networksAdvanceds[].id",
        "taskSpec.networksAdvanceds[].name",
        "taskSpec.networksAdvanceds[].aliases[]",
        "taskSpec.placement.constraints[]",
        "taskSpec.placement.maxReplicas",
        "taskSpec.resources.limits.memoryBytes",
        "taskSpec.restartPolicy.condition",
        "taskSpec.restartPolicy.delay",
        "taskSpec.restartPolicy.maxAttempts",
        "taskSpec.restartPolicy.window",
        "taskSpec.forceUpdate",
        "mode.replicated.replicas",
        ...["updateConfig", "rollbackConfig"].flatMap((c) => ["parallelism", "delay", "failureAction", "monitor", "maxFailureRatio", "order"].map((f) => `${c}.${f}`)),
        "endpointSpec.mode",
        "endpointSpec.ports[].targetPort",
        "endpointSpec.ports[].publishedPort",
        "endpointSpec.ports[].publishMode",
        "endpointSpec.ports[].protocol",
        "convergeConfig.delay",
        "convergeConfig.timeout",
    ],
    forceNew: ["name"],
    updatable: ["labels", "taskSpec", "mode", "updateConfig", "rollbackConfig", "endpointSpec", "convergeConfig"],
    async check(ctx, news) {
        const image = ((news.taskSpec as Props).containerSpec as Props).image as string;
        if (!/@sha256:[0-9a-f]{64}$/.test(image)) {
            // The provider pins a tag to its digest on create and stores that: the next up would
            // update the service, rolling every task (see e2e/harness/README).
            throw new Error(`${ctx.urn}: taskSpec.containerSpec.image ${image}: reference the image by digest (an Image's repoDigest)`);
        }
        return withDefaults(news);
    },
    stored: (olds, oldOutputs) => ({ ...olds, ...oldOutputs }),
    async diff(_ctx, _id, stored, news) {
        const changed = [...new Set([...Object.keys(stored), ...Object.keys(news)])].filter((k) =>
            k === "convergeConfig" ? JSON.stringify(stored[k]) !== JSON.stringify(news[k]) : differs(stored[k], news[k], k),
        );
        if (changed.length === 0) return { verdict: "same", changed };
        const replaced =
            stored.name !== news.name ||
            differs(getPath(stored, "taskSpec.networksAdvanceds"), getPath(news, "taskSpec.networksAdvanceds"), "taskSpec.networksAdvanceds") ||
            differs(getPath(stored, "taskSpec.containerSpec.labels"), getPath(news, "taskSpec.containerSpec.labels"), "taskSpec.containerSpec.labels");
        // An explicit name: the old service must go before the new one can take it.
        return { verdict: replaced ? "replace" : "update", changed, deleteBeforeReplace: replaced };
    },
    async create(ctx, inputs) {
        const docker = dockerFor(ctx);
        const created = await docker.call<{ ID: string }>("/services/create", { method: "POST", body: serviceSpec(inputs) });
        if (inputs.convergeConfig !== undefined) {
            const config = inputs.convergeConfig as Props;
            try {
                await converge(ctx, docker, created.ID, config, parseGoDuration((config.delay as string | undefined) ?? "7s", "convergeConfig.delay") / 1e6);
            } catch (err) {
                // The provider removes a service that did not converge; nothing is stored.
                await removeService(docker, created.ID, inputs);
                throw err;
            }
        }
        return { id: created.ID, outputs: await read(docker, created.ID, inputs) };
    },
    async update(ctx, id, _olds, news, oldOutputs) {
        const docker = dockerFor(ctx);
        const current = await inspect(docker, id);
        const sent = mergeOver(oldOutputs, news) as Props;
        await docker.call(`/services/${id}/update`, { method: "POST", query: { version: current.Version.Index }, body: serviceSpec(sent) });
        if (news.convergeConfig !== undefined) {
            // On update the provider's first check is after 7 s, whatever convergeConfig.delay says.
            await converge(ctx, docker, id, news.convergeConfig as Props, 7000);
        }
        return read(docker, id, news);
    },
    async delete(ctx, id, inputs) {
        await removeService(dockerFor(ctx), id, inputs);
    },
};

/**
 * The provider's delete: with a stop grace period, it notes the containers of the service's live
 * tasks, removes the service, then waits (within the grace period) for each container this engine
 * knows and removes it; other nodes' containers are "no such container" to the manager and are
 * not waited for. Without one, it returns as soon as the service is removed.
 */
async function removeService(docker: DockerApi, id: string, inputs: Props): Promise<void> {
    const grace = getPath(inputs, "taskSpec.containerSpec.stopGracePeriod") as string | undefined;
    const graceMs = grace === undefined ? 0 : parseGoDuration(grace, "stopGracePeriod") / 1e6;
    const containers =
        graceMs > 0
            ? (await tasksOf(docker, { service: [inputs.name as string] }))
                  .filter((t) => t.Status.State !== "shutdown")
                  .map((t) => t.Status.ContainerStatus?.ContainerID)
                  .filter((c): c is string => c !== undefined && c !== "")
            : [];
    try {
        await docker.call(`/services/${id}`, { method: "DELETE" });
    } catch (err) {
        if (!(err instanceof DockerApiError && err.status === 404)) throw new Error(`Error deleting service with ID '${id}': ${(err as Error).message}`);
    }
    for (const container of containers) {
        try {
            await docker.call(`/containers/${container}/wait`, { method: "POST", query: { condition: "removed" }, timeoutMs: graceMs });
            await docker.call(`/containers/${container}`, { method: "DELETE", query: { force: true, v: true } });
        } catch (err) {
            if (err instanceof DockerApiError && (err.status === 404 || /already in progress/.test(err.message))) continue;
            throw new Error(`error on wait for container with ID '${container}': ${(err as Error).message}`);
        }
    }
}
