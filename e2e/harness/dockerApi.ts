// A small Docker Engine API client over the unix socket: one HTTP request per call, no CLI
// process per operation, so a deployment of a dozen containers stays fast.
import * as http from "node:http";

const defaultSocket = "/var/run/docker.sock";

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

function socketPath(host: string | undefined): string {
    const value = host ?? process.env.DOCKER_HOST;
    if (value === undefined || value === "") {
        return defaultSocket;
    }
    if (!value.startsWith("unix://")) {
        throw new Error(`docker host ${value}: only unix:// sockets are supported by the harness`);
    }
    return value.slice("unix://".length);
}

export class DockerApi {
    private readonly socket: string;

    constructor(host?: string) {
        this.socket = socketPath(host);
    }

    raw(path: string, options: RequestOptions = {}): Promise<{ status: number; body: Buffer }> {
        const query = Object.entries(options.query ?? {})
            .filter(([, v]) => v !== undefined)
            .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
            .join("&");
        const payload = options.rawBody ?? (options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body)));
        const contentType = options.rawBody ? (options.contentType ?? "application/octet-stream") : "application/json";
        return new Promise((resolve, reject) => {
            const req = http.request(
                {
                    socketPath: this.socket,
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
