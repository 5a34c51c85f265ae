// docker Container, following the Terraform docker provider's resource (create, read-after-create,
// update, delete) on the Docker Engine API. Almost every input is ForceNew; the few updatable
// ones are applied by ContainerUpdate, or only recorded, exactly as the provider does
// (healthcheck edits are not applied in place: kreuzwerker #988). Like the provider, it stores
// the healthcheck and memory limits read back from the engine, so a non-canonical duration, or a
// memory limit without a swap limit, diffs on every run. `uploads` are written into the container
// after create and before start, as the provider does (see the uploads section).
import * as fs from "node:fs";
import * as path from "node:path";
import { DockerApi, DockerApiError } from "../dockerApi";
import { containsUnknown, type Props, unknownValue } from "../wire";
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

// ---- uploads ----
// Files written into the container between create and start, as pulumi-docker 5.2.0 does through
// the Terraform provider it bridges, kreuzwerker/terraform-provider-docker v4.5.0 (what pulumi-docker's
// 5.2.0 source pins; the 5.2.0 SDK's ContainerUpload also lists `owner`/`group`, from v4.6.0, but the
// real 5.2.0 plugin refuses them as unknown keys, so the fidelity rule refuses them here too).
// Followed, not copied:
// - internal/provider/resource_docker_container.go, the "upload" schema: a TypeSet, ForceNew, of
//   {content, content_base64, file (required), executable (default false), permissions
//   (validateStringMatchesPattern `^0[0-7]{3}$`), source, source_hash};
//   content_base64 is checked by validateStringIsBase64Encoded (internal/provider/validators.go).
//   No ConflictsWith: content vs content_base64 vs source is only checked at create.
// - internal/provider/resource_docker_container_funcs.go, resourceDockerContainerCreate: after
//   ContainerCreate and the network connects, before ContainerStart, for each element of the set
//   (in the set's order): exactly one of content/content_base64/source must be non-empty, else
//   "error with upload content: ..." (the container already exists: a half-created resource);
//   mode = permissions (octal) if set, else 0744 if executable, else 0644; one archive/tar entry
//   per upload with Name = `file` as given, Size, ModTime = now, uid/gid 0, and CopyToContainer
//   to "/": the engine makes the file root:root.
// - resourceDockerContainerRead never reads uploads back ("upload can't be imported"): state keeps
//   the set as planned. The diff is TF's set diff: element order and duplicates do not matter, an
//   unset string equals "", and any change replaces the container (ForceNew).
// - The set's order (which element is copied first, and so wins when two share a path) is
//   terraform-plugin-sdk's: helper/schema SerializeResourceForHash + hashcode.String (CRC-32) per
//   element, elements listed by their hash code sorted as decimal strings (Set.listCode).
// The rest is the engine's, so the same request gets the same result: PUT /containers/{id}/archive
// ?path=/&noOverwriteDirNonDir=true creates missing parent directories (0755, root) and applies the
// header's mode. Checked against Go: buildTar's bytes equal archive/tar's for the same Header, and
// uploadSetCode is the SDK's HashResource text (keys sorted, "key:value;") under CRC-32
// (tests/e2e/harness/uploads.test.ts pins both).

export interface Upload {
    file: string;
    content?: string;
    contentBase64?: string;
    executable?: boolean;
    permissions?: string;
    source?: string;
    sourceHash?: string;
}

const uploadStrings = ["content", "contentBase64", "permissions", "source", "sourceHash"] as const;

const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) {
        c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    }
    return c >>> 0;
});

/** CRC-32 (IEEE), Go's crc32.ChecksumIEEE. */
function crc32(data: Buffer): number {
    let crc = 0xffffffff;
    for (const byte of data) {
        crc = crcTable[(crc ^ byte) & 0xff] ^ (crc >>> 8);
    }
    return (crc ^ 0xffffffff) >>> 0;
}

