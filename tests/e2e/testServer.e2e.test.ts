// The test server is what the suite deploys to "remotely": these checks are what make it a fair
// stand-in for a VPS. It must be another engine, reached only through sshd with a pinned host key,
// blind to the checkout, with its own loopback, able to build against Debian's mirror, failing fast
// the ways SSH fails, and gone without a trace when removed, also after a killed run.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { localDocker, removeTestServer, run, startTestServer, testServerLeftovers, TestServer } from "./testServer";

const repoRoot = path.resolve(__dirname, "..", "..");
const baseImage: string = JSON.parse(fs.readFileSync(path.join(repoRoot, "docker", "images.json"), "utf8")).debian;

const seconds = (since: number) => (Date.now() - since) / 1000;

/** How an ssh command fails: its stderr and how long it took, with a 10 s bound. */
function sshFailure(server: TestServer, options: string[]): { stderr: string; elapsed: number } {
    const start = Date.now();
    const result = spawnSync("ssh", [...options, "--", `deploy@${server.address}`, "true"], { encoding: "utf8", timeout: 10_000 });
    assert.notEqual(result.status, 0, "ssh was expected to fail");
    return { stderr: result.stderr, elapsed: seconds(start) };
}

function freeLocalPort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const probe = net.createServer().listen(0, "127.0.0.1", () => {
            const { port } = probe.address() as net.AddressInfo;
            probe.close(() => resolve(port));
        });
        probe.on("error", reject);
    });
}

function connectError(port: number): Promise<string | undefined> {
    return new Promise((resolve) => {
        const socket = net.connect({ host: "127.0.0.1", port, timeout: 5000 });
        socket.on("connect", () => (socket.destroy(), resolve(undefined)));
        socket.on("timeout", () => (socket.destroy(), resolve("timeout")));
        socket.on("error", (err: NodeJS.ErrnoException) => resolve(err.code));
    });
}

/** What a server port answers through `ssh -N -L` on a free local port. */
async function throughTunnel(server: TestServer, remotePort: number): Promise<string> {
    const localPort = await freeLocalPort();
    const forward = `127.0.0.1:${localPort}:127.0.0.1:${remotePort}`;
    const tunnel = spawn("ssh", [...server.sshOpts, "-N", "-o", "ExitOnForwardFailure=yes", "-L", forward, "--", `deploy@${server.address}`], { stdio: "ignore" });
    try {
        for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 200))) {
            const answer = await new Promise<string | undefined>((resolve) => {
                let data = "";
                const socket = net.connect({ host: "127.0.0.1", port: localPort, timeout: 5000 });
                socket.on("data", (chunk) => (data += chunk));
                socket.on("end", () => resolve(data.trim()));
                socket.on("error", () => resolve(undefined));
                socket.on("timeout", () => (socket.destroy(), resolve(undefined)));
            });
            if (answer) return answer;
        }
        return "";
    } finally {
        tunnel.kill();
    }
}

function sshConcurrently(server: TestServer, count: number, command: string[]): Promise<number[]> {
    return Promise.all(
        Array.from({ length: count }, () => new Promise<number>((resolve) => {
            const child = spawn("ssh", [...server.sshOpts, "--", `deploy@${server.address}`, ...command], { stdio: "ignore" });
            const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
            child.on("close", (status) => (clearTimeout(timer), resolve(status ?? -1)));
        })),
    );
}

const nothingLeft = { netns: [], links: [], processes: [], iptables: [], mounts: [], dirs: [], cgroups: [] };

