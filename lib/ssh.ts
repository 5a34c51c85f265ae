// SSH to the server a stack deploys to, used strictly: the docker provider's own `ssh` runs with
// the stack's `docker:sshOpts`, and so does everything here (the program's preflight and its
// PostgreSQL tunnel, the user commands). No Pulumi import: the commands load this too.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";

/** `docker:host: ssh://[user@]host[:port]` and `docker:sshOpts`. */
export interface SshTarget {
    /** The URL as given, for messages. */
    url: string;
    user?: string;
    host: string;
    port?: number;
    /** ssh arguments, as the stack file gives them (`docker:sshOpts`). */
    options: string[];
}

const hostname = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const ipv4 = /^(\d{1,3})(\.\d{1,3}){3}$/;

/** The target of an `ssh://` docker host, or a problem naming what is wrong with it. */
export function parseSshUrl(url: string): { target: Omit<SshTarget, "options"> } | { problem: string } {
    const match = /^ssh:\/\/(?:([a-z_][a-z0-9_.-]*)@)?(\[[0-9a-f:]+\]|[^:/@[\]]+)(?::(\d+))?\/?$/i.exec(url);
    if (!match) return { problem: "must be ssh://user@host or ssh://user@host:port" };
    const [, user, rawHost, rawPort] = match;
    const host = rawHost.replace(/^\[|\]$/g, "");
    if (!rawHost.startsWith("[") && !hostname.test(host) && !ipv4.test(host)) {
        return { problem: `${JSON.stringify(host)} is not a host name or address: set your server's (ssh://user@host[:port])` };
    }
    const port = rawPort === undefined ? undefined : Number(rawPort);
    if (port !== undefined && (port < 1 || port > 65535)) return { problem: `port ${rawPort} is not a TCP port` };
    return { target: { url, user, host, port } };
}

/** `-o Key=value` options of an ssh argument list, keys lower-cased as ssh reads them. */
export function sshOptionValues(options: readonly string[]): Map<string, string> {
    const values = new Map<string, string>();
    for (let i = 0; i < options.length; i++) {
        const arg = options[i];
        const text = arg === "-o" ? options[++i] : arg.startsWith("-o") ? arg.slice(2) : undefined;
        const option = text === undefined ? undefined : /^\s*([A-Za-z]+)\s*[= ]\s*(.*?)\s*$/.exec(text);
        // ssh keeps the first value it reads for an option.
        if (option && !values.has(option[1].toLowerCase())) values.set(option[1].toLowerCase(), option[2]);
    }
    return values;
}

/**
 * What `docker:sshOpts` lacks for strict use: no prompt (nothing could answer it), and the
 * server's host key checked against a pinned known-hosts file, never trusted on first use.
 */
export function sshOptionProblems(options: readonly string[]): string[] {
    const values = sshOptionValues(options);
    const problems: string[] = [];
    if (values.get("batchmode")?.toLowerCase() !== "yes") {
        problems.push('must include "-o", "BatchMode=yes": a password or passphrase prompt cannot be answered during an update');
    }
    const strict = values.get("stricthostkeychecking")?.toLowerCase();
    if (strict !== "yes") {
        problems.push(
            `must include "-o", "StrictHostKeyChecking=yes"${strict === undefined ? "" : ` (not ${values.get("stricthostkeychecking")})`}: the server's host key is checked, never accepted unseen`,
        );
    }
    const knownHosts = values.get("userknownhostsfile");
    if (knownHosts === undefined) {
        problems.push('must include "-o", "UserKnownHostsFile=<file>": the known-hosts file holding the server\'s host key');
    } else if (!fs.existsSync(knownHosts.replace(/^~(?=\/)/, process.env.HOME ?? "~"))) {
        problems.push(`UserKnownHostsFile ${knownHosts} does not exist: write the server's host key there (ssh-keyscan, checked against the server's fingerprint)`);
    }
    return problems;
}

/** Seconds ssh waits for the server before giving up, unless the stack's options say otherwise. */
export const connectTimeoutSeconds = 10;

/** ssh's arguments for `target`, then `rest` (a command, or -N and forwards). */
export function sshArgs(target: SshTarget, rest: string[]): string[] {
    const values = sshOptionValues(target.options);
    const timeout = values.has("connecttimeout") ? [] : ["-o", `ConnectTimeout=${connectTimeoutSeconds}`];
    const port = target.port === undefined ? [] : ["-p", String(target.port)];
    const destination = target.user === undefined ? target.host : `${target.user}@${target.host}`;
    return [...target.options, ...timeout, ...port, "-T", destination, ...rest];
}

/** An SSH failure, explained: which host, and what to fix. */
export class SshError extends Error {
    constructor(target: SshTarget, what: string, stderr: string) {
        super(`${target.url}: ${what} failed: ${explainSshFailure(target, stderr)}`);
        this.name = "SshError";
    }
}

