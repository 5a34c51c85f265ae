// A small Docker Engine API client over the unix socket: one HTTP request per call, no CLI
// process per operation, so a deployment of a dozen containers stays fast. A server's engine
// (`ssh://`) is reached through one SSH connection forwarding its socket to a local one.
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { defaultDockerSocket as defaultSocket } from "../../lib/dockerEngine";
import { openTunnel, parseSshUrl } from "../../lib/ssh";


export class DockerApiError extends Error {
    constructor(
        readonly status: number,
        readonly path: string,
        message: string,
    ) {
        super(`docker ${path}: HTTP ${status}: ${message}`);
        this.name = "DockerApiError";
    }
}

export interface RequestOptions {
    method?: string;
    query?: Record<string, string | number | boolean | undefined>;
    body?: unknown;
    /** A binary request body (e.g. a tar archive), sent as is instead of `body`'s JSON. */
    rawBody?: Buffer;
    /** Content-Type of `rawBody`. */
    contentType?: string;
    /** Milliseconds; the request is aborted after it. */
    timeoutMs?: number;
}

/** The server's socket, forwarded once per harness run and host. */
const forwarded = new Map<string, Promise<string>>();

function forwardedSocket(host: string, sshOpts: string[]): Promise<string> {
    let socket = forwarded.get(host);
    if (socket === undefined) {
        const parsed = parseSshUrl(host);
        if ("problem" in parsed) throw new Error(`docker host ${host}: ${parsed.problem}`);
        const local = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "vpe-harness-ssh-")), "docker.sock");
        socket = openTunnel({ ...parsed.target, options: sshOpts }, [{ localSocket: local, remoteSocket: defaultSocket }]).then(() => local);
        forwarded.set(host, socket);
    }
    return socket;
}

function socketPath(host: string | undefined, sshOpts: string[]): Promise<string> {
    const value = host ?? process.env.DOCKER_HOST;
    if (value === undefined || value === "") {
        return Promise.resolve(defaultSocket);
    }
    if (value.startsWith("ssh://")) {
        return forwardedSocket(value, sshOpts);
    }
    if (!value.startsWith("unix://")) {
        throw new Error(`docker host ${value}: only unix:// sockets and ssh:// servers are supported by the harness`);
    }
    return Promise.resolve(value.slice("unix://".length));
}

export class DockerApi {
    private readonly socket: Promise<string>;

    constructor(host?: string, sshOpts: string[] = []) {
        this.socket = socketPath(host, sshOpts);
    }

    /** The engine's socket on this machine (a server's, forwarded), for the docker CLI. */
    socketPath(): Promise<string> {
        return this.socket;
    }

    async raw(path: string, options: RequestOptions = {}): Promise<{ status: number; body: Buffer }> {
        const socketPath = await this.socket;
        const query = Object.entries(options.query ?? {})
            .filter(([, v]) => v !== undefined)
            .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
            .join("&");
        const payload = options.rawBody ?? (options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body)));
        const contentType = options.rawBody ? (options.contentType ?? "application/octet-stream") : "application/json";
        return new Promise((resolve, reject) => {
            const req = http.request(
                {
                    socketPath,
                    path: query === "" ? path : `${path}?${query}`,
                    method: options.method ?? "GET",
                    headers: payload
                        ? { "Content-Type": contentType, "Content-Length": payload.length }
                        : {},
                    timeout: options.timeoutMs,
                },
                (res) => {
                    const chunks: Buffer[] = [];
                    res.on("data", (c: Buffer) => chunks.push(c));
                    res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
                    res.on("error", reject);
                },
            );
            req.on("timeout", () => req.destroy(new Error(`docker ${path}: timed out after ${options.timeoutMs} ms`)));
            req.on("error", reject);
            req.end(payload);
        });
    }

    /** JSON request; throws DockerApiError on a non-2xx status. */
    async call<T = Record<string, unknown>>(path: string, options: RequestOptions = {}): Promise<T> {
        const { status, body } = await this.raw(path, options);
        const text = body.toString("utf8");
        if (status < 200 || status >= 300) {
            let message = text;
            try {
                message = (JSON.parse(text) as { message?: string }).message ?? text;
            } catch {
                // Not JSON: keep the text as it is.
            }
            throw new DockerApiError(status, path, message.trim());
        }
        return (text === "" ? {} : JSON.parse(text)) as T;
    }

    /** Like call, but a 404 yields undefined (the object is gone). */
    async find<T = Record<string, unknown>>(path: string): Promise<T | undefined> {
        try {
            return await this.call<T>(path);
        } catch (err) {
            if (err instanceof DockerApiError && err.status === 404) {
                return undefined;
            }
            throw err;
        }
    }

    /** Container logs, demultiplexed (non-TTY containers frame stdout/stderr in 8-byte headers). */
    async logs(id: string, tty: boolean): Promise<string> {
        const { status, body } = await this.raw(`/containers/${id}/logs`, {
            query: { stdout: true, stderr: true },
        });
        if (status !== 200) {
            throw new DockerApiError(status, `/containers/${id}/logs`, body.toString("utf8"));
        }
        return tty ? body.toString("utf8") : demultiplex(body);
    }
}

export function demultiplex(frames: Buffer): string {
    const parts: Buffer[] = [];
    let offset = 0;
    while (offset + 8 <= frames.length) {
        const size = frames.readUInt32BE(offset + 4);
        parts.push(frames.subarray(offset + 8, offset + 8 + size));
        offset += 8 + size;
    }
    return Buffer.concat(parts).toString("utf8");
}
