// The end-to-end suite's test "server": a second Docker engine on this machine that the suite can
// reach only as it would reach a VPS, over SSH as `deploy`. scripts/test-server.sh makes it: its
// own network namespace, containerd, data root and /etc/docker, and a private mount namespace
// whose root is an overlay of the host's, without the checkout or the host's docker.sock. It
// reaches the package mirrors through the host's NAT, and none of the host's own services.
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const name = "vpe-test-server";
const runDir = `/run/${name}`;
const dataDir = `/var/lib/${name}`;
const script = path.resolve(__dirname, "..", "..", "scripts", "test-server.sh");

/** BuildKit works only with Debian's client here. */
export const localDocker = fs.existsSync("/usr/bin/docker") ? "/usr/bin/docker" : "docker";

export interface TestServer {
    /** The server's IPv4 address, on its side of the veth pair. */
    address: string;
    user: "deploy";
    /** What `docker:host` names: `ssh://deploy@<address>`. */
    dockerHost: string;
    /** What `docker:sshOpts` names: batch mode, the pinned host key, the generated identity only. */
    sshOpts: string[];
    /** `sshOpts` and a connection shared by a run's sessions, as Pulumi.server.yaml ships them. */
    sharedSshOpts: string[];
    knownHostsFile: string;
    identityFile: string;
    /** The server engine's socket, for the test's own inspection and image loading (never the program's). */
    socket: string;
    /** sshd's log (LogLevel VERBOSE), each line prefixed with the epoch seconds it was written. */
    sshdLog: string;
    dockerdLog: string;
    /**
     * Runs a command on the server over SSH; each argument reaches the remote shell quoted as one
     * word. Refuses once the server is removed: its address would then go to the default route.
     */
    ssh(args: string[], options?: RunOptions): string;
    /** The local docker CLI against the server engine's socket. */
    docker(args: string[], options?: RunOptions): string;
    /** `docker save` on the local engine piped into the server's `docker load`: no registry is reachable. */
    loadImages(names: string[], timeoutMs?: number): Promise<void>;
    stopSshd(): void;
    startSshd(): Promise<void>;
    /** The most SSH connections open at once since `since`, from sshd's log. */
    maxConcurrentSessions(since: Date): number;
    /** Kills every open SSH session to the server (sshd keeps listening): a cut connection. Returns how many. */
    cutSessions(): number;
}

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

function testServerScript(command: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
        const child = spawn("bash", [script, command], { stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        child.stderr.on("data", (chunk) => (stderr += chunk));
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        child.on("error", reject);
        child.on("close", (status) => {
            clearTimeout(timer);
            if (status === 0) resolve();
            else reject(new CommandError(`scripts/test-server.sh ${command}`, status, "", stderr));
        });
    });
}

const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

/** The server engine's docker CLI environment: its socket, whatever the caller's DOCKER_HOST or context. */
function serverDockerEnv(socket: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
    const result: NodeJS.ProcessEnv = { ...env, DOCKER_HOST: `unix://${socket}` };
    delete result.DOCKER_CONTEXT;
    return result;
}

// sshd's VERBOSE lines that end a connection, by the client's port; "Connection from" opens one.
const connectionEnd = /^(Connection closed by|Connection reset by|Disconnected from|Received disconnect from|Closing connection to|Close session:|Timeout before authentication)/;

export function countMaxConcurrent(log: string, since: Date): number {
    const open = new Set<string>();
    let max = 0;
    for (const line of log.split("\n")) {
        const match = /^(\d+\.\d+) (.*)$/.exec(line);
        if (!match || Number(match[1]) * 1000 < since.getTime()) continue;
        const message = match[2];
        const port = /\bport (\d+)/.exec(message)?.[1];
        if (!port) continue;
        if (message.startsWith("Connection from ")) {
            open.add(port);
            max = Math.max(max, open.size);
        } else if (connectionEnd.test(message)) {
            open.delete(port);
        }
    }
    return max;
}