/** The element's hash code in the provider's set: SerializeResourceForHash (keys sorted, zero values for unset), CRC-32. */
export function uploadSetCode(u: Upload): string {
    const text =
        `content:${u.content ?? ""};content_base64:${u.contentBase64 ?? ""};executable:${u.executable === true ? "1" : "0"};` +
        `file:${u.file};permissions:${u.permissions ?? ""};` +
        `source:${u.source ?? ""};source_hash:${u.sourceHash ?? ""};`;
    return String(crc32(Buffer.from(text, "utf8")));
}

/** Go's base64.StdEncoding.DecodeString accepts it: padded standard alphabet, CR and LF ignored. */
function isGoBase64(text: string): boolean {
    return /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text.replace(/[\r\n]/g, ""));
}

/**
 * The provider's Check for `uploads`: schema validation (paths in the program's order), then the
 * set's canonical form: "" strings dropped (TF hashes unset as ""), executable defaulted, duplicates
 * merged, elements in the set's order. So reordering the program's list is no change, like TF's.
 */
export function checkUploads(value: unknown): Upload[] | undefined {
    if (value === undefined || value === null) {
        return undefined;
    }
    if (!Array.isArray(value)) {
        throw new Error("uploads: expected a list");
    }
    const known = (v: unknown): v is string => typeof v === "string" && v !== unknownValue;
    const canonical = (value as Props[]).map((raw, i) => {
        if (raw.file === undefined || raw.file === null || raw.file === "") {
            throw new Error(`uploads[${i}].file: required (the path of the file in the container)`);
        }
        if (known(raw.permissions) && !/^0[0-7]{3}$/.test(raw.permissions)) {
            throw new Error(`uploads[${i}].permissions: '${raw.permissions}' doesn't match the pattern '^0[0-7]{3}$'`);
        }
        if (known(raw.contentBase64) && !isGoBase64(raw.contentBase64)) {
            // The provider echoes the value; it may be a secret, so it is left out here.
            throw new Error(`uploads[${i}].contentBase64: the value is not base64 decodeable (Go's StdEncoding: standard alphabet, padded)`);
        }
        const u: Props = { ...raw, executable: raw.executable ?? false };
        for (const k of uploadStrings) {
            if (u[k] === "" || u[k] === null) {
                delete u[k];
            }
        }
        return u as unknown as Upload;
    });
    if (canonical.length === 0) {
        return undefined;
    }
    if (containsUnknown(canonical)) {
        return canonical;
    }
    const bySetCode = new Map(canonical.map((u) => [uploadSetCode(u), u]));
    return [...bySetCode.keys()].sort().map((code) => bySetCode.get(code) as Upload);
}

export interface TarEntry {
    name: string;
    mode: number;
    uid: number;
    gid: number;
    uname: string;
    gname: string;
    /** Seconds since the epoch. */
    mtime: number;
    data: Buffer;
}

const blockSize = 512;
/** Go's isASCII and toASCII for tar fields: NUL counts as not ASCII. */
const asciiCode = (c: string) => c.charCodeAt(0) > 0 && c.charCodeAt(0) < 0x80;
const isAscii = (s: string) => [...s].every(asciiCode);
const toAscii = (s: string) => [...s].filter(asciiCode).join("");
const fitsOctal = (width: number, n: number) => n >= 0 && n < 8 ** (width - 1);

/** Go's splitUSTARPath: a name longer than 100 bytes as prefix (≤155) + "/" + name (≤100). */
function splitUstarPath(name: string): [string, string] | undefined {
    let length = name.length;
    if (length <= 100 || !isAscii(name)) {
        return undefined;
    } else if (length > 156) {
        length = 156;
    } else if (name[length - 1] === "/") {
        length--;
    }
    const i = name.slice(0, length).lastIndexOf("/");
    const nameLength = name.length - i - 1;
    if (i <= 0 || nameLength > 100 || nameLength === 0 || i > 155) {
        return undefined;
    }
    return [name.slice(0, i), name.slice(i + 1)];
}

