// docker Container, following the Terraform docker provider's resource (create, read-after-create,
// update, delete) on the Docker Engine API. Almost every input is ForceNew; the few updatable
// ones are applied by ContainerUpdate, or only recorded, exactly as the provider does
// (healthcheck edits are not applied in place: kreuzwerker #988). Like the provider, it stores
// the healthcheck and memory limits read back from the engine, so a non-canonical duration, or a
// memory limit without a swap limit, diffs on every run.
import { DockerApi, DockerApiError } from "../dockerApi";
import type { Props } from "../wire";
import { dockerFor, inspectImage, labelMap } from "./dockerObjects";
import { type Handler, type HandlerContext, PartialCreateError } from "./types";

const updatable = [
    "restart",
    "maxRetryCount",
    "memory",
    "memorySwap",
    "cpuShares",
    "mustRun",
    "start",
    "wait",
    "waitTimeout",
    "attach",
    "logs",
    "rm",
    "removeVolumes",
    "destroyGraceSeconds",
    "healthcheck",
    "init",
    "tmpfs",
    "containerReadRefreshTimeoutMilliseconds",
];
/** Updatable inputs the provider passes to ContainerUpdate; the rest only change state. */
const appliedByUpdate = ["restart", "maxRetryCount", "memory", "memorySwap", "cpuShares"];

const defaults: Props = {
    restart: "no",
    mustRun: true,
    start: true,
    wait: false,
    waitTimeout: 60,
    attach: false,
    logs: false,
    rm: false,
    removeVolumes: true,
    maxRetryCount: 0,
    destroyGraceSeconds: 0,
    containerReadRefreshTimeoutMilliseconds: 15_000,
};

const pollMs = 200;
/** Pulumi's default create timeout for bridged resources: the bound for an attached container. */
const attachTimeoutMs = 20 * 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const durationUnits: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration (what the provider uses for healthcheck fields), in nanoseconds. */
export function parseGoDuration(text: string, field: string): number {
    if (text === "0") {
        return 0;
    }
    const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
    let total = 0;
    let consumed = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        total += Number(m[1]) * durationUnits[m[2]];
        consumed = re.lastIndex;
    }
    if (consumed === 0 || consumed !== text.length) {
        throw new Error(`${field}: invalid Go duration ${JSON.stringify(text)} (expected e.g. "10s", "1m30s")`);
    }
    return Math.round(total);
}

/** Go's time.Duration.String() of a nanosecond count: what the provider stores for a healthcheck duration. */
export function formatGoDuration(ns: number): string {
    const fraction = (value: number, digits: number) => {
        const text = String(value).padStart(digits, "0").replace(/0+$/, "");
        return text === "" ? "" : `.${text}`;
    };
    if (ns === 0) {
        return "0s";
    }
    if (ns < 1e3) {
        return `${ns}ns`;
    }
    if (ns < 1e6) {
        return `${Math.floor(ns / 1e3)}${fraction(ns % 1e3, 3)}µs`;
    }
    if (ns < 1e9) {
        return `${Math.floor(ns / 1e6)}${fraction(ns % 1e6, 6)}ms`;
    }
    const totalSeconds = Math.floor(ns / 1e9);
    const seconds = `${totalSeconds % 60}${fraction(ns % 1e9, 9)}s`;
    const totalMinutes = Math.floor(totalSeconds / 60);
    if (totalMinutes === 0) {
        return seconds;
    }
    const minutes = `${totalMinutes % 60}m${seconds}`;
    const hours = Math.floor(totalMinutes / 60);
    return hours === 0 ? minutes : `${hours}h${minutes}`;
}

/** The schema's defaults for healthcheck fields the program leaves unset. */
const healthcheckDefaults = { interval: "0s", timeout: "0s", startPeriod: "0s", startInterval: "0s", retries: 0 };

