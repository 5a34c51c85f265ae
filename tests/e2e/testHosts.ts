// What the suite's test hosts (scripts/test-server.sh, scripts/test-swarm.sh) share on this side:
// running their scripts and commands with bounds, reaching a host engine's socket, loading images
// onto it without a registry, and finding what a host left on this machine.
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** BuildKit works only with Debian's client here. */
export const localDocker = fs.existsSync("/usr/bin/docker") ? "/usr/bin/docker" : "docker";

export interface RunOptions {
    input?: string;
    timeoutMs?: number;
    env?: NodeJS.ProcessEnv;
}

export class CommandError extends Error {
    constructor(readonly command: string, readonly status: number | null, readonly stdout: string, readonly stderr: string) {
        super(`${command}: ${status === null ? "killed (timeout?)" : `exit ${status}`}: ${stderr.trim() || stdout.trim().slice(-2000)}`);
    }
}

/** Runs a program to its end (bounded by timeoutMs) and returns its stdout, trimmed; throws CommandError. */
export function run(file: string, args: string[], options: RunOptions = {}): string {
    const result = spawnSync(file, args, {
        encoding: "utf8",
        input: options.input,
        env: options.env,
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
    });
    if (result.error && result.status === null && !result.signal) throw result.error;
    if (result.status !== 0) throw new CommandError([file, ...args].join(" "), result.status, result.stdout ?? "", result.stderr ?? "");
    return result.stdout.trim();
}

/** The path of scripts/<script>. */
export const scriptPath = (script: string) => path.resolve(__dirname, "..", "..", "scripts", script);

/** Runs scripts/<script> with its arguments, killed after timeoutMs; rejects with its stderr. */
export function runScript(script: string, args: string[], timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
        const child = spawn("bash", [scriptPath(script), ...args], { stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        child.stderr.on("data", (chunk) => (stderr += chunk));
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        child.on("error", reject);
        child.on("close", (status) => {
            clearTimeout(timer);
            if (status === 0) resolve();
            else reject(new CommandError(`scripts/${script} ${args.join(" ")}`, status, "", stderr));
        });
    });
}

/**
 * Runs `scripts/<script> up` as root and returns `make()`; a failed bring-up is removed again with
 * `down` (its error carries the logs' tails).
 */
export async function bringUp<T>(script: string, what: string, make: () => T): Promise<T> {
    if (process.getuid?.() !== 0) throw new Error(`${what} needs root (network and mount namespaces, more dockerds)`);
    try {
        await runScript(script, ["up"], 20 * 60_000);
    } catch (err) {
        await runScript(script, ["down"], 180_000);
        throw err;
    }
    return make();
}

/** A docker CLI environment for an engine's socket, whatever the caller's DOCKER_HOST or context. */
export function engineDockerEnv(socket: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
    const result: NodeJS.ProcessEnv = { ...env, DOCKER_HOST: `unix://${socket}` };
    delete result.DOCKER_CONTEXT;
    return result;
}

/** `docker save` on the local engine piped into `docker load` on the engine at `socket`. */
export function pipeImages(names: string[], socket: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
        const save = spawn(localDocker, ["save", ...names], { stdio: ["ignore", "pipe", "pipe"] });
        const load = spawn(localDocker, ["load", "--quiet"], { stdio: ["pipe", "ignore", "pipe"], env: engineDockerEnv(socket) });
        save.stdout.pipe(load.stdin);
        const errors: string[] = [];
        save.stderr.on("data", (chunk) => errors.push(`save: ${chunk}`));
        load.stderr.on("data", (chunk) => errors.push(`load: ${chunk}`));
        const timer = setTimeout(() => {
            errors.push(`killed after ${timeoutMs} ms`);
            save.kill("SIGKILL");
            load.kill("SIGKILL");
        }, timeoutMs);
        let pending = 2;
        let failed = false;
        const done = (status: number | null) => {
            failed ||= status !== 0;
            if (--pending > 0) return;
            clearTimeout(timer);
            if (failed) reject(new Error(`loading ${names.join(" ")} onto ${socket} failed: ${errors.join("").trim()}`));
            else resolve();
        };
        for (const child of [save, load]) {
            child.on("error", (err) => errors.push(`${err}`));
            child.on("close", done);
        }
    });
}

export type Leftovers = Record<"netns" | "links" | "processes" | "iptables" | "mounts" | "dirs" | "cgroups", string[]>;

/**
 * What test hosts left on this machine, by kind; all empty once they are removed. `names` are the
 * hosts' names (netns, cgroup parents, words in command lines and mounts), `tag` their iptables
 * comment, `links` and `dirs` what else they made.
 */
export function hostLeftovers(names: string[], tag: string, links: string[], dirs: string[]): Leftovers {
    const output = (file: string, args: string[]) => spawnSync(file, args, { encoding: "utf8" }).stdout ?? "";
    const read = (file: string) => {
        try {
            return fs.readFileSync(file, "utf8");
        } catch {
            return "";
        }
    };
    const ours = (text: string) => names.some((name) => text.includes(name));
    const cgroupPatterns = names.map((name) => new RegExp(`:/${name}(/|$)`, "m"));
    const processes: string[] = [];
    for (const pid of fs.readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))) {
        if (Number(pid) === process.pid) continue;
        const stat = read(`/proc/${pid}/stat`);
        if (!stat || stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
        const cmdline = read(`/proc/${pid}/cmdline`).replace(/\0/g, " ").trim();
        const cgroup = read(`/proc/${pid}/cgroup`);
        if (ours(cmdline) || cgroupPatterns.some((pattern) => pattern.test(cgroup))) processes.push(`${pid} ${cmdline}`);
    }
    const cgroupRoots = ["/sys/fs/cgroup", ...fs.readdirSync("/sys/fs/cgroup").map((entry) => `/sys/fs/cgroup/${entry}`)];
    return {
        netns: output("ip", ["netns", "list"]).split("\n").filter((line) => names.includes(line.split(" ")[0])),
        links: links.filter((link) => spawnSync("ip", ["link", "show", link], { stdio: "ignore" }).status === 0),
        processes,
        iptables: ["filter", "nat"].flatMap((table) =>
            output("iptables", ["-t", table, "-S"]).split("\n").filter((rule) => rule.includes(tag)).map((rule) => `${table}: ${rule}`),
        ),
        mounts: read("/proc/self/mountinfo").split("\n").filter(ours),
        dirs: dirs.filter((dir) => fs.existsSync(dir)),
        cgroups: cgroupRoots.flatMap((root) => names.map((name) => `${root}/${name}`)).filter((dir) => fs.existsSync(dir)),
    };
}