/** Go's formatter.formatString: the bytes, cut at the field's width, NUL-terminated when shorter. */
function putString(block: Buffer, offset: number, width: number, text: string): void {
    const bytes = Buffer.from(text, "utf8");
    bytes.copy(block, offset, 0, width);
    if (bytes.length < width) {
        block[offset + bytes.length] = 0;
    }
}

function putOctal(block: Buffer, offset: number, width: number, n: number): void {
    putString(block, offset, width, (fitsOctal(width, n) ? n : 0).toString(8).padStart(width - 1, "0"));
}

/** Magic, version and checksum (6 octal digits, NUL, space), as Go's block.setFormat(FormatUSTAR|FormatPAX). */
function sealHeader(block: Buffer): Buffer {
    putString(block, 257, 6, "ustar\0");
    putString(block, 263, 2, "00");
    block.fill(0x20, 148, 156);
    const sum = block.reduce((a, b) => a + b, 0);
    putOctal(block, 148, 7, sum);
    block[155] = 0x20;
    return block;
}

function headerBlock(e: TarEntry, name: string, prefix: string, typeflag: string, str: (s: string) => string = (s) => s): Buffer {
    const block = Buffer.alloc(blockSize);
    putString(block, 0, 100, str(name));
    putOctal(block, 100, 8, e.mode);
    putOctal(block, 108, 8, e.uid);
    putOctal(block, 116, 8, e.gid);
    putOctal(block, 124, 12, e.data.length);
    putOctal(block, 136, 12, e.mtime);
    putString(block, 156, 1, typeflag);
    putString(block, 265, 32, str(e.uname));
    putString(block, 297, 32, str(e.gname));
    putOctal(block, 329, 8, 0);
    putOctal(block, 337, 8, 0);
    putString(block, 345, 155, prefix);
    return sealHeader(block);
}

const padding = (n: number) => Buffer.alloc((blockSize - (n % blockSize)) % blockSize);

/** Go's formatPAXRecord: "<length> <key>=<value>\n", the length counting itself. */
function paxRecord(key: string, value: string): string {
    const body = ` ${key}=${value}\n`;
    let size = Buffer.byteLength(body) + String(Buffer.byteLength(body)).length;
    if (String(size).length + Buffer.byteLength(body) !== size) {
        size = String(size).length + Buffer.byteLength(body);
    }
    return `${size}${body}`;
}

/**
 * The one-entry archive Go's archive/tar Writer makes of the provider's tar.Header: USTAR when the
 * fields fit (a long ASCII name split into prefix/name), else a PAX extended header first; a
 * regular file ('0'), the data padded to 512 bytes, two zero blocks at the end.
 */
export function buildTar(e: TarEntry): Buffer {
    if ([e.name, e.uname, e.gname].some((s) => s.includes("\0"))) {
        throw new Error("Error creating tar archive: archive/tar: cannot encode header");
    }
    const pax: Record<string, string> = {};
    const split = splitUstarPath(e.name);
    if ((!isAscii(e.name) || e.name.length > 100) && split === undefined) {
        pax.path = e.name;
    }
    for (const [key, value] of [["uname", e.uname], ["gname", e.gname]] as const) {
        if (!isAscii(value) || value.length > 32) {
            pax[key] = value;
        }
    }
    for (const [key, value] of [["uid", e.uid], ["gid", e.gid]] as const) {
        if (!fitsOctal(8, value)) {
            pax[key] = String(value);
        }
    }
    const parts: Buffer[] = [];
    if (Object.keys(pax).length === 0) {
        parts.push(split ? headerBlock(e, split[1], split[0], "0") : headerBlock(e, e.name, "", "0"));
    } else {
        const records = Buffer.from(
            Object.keys(pax)
                .sort()
                .map((k) => paxRecord(k, pax[k]))
                .join(""),
            "utf8",
        );
        const slash = e.name.lastIndexOf("/");
        let paxName = toAscii(path.posix.join(e.name.slice(0, slash + 1), "PaxHeaders.0", e.name.slice(slash + 1))).slice(0, 100);
        paxName = paxName.replace(/\/+$/, "");
        const xheader = Buffer.alloc(blockSize);
        putString(xheader, 0, 100, paxName);
        for (const [offset, width] of [[100, 8], [108, 8], [116, 8], [136, 12]]) {
            putOctal(xheader, offset, width, 0);
        }
        putOctal(xheader, 124, 12, records.length);
        putString(xheader, 156, 1, "x");
        parts.push(sealHeader(xheader), records, padding(records.length));
        parts.push(headerBlock(e, e.name, "", "0", toAscii));
    }
    parts.push(e.data, padding(e.data.length), Buffer.alloc(2 * blockSize));
    return Buffer.concat(parts);
}