/** ssh's last words, turned into what the user should do. */
export function explainSshFailure(target: SshTarget, stderr: string): string {
    const said = stderr.trim().split("\n").filter(Boolean).slice(-3).join(" / ");
    const knownHosts = sshOptionValues(target.options).get("userknownhostsfile") ?? "the known-hosts file";
    const hints: [RegExp, string][] = [
        [/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed/i, `the server's host key changed: if the server was rebuilt, check its new fingerprint and replace its line in ${knownHosts}`],
        [/Host key verification failed|No .* host key is known/i, `the server's host key is not in ${knownHosts} (or does not match it): add the key after checking its fingerprint on the server`],
        [/Permission denied/i, `the login was refused: check the user in docker:host, the key given with -i in docker:sshOpts, and the server's authorized_keys`],
        [/Connection refused/i, "nothing accepts SSH connections there: is sshd running on the server, and is the port right?"],
        [/timed out|No route to host|Network is unreachable/i, "the server could not be reached: check its address and the network path"],
        [/Could not resolve hostname|Name or service not known/i, "the host name does not resolve"],
        [/docker: (command )?not found|permission denied while trying to connect to the Docker daemon/i, "the SSH user cannot run docker on the server: install Docker there and add the user to the docker group"],
        [/Address already in use|cannot listen to port|Could not request local forwarding/i, "a local port of the tunnel is already taken on this machine (another stack?)"],
    ];
    const hint = hints.find(([pattern]) => pattern.test(stderr))?.[1];
    return hint === undefined ? `ssh said: ${said || "nothing"}` : `${hint} (ssh said: ${said})`;
}

/** Runs `command` on the server and returns its output; throws an SshError when it fails. */
export function runOverSsh(target: SshTarget, command: string[], what: string, timeoutMs = 30_000): string {
    const ran = spawnSync("ssh", sshArgs(target, ["--", ...command]), { encoding: "utf8", timeout: timeoutMs, stdio: ["ignore", "pipe", "pipe"] });
    if (ran.error) {
        const code = (ran.error as NodeJS.ErrnoException).code;
        throw new SshError(target, what, code === "ENOENT" ? "ssh: the OpenSSH client is not on PATH" : code === "ETIMEDOUT" ? `no answer within ${timeoutMs / 1000} s (timed out)` : ran.error.message);
    }
    if (ran.status !== 0) throw new SshError(target, what, ran.stderr || `exit ${ran.status}`);
    return ran.stdout;
}

/** A local listener forwarded to the server: a TCP port or a unix socket on this machine. */
export type Forward =
    | { localPort: number; remoteHost: string; remotePort: number }
    | { localSocket: string; remoteSocket: string };

export interface Tunnel {
    close(): void;
}

function forwardSpec(f: Forward): string {
    return "localPort" in f ? `127.0.0.1:${f.localPort}:${f.remoteHost}:${f.remotePort}` : `${f.localSocket}:${f.remoteSocket}`;
}

function accepts(f: Forward): Promise<boolean> {
    return new Promise((resolve) => {
        const socket = "localPort" in f ? net.connect(f.localPort, "127.0.0.1") : net.connect(f.localSocket);
        socket.once("connect", () => {
            socket.destroy();
            resolve(true);
        });
        socket.once("error", () => resolve(false));
    });
}

/**
 * One SSH connection carrying `forwards`, open until `close` (or this process's exit). Resolves
 * once every local end accepts connections; rejects, explained, when ssh exits first (a bad host
 * key, a refused login, a local port already taken: ExitOnForwardFailure).
 */
export async function openTunnel(target: SshTarget, forwards: Forward[], options: { keepProcessAlive?: boolean } = {}): Promise<Tunnel> {
    // A connection of its own, never a shared master's: through a master the forwards would be the
    // master's, outliving `close`, and this ssh would exit at once. ssh keeps an option's first value.
    const own = { ...target, options: ["-o", "ControlPath=none", ...target.options] };
    const args = sshArgs(own, ["-N", "-o", "ExitOnForwardFailure=yes", ...forwards.flatMap((f) => ["-L", forwardSpec(f)])]);
    const child: ChildProcess = spawn("ssh", args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const close = () => {
        if (child.exitCode === null && child.signalCode === null) child.kill();
    };
    process.once("exit", close);
    if (!options.keepProcessAlive) {
        // The tunnel must not keep a finished program running.
        child.unref();
        (child.stderr as unknown as net.Socket | null)?.unref();
    }
    const exited = new Promise<never>((_, reject) => {
        child.once("error", (err) => reject(new SshError(target, "the SSH tunnel", err.message)));
        child.once("exit", (code) => reject(new SshError(target, "the SSH tunnel", stderr || `ssh exited with code ${code}`)));
    });
    exited.catch(() => undefined);
    const deadline = Date.now() + (connectTimeoutSeconds + 5) * 1000;
    const ready = (async () => {
        while (Date.now() < deadline) {
            if (child.exitCode !== null) break;
            if ((await Promise.all(forwards.map(accepts))).every(Boolean)) return { close };
            await new Promise((resolve) => setTimeout(resolve, 50));
        }
        await new Promise((resolve) => setTimeout(resolve, 100)); // let an exit be reported first
        close();
        throw new SshError(target, "the SSH tunnel", stderr || `its forwards did not open within ${connectTimeoutSeconds + 5} s (timed out)`);
    })();
    return Promise.race([ready, exited]);
}

/** A TCP port on 127.0.0.1 free right now, for a forward's local end. */
export function freeLocalPort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as net.AddressInfo;
            server.close(() => resolve(port));
        });
    });
}
