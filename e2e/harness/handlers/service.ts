// docker Service (the Terraform docker provider's docker_service) on a swarm manager's engine:
// create and update send the whole ServiceSpec, then, with a convergeConfig, wait until every
// replica runs (healthy, where the task has a healthcheck) and an update has completed; a
// rolled-back or never-converging service fails naming its tasks' last errors. The provider's
// read stores the spec as the engine returns it, and its next diff compares against that.
import type { DockerApi } from "../dockerApi";
import { DockerApiError } from "../dockerApi";
import type { Props } from "../wire";
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
    UpdateStatus?: { State?: string; Message?: string };
}

interface Task {
    ID: string;
    Slot?: number;
    NodeID?: string;
    DesiredState: string;
    Status: { State: string; Err?: string; Message?: string; Timestamp?: string };
}

const ns = (value: unknown, field: string) => (typeof value === "string" ? parseGoDuration(value, field) : undefined);
const goOrUndefined = (value: number | undefined) => (value === undefined ? undefined : formatGoDuration(value));

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
export function serviceSpec(inputs: Props): EngineSpec {
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
            Networks: ((task.networksAdvanceds ?? []) as { name: string; aliases?: string[] }[]).map((n) => ({ Target: n.name, Aliases: n.aliases })),
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
        delay: formatGoDuration(c.Delay ?? 0),
        failureAction: c.FailureAction,
        monitor: formatGoDuration(c.Monitor ?? 0),
        maxFailureRatio: String(c.MaxFailureRatio ?? 0),
        order: c.Order,
    };
}

/** The inputs as the provider's read stores them from the engine's spec. */
export function readService(spec: EngineSpec, inputs: Props): Props {
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
                healthcheck:
                    c.Healthcheck === undefined
                        ? undefined
                        : {
                              tests: c.Healthcheck.Test,
                              interval: formatGoDuration(c.Healthcheck.Interval ?? 0),
                              timeout: formatGoDuration(c.Healthcheck.Timeout ?? 0),
                              startPeriod: formatGoDuration(c.Healthcheck.StartPeriod ?? 0),
                              retries: c.Healthcheck.Retries ?? 0,
                          },
                stopGracePeriod: goOrUndefined(c.StopGracePeriod),
            },
            networksAdvanceds: (t.Networks ?? []).map((n, i) => ({
                // The engine stores the network's ID; the provider keeps the name it was given.
                name: (((inputs.taskSpec as Props).networksAdvanceds as Props[] | undefined)?.[i]?.name as string | undefined) ?? n.Target,
                aliases: n.Aliases,
            })),
            placement: t.Placement === undefined ? undefined : { constraints: t.Placement.Constraints, maxReplicas: t.Placement.MaxReplicas },
            resources: t.Resources?.Limits === undefined ? undefined : { limits: { memoryBytes: t.Resources.Limits.MemoryBytes } },
            restartPolicy:
                t.RestartPolicy === undefined
                    ? undefined
                    : {
                          condition: t.RestartPolicy.Condition,
                          delay: goOrUndefined(t.RestartPolicy.Delay),
                          maxAttempts: t.RestartPolicy.MaxAttempts,
                          window: goOrUndefined(t.RestartPolicy.Window),
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

async function tasksOf(docker: DockerApi, id: string): Promise<Task[]> {
    return docker.call<Task[]>("/tasks", { query: { filters: JSON.stringify({ service: [id] }) } });
}

/** Each failed or refused task's last error, newest first, for the message naming the service. */
function taskErrors(tasks: Task[]): string[] {
    return tasks
        .filter((t) => t.Status.Err !== undefined && t.Status.Err !== "")
        .sort((a, b) => (b.Status.Timestamp ?? "").localeCompare(a.Status.Timestamp ?? ""))
        .map((t) => `task ${t.ID.slice(0, 12)} (slot ${t.Slot ?? "?"}): ${t.Status.State}: ${t.Status.Err}`);
}

/**
 * Waits until the service runs its replicas, each task's container started (and healthy: the
 * swarm reports a task with a healthcheck as running only once it passes) and an update done.
 */
async function converge(ctx: HandlerContext, docker: DockerApi, id: string, config: Props): Promise<void> {
    const delayMs = (ns(config.delay, "convergeConfig.delay") ?? 7e9) / 1e6;
    const timeoutMs = (ns(config.timeout, "convergeConfig.timeout") ?? 180e9) / 1e6;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const service = await docker.call<ServiceInspect>(`/services/${id}`);
        const update = service.UpdateStatus?.State;
        if (update === "rollback_completed" || update === "rollback_paused" || update === "paused") {
            const errors = taskErrors(await tasksOf(docker, id));
            throw new Error(`service ${service.Spec.Name}: update ${update}: ${service.UpdateStatus?.Message ?? ""}${errors.length ? `\n${errors.slice(0, 3).join("\n")}` : ""}`);
        }
        const wanted = service.Spec.Mode.Replicated?.Replicas ?? 1;
        const tasks = await tasksOf(docker, id);
        const running = tasks.filter((t) => t.DesiredState === "running" && t.Status.State === "running").length;
        const updating = update === "updating" || update === "rollback_started";
        if (running === wanted && !updating && tasks.filter((t) => t.DesiredState === "running").length === wanted) {
            return;
        }
        if (Date.now() >= deadline) {
            const errors = taskErrors(tasks);
            throw new Error(
                `service ${service.Spec.Name} did not converge within ${config.timeout ?? "3m0s"}: ${running}/${wanted} tasks running` +
                    (errors.length ? `; last task errors:\n${errors.slice(0, 3).join("\n")}` : ""),
            );
        }
        ctx.log(`service ${service.Spec.Name}: ${running}/${wanted} tasks running`);
        await sleep(delayMs);
    }
}

