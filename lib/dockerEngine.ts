// What the Docker engine the stack deploys to can do. The docker provider talks to its `docker:host`
// config, else DOCKER_HOST, else the default socket; this asks the same engine. No Pulumi import:
// the user commands ask the engine through this module too, and start faster without the SDK.
import * as http from "node:http";

/** The first Docker API version whose healthchecks take a start interval (Docker 25). */
export const startIntervalApiVersion = "1.44";

/** Where the docker provider connects: a unix socket path, or an http base URL (tcp://). */
export function engineAddress(dockerHost = process.env.DOCKER_HOST): { socketPath: string } | { url: string } | undefined {
    if (!dockerHost) return { socketPath: "/var/run/docker.sock" };
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

let startIntervalSupport: Promise<boolean> | undefined;

/**
 * Whether the engine runs healthchecks at a start interval during the start period. Older engines
 * ignore the field and read it back as 0s, which the next preview would show as a change (and a
 * replacement), so it is only set where it is supported. Asked once per program run, at
 * `dockerHost` (the stack's `docker:host`), else DOCKER_HOST.
 */
export function engineSupportsStartInterval(dockerHost: string | undefined): Promise<boolean> {
    startIntervalSupport ??= dockerApiVersion(dockerHost ?? process.env.DOCKER_HOST).then((version) =>
        apiAtLeast(version, startIntervalApiVersion),
    );
    return startIntervalSupport;
}