interface Port {
    internal: number;
    external?: number;
    ip?: string;
    protocol?: string;
}
interface Volume {
    volumeName?: string;
    hostPath?: string;
    containerPath?: string;
    readOnly?: boolean;
    fromContainer?: string;
}
interface Network {
    name: string;
    aliases?: string[];
}
interface Healthcheck {
    tests?: string[];
    interval?: string;
    timeout?: string;
    startPeriod?: string;
    startInterval?: string;
    retries?: number;
}

interface EngineHealthcheck {
    Test: string[];
    Interval?: number;
    Timeout?: number;
    StartPeriod?: number;
    StartInterval?: number;
    Retries?: number;
}

interface ContainerInspect {
    Id: string;
    Name: string;
    Config: { Tty: boolean; Healthcheck?: EngineHealthcheck };
    HostConfig: { Memory: number; MemorySwap: number };
    State: { Running: boolean; ExitCode: number; FinishedAt: string; Health?: { Status: string } };
    NetworkSettings: {
        Bridge: string;
        Networks: Record<
            string,
            { IPAddress: string; IPPrefixLen: number; Gateway: string; MacAddress: string; GlobalIPv6Address: string; GlobalIPv6PrefixLen: number; IPv6Gateway: string }
        >;
    };
}

function volumeSpec(volumes: Volume[] | undefined): { binds: string[]; anonymous: Record<string, object>; from: string[] } {
    const binds: string[] = [];
    const anonymous: Record<string, object> = {};
    const from: string[] = [];
    for (const [i, v] of (volumes ?? []).entries()) {
        if (v.fromContainer) {
            from.push(v.fromContainer);
            continue;
        }
        if (!v.containerPath) {
            throw new Error(`volumes[${i}].containerPath: required unless fromContainer is set`);
        }
        const source = v.hostPath ?? v.volumeName;
        if (source === undefined) {
            anonymous[v.containerPath] = {};
            continue;
        }
        binds.push(`${source}:${v.containerPath}${v.readOnly ? ":ro" : ""}`);
    }
    return { binds, anonymous, from };
}

function portSpec(ports: Port[] | undefined): { exposed: Record<string, object>; bindings: Record<string, object[]> } {
    const exposed: Record<string, object> = {};
    const bindings: Record<string, object[]> = {};
    for (const p of ports ?? []) {
        const key = `${p.internal}/${p.protocol ?? "tcp"}`;
        exposed[key] = {};
        bindings[key] = [
            ...(bindings[key] ?? []),
            { HostIp: p.ip ?? "0.0.0.0", HostPort: p.external === undefined ? "" : String(p.external) },
        ];
    }
    return { exposed, bindings };
}

function healthSpec(h: Healthcheck | undefined): object | undefined {
    if (h === undefined) {
        return undefined;
    }
    const ns = (v: string | undefined, field: string) => (v === undefined ? 0 : parseGoDuration(v, `healthcheck.${field}`));
    return {
        Test: h.tests,
        Interval: ns(h.interval, "interval"),
        Timeout: ns(h.timeout, "timeout"),
        StartPeriod: ns(h.startPeriod, "startPeriod"),
        StartInterval: ns(h.startInterval, "startInterval"),
        Retries: h.retries ?? 0,
    };
}

