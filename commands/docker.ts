// The Docker CLI as the commands use it: the engine the user's `docker` talks to (DOCKER_HOST).
import { spawn } from "node:child_process";

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
