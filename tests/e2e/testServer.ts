// The end-to-end suite's test "server": a second Docker engine on this machine that the suite can
// reach only as it would reach a VPS, over SSH as `deploy`. scripts/test-server.sh makes it: its
// own network namespace, containerd, data root and /etc/docker, and a private mount namespace
// whose root is an overlay of the host's, without the checkout or the host's docker.sock. It
// reaches the package mirrors through the host's NAT, and none of the host's own services.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { bringUp, engineDockerEnv, hostLeftovers, type Leftovers, localDocker, pipeImages, run, runScript, scriptPath, type RunOptions } from "./testHosts";

export { CommandError, localDocker, run, type RunOptions } from "./testHosts";

const name = "vpe-test-server";
const runDir = `/run/${name}`;
const dataDir = `/var/lib/${name}`;
const script = "test-server.sh";

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

const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

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
        docker: (args, options = {}) => run(localDocker, args, { ...options, env: engineDockerEnv(socket, options.env) }),
        loadImages: (names, timeoutMs = 30 * 60_000) => pipeImages(names, socket, timeoutMs),
        stopSshd: () => void run("bash", [scriptPath(script), "sshd-stop"], { timeoutMs: 20_000 }),
        startSshd: () => runScript(script, ["sshd-start"], 60_000),
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

/** Brings up a fresh test server, first removing whatever a previous run left (installs what it needs with apt). */
export function startTestServer(): Promise<TestServer> {
    return bringUp(script, "the test server", makeServer);
}

/** Removes the test server and everything it made, also a killed run's: processes, netns, veth, iptables rules, directories, cgroups. */
export async function removeTestServer(): Promise<void> {
    await runScript(script, ["down"], 120_000);
}

/** What of a test server exists on this machine, by kind; all empty once it is removed. */
export function testServerLeftovers(): Leftovers {
    return hostLeftovers([name], name, ["vpe-ts0", "vpe-ts1"], [runDir, dataDir]);
}