function makeServer(): TestServer {
    const address = "10.213.0.2";
    const knownHostsFile = `${runDir}/client/known_hosts`;
    const identityFile = `${runDir}/client/id_ed25519`;
    const socket = `${runDir}/docker.sock`;
    const sshdLog = `${runDir}/sshd.log`;
    const sshOpts = [
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=yes",
        "-o", `UserKnownHostsFile=${knownHostsFile}`,
        "-o", "IdentitiesOnly=yes",
        "-i", identityFile,
    ];
    return {
        address,
        user: "deploy",
        dockerHost: `ssh://deploy@${address}`,
        sshOpts,
        sharedSshOpts: [...sshOpts, "-o", "ControlMaster=auto", "-o", `ControlPath=${runDir}/client/mux-%C`, "-o", "ControlPersist=60"],
        knownHostsFile,
        identityFile,
        socket,
        sshdLog,
        dockerdLog: `${runDir}/dockerd.log`,
        ssh: (args, options) => {
            // Without its veth, the address would be routed to the default gateway: never send it there.
            if (!fs.existsSync("/sys/class/net/vpe-ts0")) throw new Error(`the test server is not running: not connecting to ${address}`);
            return run("ssh", [...sshOpts, "--", `deploy@${address}`, args.map(quote).join(" ")], options);
        },
        docker: (args, options = {}) => run(localDocker, args, { ...options, env: serverDockerEnv(socket, options.env) }),
        loadImages: (names, timeoutMs = 30 * 60_000) => pipeImages(names, socket, timeoutMs),
        stopSshd: () => void run("bash", [script, "sshd-stop"], { timeoutMs: 20_000 }),
        startSshd: () => testServerScript("sshd-start", 60_000),
        maxConcurrentSessions: (since) => countMaxConcurrent(fs.readFileSync(sshdLog, "utf8"), since),
        cutSessions: () => {
            const pids = run("ip", ["netns", "pids", name]).split("\n").filter(Boolean);
            const sessions = pids.filter((pid) => {
                try {
                    return /^sshd: deploy/.test(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8"));
                } catch {
                    return false; // gone meanwhile
                }
            });
            for (const pid of sessions) spawnSync("kill", ["-9", pid]);
            return sessions.length;
        },
    };
}

function pipeImages(names: string[], socket: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
        const save = spawn(localDocker, ["save", ...names], { stdio: ["ignore", "pipe", "pipe"] });
        const load = spawn(localDocker, ["load", "--quiet"], { stdio: ["pipe", "ignore", "pipe"], env: serverDockerEnv(socket) });
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
            if (failed) reject(new Error(`loading ${names.join(" ")} onto the test server failed: ${errors.join("").trim()}`));
            else resolve();
        };
        for (const child of [save, load]) {
            child.on("error", (err) => errors.push(`${err}`));
            child.on("close", done);
        }
    });
}

/** Brings up a fresh test server, first removing whatever a previous run left (installs what it needs with apt). */
export async function startTestServer(): Promise<TestServer> {
    if (process.getuid?.() !== 0) throw new Error("the test server needs root (namespaces, a second dockerd)");
    try {
        await testServerScript("up", 20 * 60_000);
    } catch (err) {
        await removeTestServer(); // the error carries the logs' tails
        throw err;
    }
    return makeServer();
}

/** Removes the test server and everything it made, also a killed run's: processes, netns, veth, iptables rules, directories, cgroups. */
export async function removeTestServer(): Promise<void> {
    await testServerScript("down", 120_000);
}

/** What of a test server exists on this machine, by kind; all empty once it is removed. */
export function testServerLeftovers(): Record<"netns" | "links" | "processes" | "iptables" | "mounts" | "dirs" | "cgroups", string[]> {
    const output = (file: string, args: string[]) => spawnSync(file, args, { encoding: "utf8" }).stdout ?? "";
    const read = (file: string) => {
        try {
            return fs.readFileSync(file, "utf8");
        } catch {
            return "";
        }
    };
    const cgroupPattern = new RegExp(`:/${name}(/|$)`, "m");
    const processes: string[] = [];
    for (const pid of fs.readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))) {
        if (Number(pid) === process.pid) continue;
        const stat = read(`/proc/${pid}/stat`);
        if (!stat || stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
        const cmdline = read(`/proc/${pid}/cmdline`).replace(/\0/g, " ").trim();
        if (cmdline.includes(name) || cgroupPattern.test(read(`/proc/${pid}/cgroup`))) processes.push(`${pid} ${cmdline}`);
    }
    const cgroupRoots = ["/sys/fs/cgroup", ...fs.readdirSync("/sys/fs/cgroup").map((entry) => `/sys/fs/cgroup/${entry}`)];
    return {
        netns: output("ip", ["netns", "list"]).split("\n").filter((line) => line.split(" ")[0] === name),
        links: ["vpe-ts0", "vpe-ts1"].filter((link) => spawnSync("ip", ["link", "show", link], { stdio: "ignore" }).status === 0),
        processes,
        iptables: ["filter", "nat"].flatMap((table) =>
            output("iptables", ["-t", table, "-S"]).split("\n").filter((rule) => rule.includes(name)).map((rule) => `${table}: ${rule}`),
        ),
        mounts: read("/proc/self/mountinfo").split("\n").filter((line) => line.includes(name)),
        dirs: [runDir, dataDir].filter((dir) => fs.existsSync(dir)),
        cgroups: cgroupRoots.map((root) => `${root}/${name}`).filter((dir) => fs.existsSync(dir)),
    };
}