function createBody(inputs: Props): Props {
    const networks = (inputs.networksAdvanced ?? []) as Network[];
    const vols = volumeSpec(inputs.volumes as Volume[] | undefined);
    const ports = portSpec(inputs.ports as Port[] | undefined);
    const command = inputs.command as string[] | undefined;
    if (command?.some((c) => c === "")) {
        throw new Error("command: values for command may not be empty");
    }
    const first = networks[0];
    return {
        Image: inputs.image,
        Hostname: inputs.hostname,
        Cmd: command,
        Entrypoint: inputs.entrypoints,
        Env: inputs.envs,
        User: inputs.user,
        WorkingDir: inputs.workingDir,
        Labels: labelMap(inputs.labels as { label: string; value: string }[] | undefined),
        ExposedPorts: ports.exposed,
        Volumes: vols.anonymous,
        Healthcheck: healthSpec(inputs.healthcheck as Healthcheck | undefined),
        StopSignal: inputs.stopSignal,
        StopTimeout: inputs.stopTimeout,
        HostConfig: {
            Binds: vols.binds,
            VolumesFrom: vols.from,
            PortBindings: ports.bindings,
            RestartPolicy: { Name: inputs.restart ?? "no", MaximumRetryCount: inputs.maxRetryCount ?? 0 },
            AutoRemove: inputs.rm === true,
            Init: inputs.init === true,
            GroupAdd: inputs.groupAdds,
            Tmpfs: inputs.tmpfs,
            Memory: typeof inputs.memory === "number" ? inputs.memory * 1024 * 1024 : undefined,
            MemorySwap: typeof inputs.memorySwap === "number" && inputs.memorySwap > 0 ? inputs.memorySwap * 1024 * 1024 : inputs.memorySwap,
            CpuShares: inputs.cpuShares,
            ShmSize: typeof inputs.shmSize === "number" ? inputs.shmSize * 1024 * 1024 : undefined,
            NetworkMode: first?.name ?? "bridge",
        },
        NetworkingConfig: first ? { EndpointsConfig: { [first.name]: { Aliases: first.aliases ?? [] } } } : undefined,
    };
}

async function waitHealthy(docker: DockerApi, id: string, timeoutSeconds: number): Promise<void> {
    const deadline = Date.now() + timeoutSeconds * 1000;
    for (;;) {
        const info = await docker.call<ContainerInspect>(`/containers/${id}/json`);
        if (info.State.Health === undefined) {
            throw new Error(
                "you have supplied a 'wait' argument, but the container does not have a healthcheck defined. " +
                    "Please remove the 'wait' argument or add a 'healthcheck' attribute",
            );
        }
        if (info.State.Health.Status === "healthy") {
            return;
        }
        if (Date.now() >= deadline) {
            throw new Error(
                `container failed to be in a healthy state within waitTimeout ${timeoutSeconds}s ` +
                    `(health status: ${info.State.Health.Status})`,
            );
        }
        await sleep(pollMs);
    }
}

/** The provider's read-after-create: wait for the container to run unless mustRun is false. */
async function readAfterCreate(docker: DockerApi, id: string, inputs: Props, createdAt: number): Promise<ContainerInspect> {
    const deadline = Date.now() + (inputs.containerReadRefreshTimeoutMilliseconds as number);
    for (;;) {
        const info = await docker.call<ContainerInspect>(`/containers/${id}/json`);
        if (info.State.Running || inputs.mustRun === false) {
            return info;
        }
        const finished = Date.parse(info.State.FinishedAt);
        if (finished >= createdAt || Date.now() >= deadline) {
            throw new Error(
                `container exited (code ${info.State.ExitCode}) but mustRun is true: the provider deletes it and fails ` +
                    "(set mustRun: false for a one-shot container)",
            );
        }
        await sleep(pollMs);
    }
}

/**
 * The healthcheck as the provider's read stores it: read back from the engine, durations in Go's
 * format. The next diff compares the program's value with this, not with the previous input.
 */
function storedHealthcheck(h: EngineHealthcheck | undefined): Props | undefined {
    if (h === undefined) {
        return undefined;
    }
    return {
        tests: h.Test,
        interval: formatGoDuration(h.Interval ?? 0),
        timeout: formatGoDuration(h.Timeout ?? 0),
        startPeriod: formatGoDuration(h.StartPeriod ?? 0),
        startInterval: formatGoDuration(h.StartInterval ?? 0),
        retries: h.Retries ?? 0,
    };
}

