// The Docker engine as the commands use it: its Engine API for quick questions (inspect, exec,
// logs, disk use), the `docker` CLI for long operations whose output the user watches (backup,
// restore). Both reach the engine DOCKER_HOST names, else the default socket.
import { spawn } from "node:child_process";
import { type EngineReply, engineRequest } from "../lib/dockerEngine";

export interface Ran {
    code: number;
    stdout: string;
    stderr: string;
}

/** Runs `docker ARGS`; with `echo`, its output also streams to this process's as it comes. */
export function docker(args: readonly string[], options: { echo?: boolean } = {}): Promise<Ran> {
    return new Promise((resolve, reject) => {
        const child = spawn("docker", args, { stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
            stdout += chunk;
            if (options.echo) process.stdout.write(chunk);
        });
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
            stderr += chunk;
            if (options.echo) process.stderr.write(chunk);
        });
        child.on("error", (err: NodeJS.ErrnoException) =>
            reject(err.code === "ENOENT" ? new Error("the docker CLI is required and is not on PATH") : err),
        );
        child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
}

/** Like `docker`, but a non-zero exit is an error quoting what the command printed. */
export async function dockerOk(args: readonly string[], options: { echo?: boolean } = {}): Promise<string> {
    const ran = await docker(args, options);
    if (ran.code !== 0) {
        throw new Error(`docker ${args.slice(0, 2).join(" ")} failed (exit ${ran.code}): ${(ran.stderr || ran.stdout).trim()}`);
    }
    return ran.stdout;
}

/** The reply's JSON body; an engine error (status >= 300) as an Error with its message. */
export function engineJson(reply: EngineReply, what: string): unknown {
    const text = reply.body.toString("utf8");
    if (reply.status >= 300) {
        let message = text.trim();
        try {
            message = (JSON.parse(text) as { message?: string }).message ?? message;
        } catch {
            // not JSON: the text itself
        }
        throw new Error(`Docker engine: ${what}: ${reply.status} ${message}`);
    }
    return text === "" ? {} : JSON.parse(text);
}

/** Runs `cmd` in a running container through the exec endpoints; its exit code and output. */
export async function exec(container: string, cmd: string[], signal?: AbortSignal): Promise<{ exitCode: number; stdout: string; output: string }> {
    const what = `exec ${cmd.join(" ")} in ${container}`;
    const created = engineJson(
        await engineRequest("POST", `/containers/${encodeURIComponent(container)}/exec`, signal, { Cmd: cmd, AttachStdout: true, AttachStderr: true }),
        what,
    ) as { Id: string };
    const started = await engineRequest("POST", `/exec/${created.Id}/start`, signal, { Detach: false, Tty: false });
    if (started.status !== 200) engineJson(started, what);
    const streams = demultiplex(started.body);
    // The stream ends as the process does; the engine may record its exit code a moment later.
    for (;;) {
        const info = engineJson(await engineRequest("GET", `/exec/${created.Id}/json`, signal), what) as { Running: boolean; ExitCode: number | null };
        if (!info.Running && info.ExitCode !== null) return { exitCode: info.ExitCode, stdout: streams.stdout, output: streams.combined };
        await new Promise((resolve) => setTimeout(resolve, 20));
    }
}

/**
 * Docker's multiplexed stream (logs and exec of a container without a TTY): frames of an 8-byte
 * header (stream: 0 stdin, 1 stdout, 2 stderr; three zero bytes; payload size, 32-bit big-endian)
 * and the payload. A truncated last frame keeps what arrived; bytes that are not a frame header
 * are taken as raw output.
 */
export function demultiplex(data: Buffer): { stdout: string; stderr: string; combined: string } {
    const parts: { stdout: Buffer[]; stderr: Buffer[]; combined: Buffer[] } = { stdout: [], stderr: [], combined: [] };
    let offset = 0;
    while (offset < data.length) {
        const stream = data[offset];
        if (data.length - offset < 8 || stream > 2 || data[offset + 1] !== 0 || data[offset + 2] !== 0 || data[offset + 3] !== 0) {
            parts.combined.push(data.subarray(offset));
            parts.stdout.push(data.subarray(offset));
            break;
        }
        const size = data.readUInt32BE(offset + 4);
        const payload = data.subarray(offset + 8, offset + 8 + size);
        (stream === 2 ? parts.stderr : parts.stdout).push(payload);
        parts.combined.push(payload);
        offset += 8 + size;
    }
    const text = (buffers: Buffer[]) => Buffer.concat(buffers).toString("utf8");
    return { stdout: text(parts.stdout), stderr: text(parts.stderr), combined: text(parts.combined) };
}