describe("the test server", { timeout: 30 * 60_000 }, () => {
    let server: TestServer;
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-server-check-"));

    // `ip netns add` makes /run/netns when it is missing; removal takes it away again then.
    let hadRunNetns: boolean;

    before(async () => {
        await removeTestServer();
        hadRunNetns = fs.existsSync("/run/netns");
        const start = Date.now();
        server = await startTestServer();
        console.log(`startTestServer: ${seconds(start).toFixed(1)} s`);
    });
    after(async () => {
        await removeTestServer();
        fs.rmSync(work, { recursive: true, force: true });
    });

    it("is another engine, which deploy reaches over SSH, also through docker system dial-stdio", () => {
        const localId = run(localDocker, ["info", "--format", "{{.ID}}"]);
        const serverId = server.ssh(["docker", "info", "--format", "{{.ID}}"]);
        assert.match(serverId, /^[A-Z0-9]{4}(:[A-Z0-9]{4}){11}$/);
        assert.notEqual(serverId, localId);
        assert.equal(server.docker(["info", "--format", "{{.ID}}"]), serverId);
        assert.match(server.ssh(["id", "-nG"]), /\bdocker\b/);
        assert.equal(server.ssh(["id", "-un"]), "deploy");

        const ping = server.ssh(["docker", "system", "dial-stdio"], { input: "GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n" });
        assert.match(ping, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nOK$/);

        // docker/cli's own connection helper, as the provider uses it: ssh from PATH, given the
        // options through a wrapper since the CLI has no way to pass them.
        const bin = path.join(work, "bin");
        fs.mkdirSync(bin, { recursive: true });
        fs.writeFileSync(path.join(bin, "ssh"), `#!/bin/sh\nexec /usr/bin/ssh ${server.sshOpts.join(" ")} "$@"\n`, { mode: 0o755 });
        const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env.PATH}`, DOCKER_HOST: server.dockerHost };
        delete env.DOCKER_CONTEXT;
        assert.equal(run(localDocker, ["info", "--format", "{{.ID}}"], { env }), serverId);
    });

    it("forwards its default docker socket over ssh -L, as the harness reaches the engine", async () => {
        const local = path.join(work, "forwarded-docker.sock");
        const tunnel = spawn("ssh", [...server.sshOpts, "-N", "-o", "ExitOnForwardFailure=yes", "-L", `${local}:/var/run/docker.sock`, "--", `deploy@${server.address}`], { stdio: "ignore" });
        try {
            let info: { ID?: string } = {};
            for (const deadline = Date.now() + 10_000; !info.ID && Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 200))) {
                info = await new Promise((resolve) => {
                    const request = http.get({ socketPath: local, path: "/info", timeout: 5000 }, (response) => {
                        let body = "";
                        response.on("data", (chunk) => (body += chunk));
                        response.on("end", () => resolve(JSON.parse(body)));
                    });
                    request.on("error", () => resolve({}));
                    request.on("timeout", () => (request.destroy(), resolve({})));
                });
            }
            assert.equal(info.ID, server.docker(["info", "--format", "{{.ID}}"]));
        } finally {
            tunnel.kill();
        }
    });

    it("has a filesystem of its own, without the checkout, the local engine's socket or the client's key", () => {
        const visible = (file: string) => server.ssh(["sh", "-c", `test -e "$1" && echo seen || echo hidden`, "-", file]);
        assert.equal(visible("/etc/os-release"), "seen");
        assert.equal(visible(path.join(repoRoot, "package.json")), "hidden");
        if (fs.existsSync("/work")) assert.equal(server.ssh(["sh", "-c", "ls -A /work | wc -l"]), "0");
        assert.equal(visible(server.identityFile), "hidden");
        assert.equal(visible("/var/lib/docker/image"), "hidden");
        // /run/docker.sock is there, but is the server's own engine.
        assert.equal(server.ssh(["docker", "-H", "unix:///run/docker.sock", "info", "--format", "{{.DockerRootDir}}"]), "/var/lib/vpe-test-server/docker");
        assert.ok(!fs.readFileSync("/etc/passwd", "utf8").includes("\ndeploy:"), "deploy exists on the server only");
    });

    it("takes images from the local engine and builds on the server against Debian's mirror", async (t) => {
        let start = Date.now();
        const provided = spawnSync(path.join(repoRoot, "scripts", "provide-images.sh"), ["debian"], { stdio: ["ignore", "ignore", "inherit"], timeout: 15 * 60_000 });
        assert.equal(provided.status, 0, "scripts/provide-images.sh debian");
        t.diagnostic(`provide ${baseImage} locally: ${seconds(start).toFixed(1)} s`);
        const bytes = Number(run(localDocker, ["image", "inspect", "--format", "{{.Size}}", baseImage]));

        start = Date.now();
        await server.loadImages([baseImage]);
        const loadSeconds = seconds(start);
        t.diagnostic(`loadImages ${baseImage}: ${(bytes / 1e6).toFixed(0)} MB in ${loadSeconds.toFixed(1)} s (${(loadSeconds / (bytes / 1e9)).toFixed(0)} s/GB)`);
        assert.equal(server.docker(["image", "inspect", "--format", "{{.Id}}", baseImage]), run(localDocker, ["image", "inspect", "--format", "{{.Id}}", baseImage]));

        const context = path.join(work, "apt-context");
        fs.mkdirSync(context, { recursive: true });
        fs.writeFileSync(path.join(context, "Dockerfile"), `FROM ${baseImage}\nRUN apt-get update\n`);
        start = Date.now();
        // BuildKit's progress goes to stderr.
        const build = spawnSync(localDocker, ["build", "--no-cache", "--progress", "plain", "-t", "vpe-test-server/apt-probe", context], {
            encoding: "utf8",
            env: { ...process.env, DOCKER_HOST: `unix://${server.socket}`, DOCKER_BUILDKIT: "1" },
            timeout: 5 * 60_000,
        });
        const output = `${build.stdout}${build.stderr}`;
        assert.equal(build.status, 0, output.slice(-4000));
        t.diagnostic(`build with apt-get update on the server: ${seconds(start).toFixed(1)} s`);
        assert.match(output, /Get:\d+ https?:\/\/\S+ bookworm\S* InRelease/);
        assert.match(output, /Reading package lists/);
    });

    it("creates a bind mount's missing source on the server, not on the host", () => {
        const source = "/srv/vpe-test-server-bind-source";
        assert.ok(!fs.existsSync(source));
        server.docker(["run", "--rm", "-v", `${source}:/probe`, baseImage, "true"]);
        assert.equal(server.ssh(["sh", "-c", `test -d ${source} && echo seen`]), "seen");
        assert.ok(!fs.existsSync(source), `${source} on the host`);
    });

    it("keeps a port a container publishes on 127.0.0.1 on the server's loopback", async () => {
        const port = await freeLocalPort();
        const listener = "vpe-test-server-listener";
        const serve = "$s = IO::Socket::INET->new(LocalPort => 8000, Listen => 5, ReuseAddr => 1) or die $!; while ($c = $s->accept) { print $c qq(hello\\n); close $c }";
        server.docker(["run", "-d", "--name", listener, "-p", `127.0.0.1:${port}:8000`, baseImage, "perl", "-MIO::Socket::INET", "-e", serve]);
        try {
            const fromServer = () => server.ssh(["bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${port} && cat <&3`], { timeoutMs: 10_000 });
            let answer = "";
            for (const deadline = Date.now() + 20_000; Date.now() < deadline && answer !== "hello"; ) {
                try {
                    answer = fromServer();
                } catch {
                    await new Promise((resolve) => setTimeout(resolve, 250));
                }
            }
            assert.equal(answer, "hello", "the container answers on the server's 127.0.0.1");
            assert.equal(await connectError(port), "ECONNREFUSED", "nothing answers on the host's 127.0.0.1");
            assert.equal(await throughTunnel(server, port), "hello", "an ssh -L tunnel reaches it, as the program's PostgreSQL tunnel does");
        } finally {
            server.docker(["rm", "-f", listener]);
        }
    });

    it("fails within 10 s on a wrong host key and on a stopped sshd, and works again after startSshd", async () => {
        const otherKey = path.join(work, "other_host_key");
        run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", otherKey]);
        const wrongKnownHosts = path.join(work, "wrong_known_hosts");
        const otherPublic = fs.readFileSync(`${otherKey}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
        fs.writeFileSync(wrongKnownHosts, `${server.address} ${otherPublic}\n`, { mode: 0o600 });
        const wrongKey = sshFailure(server, server.sshOpts.map((opt) => (opt === `UserKnownHostsFile=${server.knownHostsFile}` ? `UserKnownHostsFile=${wrongKnownHosts}` : opt)));
        assert.match(wrongKey.stderr, /Host key verification failed/);
        assert.ok(wrongKey.elapsed < 10, `${wrongKey.elapsed} s`);

        server.stopSshd();
        const stopped = sshFailure(server, server.sshOpts);
        assert.match(stopped.stderr, /Connection refused/);
        assert.ok(stopped.elapsed < 10, `${stopped.elapsed} s`);

        await server.startSshd();
        assert.equal(server.ssh(["echo", "back"]), "back");
    });

    it("counts the SSH sessions open at once from sshd's log", async () => {
        const since = new Date();
        assert.deepEqual(await sshConcurrently(server, 3, ["sleep", "2"]), [0, 0, 0]);
        assert.equal(server.maxConcurrentSessions(since), 3);
        const later = new Date();
        server.ssh(["true"]);
        server.ssh(["true"]);
        assert.equal(server.maxConcurrentSessions(later), 1);
    });

    it("leaves nothing behind when removed, also after a killed run", async (t) => {
        await removeTestServer();
        assert.deepEqual(testServerLeftovers(), nothingLeft);

        const start = Date.now();
        server = await startTestServer();
        t.diagnostic(`startTestServer again: ${seconds(start).toFixed(1)} s`);
        await server.loadImages([baseImage]);
        server.docker(["run", "-d", "--name", "vpe-test-server-orphan", baseImage, "sleep", "infinity"]);
        const orphan = Number(server.docker(["inspect", "--format", "{{.State.Pid}}", "vpe-test-server-orphan"]));
        // A killed run: every process in the server's network namespace dies at once, no cleanup.
        const pids = run("ip", ["netns", "pids", "vpe-test-server"]).split("\n").map(Number);
        assert.ok(pids.length >= 4, `dockerd, containerd, a shim, sshd: ${pids}`);
        for (const pid of pids) process.kill(pid, "SIGKILL");
        await new Promise((resolve) => setTimeout(resolve, 500));
        assert.ok(fs.existsSync(`/proc/${orphan}`), "the container's process outlives its engine");

        await removeTestServer();
        assert.deepEqual(testServerLeftovers(), nothingLeft);
        assert.equal(fs.existsSync("/run/netns"), hadRunNetns, "/run/netns as before");
    });
});