/** Memory limits as the provider's read stores them, in MiB; the engine sets swap to twice the memory when unset. */
function storedMemory(host: ContainerInspect["HostConfig"]): Props {
    const mib = (bytes: number) => bytes / 1024 / 1024;
    return host.Memory > 0 ? { memory: mib(host.Memory), memorySwap: host.MemorySwap > 0 ? mib(host.MemorySwap) : host.MemorySwap } : {};
}

/** Inputs with the values the provider's read stored in their place: what its next diff compares. */
function storedInputs(inputs: Props, outputs: Props): Props {
    const read = ["healthcheck", "memory", "memorySwap"].filter((k) => outputs[k] !== undefined);
    return { ...inputs, ...Object.fromEntries(read.map((k) => [k, outputs[k]])) };
}

function outputsOf(inputs: Props, info: ContainerInspect, logs: string | undefined): Props {
    const healthcheck = storedHealthcheck(info.Config.Healthcheck);
    return {
        ...inputs,
        ...storedMemory(info.HostConfig),
        ...(healthcheck && inputs.healthcheck !== undefined ? { healthcheck } : {}),
        name: info.Name.replace(/^\//, ""),
        exitCode: info.State.Running ? undefined : info.State.ExitCode,
        containerLogs: logs,
        bridge: info.NetworkSettings.Bridge,
        networkDatas: Object.entries(info.NetworkSettings.Networks).map(([networkName, n]) => ({
            networkName,
            ipAddress: n.IPAddress,
            ipPrefixLength: n.IPPrefixLen,
            gateway: n.Gateway,
            macAddress: n.MacAddress,
            globalIpv6Address: n.GlobalIPv6Address,
            globalIpv6PrefixLength: n.GlobalIPv6PrefixLen,
            ipv6Gateway: n.IPv6Gateway,
        })),
    };
}

async function removeContainer(docker: DockerApi, id: string, inputs: Props): Promise<void> {
    if (inputs.attach !== true) {
        try {
            await docker.call(`/containers/${id}/stop`, { method: "POST", query: { t: inputs.destroyGraceSeconds as number } });
        } catch (err) {
            if (!(err instanceof DockerApiError && (err.status === 404 || err.status === 304))) {
                throw err;
            }
        }
    }
    try {
        await docker.call(`/containers/${id}`, { method: "DELETE", query: { force: true, v: inputs.removeVolumes !== false } });
    } catch (err) {
        const ignorable = err instanceof DockerApiError && (err.status === 404 || /already in progress/.test(err.message));
        if (!ignorable) {
            throw err;
        }
    }
}

async function startAndSettle(ctx: HandlerContext, docker: DockerApi, id: string, inputs: Props): Promise<Props> {
    const createdAt = Date.now() - 1000;
    if (inputs.start !== false) {
        await docker.call(`/containers/${id}/start`, { method: "POST" });
        if (inputs.wait === true) {
            await waitHealthy(docker, id, inputs.waitTimeout as number);
        }
    }
    let logs: string | undefined;
    if (inputs.attach === true) {
        await docker.call(`/containers/${id}/wait`, { method: "POST", query: { condition: "not-running" }, timeoutMs: attachTimeoutMs });
        if (inputs.logs === true) {
            logs = await docker.logs(id, false);
        }
    }
    const info = await readAfterCreate(docker, id, inputs, createdAt);
    ctx.log(`container ${info.Name.replace(/^\//, "")} ${info.State.Running ? "running" : `exited ${info.State.ExitCode}`}`);
    return outputsOf(inputs, info, logs);
}

export const containerHandler: Handler = {
    type: "docker:index/container:Container",
    inputs: [
        "name",
        "image",
        "command[]",
        "entrypoints[]",
        "envs[]",
        "user",
        "workingDir",
        "hostname",
        "networksAdvanced[].name",
        "networksAdvanced[].aliases[]",
        "ports[].internal",
        "ports[].external",
        "ports[].ip",
        "ports[].protocol",
        "volumes[].volumeName",
        "volumes[].hostPath",
        "volumes[].containerPath",
        "volumes[].readOnly",
        "volumes[].fromContainer",
        "healthcheck.tests[]",
        "healthcheck.interval",
        "healthcheck.timeout",
        "healthcheck.retries",
        "healthcheck.startPeriod",
        "healthcheck.startInterval",
        "restart",
        "maxRetryCount",
        "wait",
        "waitTimeout",
        "attach",
        "logs",
        "mustRun",
        "start",
        "rm",
        "removeVolumes",
        "groupAdds[]",
        "stopTimeout",
        "stopSignal",
        "memory",
        "memorySwap",
        "cpuShares",
        "labels[].label",
        "labels[].value",
        "init",
        "tmpfs{}",
        "shmSize",
        "destroyGraceSeconds",
        "containerReadRefreshTimeoutMilliseconds",
    ],
    forceNew: "*",
    updatable,
    defaults,
    autoName: "name",
    async check(_ctx, news) {
        const healthcheck = news.healthcheck === undefined ? {} : { healthcheck: { ...healthcheckDefaults, ...(news.healthcheck as Props) } };
        return { ...defaults, ...news, ...healthcheck };
    },
    stored: storedInputs,
    async create(ctx, inputs) {
        const docker = dockerFor(ctx);
        const image = inputs.image as string;
        if ((await inspectImage(docker, image)) === undefined) {
            throw new Error(`Unable to create container with image ${image}: not on the engine (run scripts/provide-images.sh)`);
        }
        const created = await docker.call<{ Id: string }>("/containers/create", {
            method: "POST",
            query: { name: inputs.name as string },
            body: createBody(inputs),
        });
        try {
            for (const net of ((inputs.networksAdvanced ?? []) as Network[]).slice(1)) {
                await docker.call(`/networks/${encodeURIComponent(net.name)}/connect`, {
                    method: "POST",
                    body: { Container: created.Id, EndpointConfig: { Aliases: net.aliases ?? [] } },
                });
            }
            return { id: created.Id, outputs: await startAndSettle(ctx, docker, created.Id, inputs) };
        } catch (err) {
            if (/mustRun is true/.test((err as Error).message)) {
                await removeContainer(docker, created.Id, inputs);
                throw err;
            }
            throw new PartialCreateError((err as Error).message, created.Id, { ...inputs });
        }
    },
    async update(ctx, id, inputs, news, oldOutputs) {
        const docker = dockerFor(ctx);
        const olds = storedInputs(inputs, oldOutputs);
        if (olds.mustRun === false && news.mustRun === true && news.start !== false) {
            await docker.call(`/containers/${id}/start`, { method: "POST" });
        }
        if (appliedByUpdate.some((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]))) {
            const body = createBody(news).HostConfig as Props;
            await docker.call(`/containers/${id}/update`, {
                method: "POST",
                body: { RestartPolicy: body.RestartPolicy, Memory: body.Memory ?? 0, MemorySwap: body.MemorySwap, CpuShares: body.CpuShares ?? 0 },
            });
        }
        const ignored = updatable.filter(
            (k) => !appliedByUpdate.includes(k) && k !== "mustRun" && JSON.stringify(olds[k]) !== JSON.stringify(news[k]),
        );
        if (ignored.length > 0) {
            ctx.log(`${ignored.join(", ")} changed: recorded in state only, as the provider does not apply them in place`);
        }
        // The provider's read after update stores what the engine has: the healthcheck an update
        // never changes, and the memory limits as the engine set them.
        const info = await docker.call<ContainerInspect>(`/containers/${id}/json`);
        const healthcheck = oldOutputs.healthcheck === undefined ? {} : { healthcheck: oldOutputs.healthcheck };
        return { ...oldOutputs, ...news, ...storedMemory(info.HostConfig), ...healthcheck };
    },
    async delete(ctx, id, inputs) {
        await removeContainer(dockerFor(ctx), id, { ...defaults, ...inputs });
    },
};
