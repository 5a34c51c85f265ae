// What the Docker engine the stack deploys to can do. The docker provider talks to its `docker:host`
// config, else DOCKER_HOST, else the default socket; this asks the same engine. No Pulumi import:
// the user commands ask the engine through this module too, and start faster without the SDK.
import * as http from "node:http";
import { type SshTarget, runOverSsh } from "./ssh";

/** Where an engine listens unless told otherwise: here, and on a server for `docker system dial-stdio`. */
export const defaultDockerSocket = "/var/run/docker.sock";

/** The first Docker API version whose healthchecks take a start interval (Docker 25). */
export const startIntervalApiVersion = "1.44";

/** Where the docker provider connects: a unix socket path, or an http base URL (tcp://). */
export function engineAddress(dockerHost = process.env.DOCKER_HOST): { socketPath: string } | { url: string } | undefined {
    if (!dockerHost) return { socketPath: defaultDockerSocket };
    if (dockerHost.startsWith("unix://")) return { socketPath: dockerHost.slice("unix://".length) };
    if (dockerHost.startsWith("tcp://")) return { url: `http://${dockerHost.slice("tcp://".length)}` };
    return undefined; // ssh:// and the like: not asked, so treated as an older engine
}

export interface EngineReply {
    status: number;
    body: Buffer;
}

/** One request to the engine's API (JSON `body`), at the address the provider would use. */
export function engineRequest(
    method: string,
    path: string,
    signal?: AbortSignal,
    body?: unknown,
    dockerHost = process.env.DOCKER_HOST,
): Promise<EngineReply> {
    const address = engineAddress(dockerHost);
    if (address === undefined) {
        return Promise.reject(new Error(`DOCKER_HOST=${dockerHost}: only unix:// and tcp:// Docker engines can be asked`));
    }
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const options: http.RequestOptions = {
        method,
        signal,
        headers: payload === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
    };
    const where = "socketPath" in address ? address.socketPath : address.url;
    return new Promise((resolve, reject) => {
        const request = "socketPath" in address ? http.request({ ...options, socketPath: address.socketPath, path }) : http.request(new URL(path, address.url), options);
        request.on("response", (response) => {
            const chunks: Buffer[] = [];
            response.on("data", (chunk: Buffer) => chunks.push(chunk));
            response.on("end", () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
            response.on("error", reject);
        });
        request.on("error", (err) => reject(new Error(`Docker engine at ${where}: ${method} ${path}: ${err.message}`)));
        request.end(payload);
    });
}

/** The engine's API version ("1.41"), or undefined when it cannot be asked within `timeoutMs`. */
export async function dockerApiVersion(dockerHost = process.env.DOCKER_HOST, timeoutMs = 2000): Promise<string | undefined> {
    try {
        const reply = await engineRequest("GET", "/version", AbortSignal.timeout(timeoutMs), undefined, dockerHost);
        const version = (JSON.parse(reply.body.toString("utf8")) as { ApiVersion?: unknown }).ApiVersion;
        return typeof version === "string" ? version : undefined;
    } catch {
        return undefined;
    }
}

/** Whether API version `version` ("major.minor") is at least `minimum`. */
export function apiAtLeast(version: string | undefined, minimum: string): boolean {
    if (version === undefined) return false;
    const [major, minor] = version.split(".").map(Number);
    const [wantMajor, wantMinor] = minimum.split(".").map(Number);
    if (!Number.isInteger(major) || !Number.isInteger(minor)) return false;
    return major > wantMajor || (major === wantMajor && minor >= wantMinor);
}

/** What the program needs to know of the engine it deploys to. */
export interface EngineFacts {
    apiVersion?: string;
    /** The engine's architecture as Docker names it (amd64, arm64): images are built for it. */
    arch: string;
}

let stackEngine: { arch: string; facts: Promise<EngineFacts> } | undefined;

/** Docker's name for this machine's architecture (Node says x64 where Docker says amd64). */
export function localArch(): string {
    return process.arch === "x64" ? "amd64" : process.arch;
}

/**
 * The stack's engine, asked once per program run. A server reached over SSH is asked right away
 * and synchronously, before any resource is registered: an unknown host key, a refused login or
 * an unreachable host fails the run here, explained, with nothing changed. A local engine is the
 * machine's own architecture; its API version is asked at `docker:host`, else DOCKER_HOST.
 */
export function useEngine(engine: { host?: string; ssh?: SshTarget }): EngineFacts | undefined {
    if (engine.ssh) {
        const [apiVersion, arch] = runOverSsh(
            engine.ssh,
            ["docker version --format '{{.Server.APIVersion}} {{.Server.Arch}}'"],
            "asking the server's Docker engine (docker version)",
        )
            .trim()
            .split(/\s+/);
        const facts = { apiVersion, arch };
        stackEngine = { arch, facts: Promise.resolve(facts) };
        return facts;
    }
    stackEngine = localEngine(engine.host ?? process.env.DOCKER_HOST);
    return undefined;
}

function localEngine(host: string | undefined) {
    return { arch: localArch(), facts: dockerApiVersion(host).then((apiVersion) => ({ apiVersion, arch: localArch() })) };
}

function engineFacts(): Promise<EngineFacts> {
    stackEngine ??= localEngine(process.env.DOCKER_HOST);
    return stackEngine.facts;
}

/**
 * Whether the engine runs healthchecks at a start interval during the start period. Older engines
 * ignore the field and read it back as 0s, which the next preview would show as a change (and a
 * replacement), so it is only set where it is supported.
 */
export async function engineSupportsStartInterval(): Promise<boolean> {
    return apiAtLeast((await engineFacts()).apiVersion, startIntervalApiVersion);
}

/**
 * The platform images are built for: the engine's. A plain value (an Output in `build` gives a
 * permanent diff), so a server's is known from `useEngine`, and a local engine's is this machine's.
 * Left unset, the provider warns on every `pulumi up` that it assumed linux/amd64.
 */
export function buildPlatform(): string {
    return `linux/${stackEngine?.arch ?? localArch()}`;
}