async function inspect(docker: DockerApi, id: string): Promise<ServiceInspect> {
    return docker.call<ServiceInspect>(`/services/${id}`, { query: { insertDefaults: false } });
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
        "taskSpec.containerSpec.healthcheck.tests[]",
        "taskSpec.containerSpec.healthcheck.interval",
        "taskSpec.containerSpec.healthcheck.timeout",
        "taskSpec.containerSpec.healthcheck.startPeriod",
        "taskSpec.containerSpec.healthcheck.retries",
        "taskSpec.containerSpec.stopGracePeriod",
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
        "updateConfig.parallelism",
        "updateConfig.delay",
        "updateConfig.failureAction",
        "updateConfig.monitor",
        "updateConfig.maxFailureRatio",
        "updateConfig.order",
        "rollbackConfig.parallelism",
        "rollbackConfig.delay",
        "rollbackConfig.failureAction",
        "rollbackConfig.monitor",
        "rollbackConfig.maxFailureRatio",
        "rollbackConfig.order",
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
    stored: (olds, oldOutputs) => (oldOutputs.taskSpec === undefined ? olds : withUnreadInputs(oldOutputs, olds)),
    async create(ctx, inputs) {
        const docker = dockerFor(ctx);
        const created = await docker.call<{ ID: string }>("/services/create", { method: "POST", body: serviceSpec(inputs) });
        if (inputs.convergeConfig !== undefined) {
            try {
                await converge(ctx, docker, created.ID, inputs.convergeConfig as Props);
            } catch (err) {
                // The provider removes a service that never converged on create, and fails.
                await removeService(docker, created.ID);
                throw err;
            }
        }
        return { id: created.ID, outputs: readService((await inspect(docker, created.ID)).Spec, inputs) };
    },
    async update(ctx, id, _olds, news) {
        const docker = dockerFor(ctx);
        const current = await inspect(docker, id);
        await docker.call(`/services/${id}/update`, { method: "POST", query: { version: current.Version.Index }, body: serviceSpec(news) });
        if (news.convergeConfig !== undefined) {
            await converge(ctx, docker, id, news.convergeConfig as Props);
        }
        return readService((await inspect(docker, id)).Spec, news);
    },
    async delete(ctx, id) {
        await removeService(dockerFor(ctx), id);
    },
};

/** Stored values for what the read knows, the program's inputs for what it does not read back. */
function withUnreadInputs(stored: Props, inputs: Props): Props {
    return { ...inputs, ...stored };
}

/** Removes the service and waits until its tasks' containers are gone (they hold the network). */
async function removeService(docker: DockerApi, id: string): Promise<void> {
    try {
        await docker.call(`/services/${id}`, { method: "DELETE" });
    } catch (err) {
        if (!(err instanceof DockerApiError && err.status === 404)) throw err;
    }
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
        const tasks = await tasksOf(docker, id);
        if (tasks.length === 0) return;
        await sleep(500);
    }
    throw new Error(`service ${id}: its tasks were not removed within 60 s`);
}