function readSource(cwd: string, source: string): Buffer {
    try {
        return fs.readFileSync(path.resolve(cwd, source));
    } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const reason = code === "ENOENT" ? "no such file or directory" : code === "EACCES" ? "permission denied" : (err as Error).message;
        throw new Error(`could not read file: open ${source}: ${reason}`);
    }
}

/** The provider's upload step of create: one archive per upload, copied to "/" before the container starts. */
async function uploadFiles(ctx: HandlerContext, docker: DockerApi, id: string, uploads: Upload[] | undefined): Promise<void> {
    for (const u of uploads ?? []) {
        const given = [u.content, u.contentBase64, u.source].filter((v) => v !== undefined && v !== "").length;
        const which = `(upload of ${u.file}; in Pulumi: content, contentBase64, source)`;
        if (given === 0) {
            throw new Error(`error with upload content: one of 'content', 'content_base64', or 'source' must be set ${which}`);
        }
        if (given > 1) {
            throw new Error(`error with upload content: only one of 'content', 'content_base64', or 'source' can be set ${which}`);
        }
        const data = u.content
            ? Buffer.from(u.content, "utf8")
            : u.contentBase64
              ? Buffer.from(u.contentBase64.replace(/[\r\n]/g, ""), "base64")
              : readSource(ctx.cwd, u.source as string);
        const mode = u.permissions ? parseInt(u.permissions, 8) : u.executable === true ? 0o744 : 0o644;
        const archive = buildTar({
            name: u.file,
            mode,
            uid: 0,
            gid: 0,
            uname: "",
            gname: "",
            mtime: Math.round(Date.now() / 1000),
            data,
        });
        try {
            await docker.call(`/containers/${id}/archive`, {
                method: "PUT",
                query: { path: "/", noOverwriteDirNonDir: true },
                rawBody: archive,
                contentType: "application/x-tar",
            });
        } catch (err) {
            throw new Error(`Unable to upload volume content: ${(err as Error).message}`);
        }
        ctx.log(`uploaded ${u.file} (${data.length} bytes, mode ${mode.toString(8).padStart(4, "0")})`);
    }
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
        "uploads[].file",
        "uploads[].content",
        "uploads[].contentBase64",
        "uploads[].permissions",
        "uploads[].executable",
        "uploads[].source",
        "uploads[].sourceHash",
    ],
    forceNew: "*",
    updatable,
    defaults,
    autoName: "name",
    async check(_ctx, news) {
        const healthcheck = news.healthcheck === undefined ? {} : { healthcheck: { ...healthcheckDefaults, ...(news.healthcheck as Props) } };
        const checked: Props = { ...defaults, ...news, ...healthcheck, uploads: checkUploads(news.uploads) };
        if (checked.uploads === undefined) {
            delete checked.uploads;
        }
        return checked;
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
            await uploadFiles(ctx, docker, created.Id, inputs.uploads as Upload[] | undefined);
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
