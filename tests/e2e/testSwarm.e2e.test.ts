// The test swarm is where the cluster stack will run: these checks are what make it a fair stand-in
// for three servers. Three engines that the swarm sees as three nodes, blind to the checkout, whose
// overlay network carries a service's traffic between nodes; a registry that serves every node; a node lost with its engine, its task
// rescheduled, the node back without a doubled task; and nothing left on this machine when removed,
// also after a killed run.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { changed, destroy, type HarnessOptions, up } from "../../e2e/harness";
import { expectFailure } from "./harness/support";
import { secretPath } from "../../lib/secretFiles";
import { platform } from "../../platform";
import { waitFor } from "./platform";
import { localDocker, run } from "./testHosts";
import { removeTestSwarm, startTestSwarm, type SwarmNode, testSwarmLeftovers, type TestSwarm } from "./testSwarm";

const repoRoot = path.resolve(__dirname, "..", "..");
const baseImage: string = JSON.parse(fs.readFileSync(path.join(repoRoot, "docker", "images.json"), "utf8")).debian;
const nothingLeft = { netns: [], links: [], processes: [], iptables: [], mounts: [], dirs: [], cgroups: [] };
const seconds = (since: number) => ((Date.now() - since) / 1000).toFixed(1);

// A TCP server in the base image's own perl (perl-base is essential in Debian): it answers each
// connection with the task's hostname, which the services below set to their node's.
const hostnameServer = [
    "perl", "-MIO::Socket::INET", "-e",
    'my $s = IO::Socket::INET->new(LocalPort => 8000, Listen => 16, ReuseAddr => 1) or die $!; ' +
    'open my $f, "<", "/etc/hostname" or die $!; my $h = <$f>; while (my $c = $s->accept) { print $c $h; close $c }',
];
// Connects to each address in turn and prints "<address> <answer>"; an address that does not answer prints FAIL.
const askEach = 'for a in "$@"; do perl -MIO::Socket::INET -e \'my $c = IO::Socket::INET->new(PeerAddr => $ARGV[0], PeerPort => 8000, Timeout => 3); print "$ARGV[0] ", ($c ? scalar <$c> : "FAIL\\n")\' "$a"; done';

interface NodeState {
    Hostname: string;
    Status: string;
    ManagerStatus: string;
}

function nodeStates(swarm: TestSwarm): NodeState[] {
    return swarm.docker(["node", "ls", "--format", "{{json .}}"]).split("\n").map((line) => JSON.parse(line) as NodeState);
}

function nodeStatus(swarm: TestSwarm, node: SwarmNode): string | undefined {
    return nodeStates(swarm).find((state) => state.Hostname === node.hostname)?.Status;
}

/** The nodes of a service's running tasks, once it has `replicas` of them running. */
function runningOn(swarm: TestSwarm, service: string, replicas: number): string[] | undefined {
    const nodes = swarm
        .docker(["service", "ps", service, "--filter", "desired-state=running", "--format", "{{.Node}} {{.CurrentState}}"])
        .split("\n")
        .filter((line) => / Running /.test(line))
        .map((line) => line.split(" ")[0]);
    return nodes.length === replicas ? nodes.sort() : undefined;
}

function createService(swarm: TestSwarm, name: string, network: string, replicas: number): void {
    swarm.docker([
        "service", "create", "--detach", "--quiet", "--name", name, "--network", network,
        "--replicas", String(replicas), "--replicas-max-per-node", "1",
        // Service VIPs need IPVS, which this machine's kernel lacks: DNS round robin instead.
        "--endpoint-mode", "dnsrr", "--hostname", "{{.Node.Hostname}}",
        baseImage, ...hostnameServer,
    ]);
}

describe("the test swarm", { timeout: 20 * 60_000 }, () => {
    let swarm: TestSwarm;
    let hadRunNetns: boolean;

    before(async () => {
        await removeTestSwarm();
        hadRunNetns = fs.existsSync("/run/netns");
        let start = Date.now();
        swarm = await startTestSwarm();
        console.log(`startTestSwarm: ${seconds(start)} s`);
        start = Date.now();
        await swarm.loadImages([baseImage]);
        console.log(`loading ${baseImage} onto three nodes: ${seconds(start)} s`);
        swarm.docker(["network", "create", "--driver", "overlay", "--attachable", "vpe-probe"]);
    });
    after(async () => {
        await removeTestSwarm();
    });

    it("is three engines in one swarm: a manager and two workers, each with a hostname of its own", () => {
        const states = nodeStates(swarm);
        assert.deepEqual(states.map((state) => [state.Hostname, state.Status]).sort(), swarm.nodes.map((node) => [node.hostname, "Ready"]));
        assert.deepEqual(states.filter((state) => state.ManagerStatus === "Leader").map((state) => state.Hostname), [swarm.manager.hostname]);
        const engineIds = new Set(swarm.nodes.map((node) => swarm.docker(["info", "--format", "{{.ID}}"], { node })));
        assert.equal(engineIds.size, 3, "three engines, not one engine three times");
    });

    it("runs containers that cannot see the checkout", () => {
        const worker = swarm.nodes[1];
        const listing = swarm.docker(["run", "--rm", "-v", `${repoRoot}:/checkout:ro`, baseImage, "ls", "-A", "/checkout"], { node: worker });
        assert.equal(listing, "", "the checkout's path is empty on a node");
        assert.ok(fs.existsSync(path.join(repoRoot, "package.json")));
    });

    it("serves an image pushed from the local engine to every node, by digest, over TLS", async (t) => {
        const context = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-swarm-image-"));
        const tag = `${swarm.registry}/vpe-test/pulled:${process.pid}`;
        try {
            // A config of its own (the label), so no node has this image before it pulls it.
            fs.writeFileSync(path.join(context, "Dockerfile"), `FROM ${baseImage}\nLABEL vpe.test-swarm=${Date.now()}\n`);
            run(localDocker, ["build", "--quiet", "--tag", tag, context]);
            const start = Date.now();
            run(localDocker, ["push", "--quiet", tag]);
            t.diagnostic(`push: ${seconds(start)} s`);
            const digestRef = run(localDocker, ["image", "inspect", "--format", "{{index .RepoDigests 0}}", tag]);
            assert.match(digestRef, new RegExp(`^${swarm.registry}/vpe-test/pulled@sha256:[0-9a-f]{64}$`));
            const imageId = run(localDocker, ["image", "inspect", "--format", "{{.Id}}", tag]);
            for (const node of swarm.nodes) {
                assert.throws(() => swarm.docker(["image", "inspect", digestRef], { node }), `${node.hostname} does not have it yet`);
            }

            swarm.docker(["service", "create", "--detach", "--quiet", "--name", "pulled", "--mode", "global", digestRef, "sleep", "infinity"]);
            await waitFor("pulled running on every node", 120_000, () => runningOn(swarm, "pulled", swarm.nodes.length), 500);
            for (const node of swarm.nodes) {
                assert.equal(swarm.docker(["image", "inspect", "--format", "{{.Id}}", digestRef], { node }), imageId, `${node.hostname} runs the pushed image`);
            }
            swarm.docker(["service", "rm", "pulled"]);
        } finally {
            spawnSync(localDocker, ["rmi", tag], { stdio: "ignore" });
            fs.rmSync(context, { recursive: true, force: true });
        }
    });

    it("carries a service's traffic between nodes on an overlay network, by DNS round robin", async () => {
        createService(swarm, "spread", "vpe-probe", 3);
        const start = Date.now();
        const nodes = await waitFor("three running tasks of spread", 120_000, () => runningOn(swarm, "spread", 3), 500);
        console.log(`spread converged in ${seconds(start)} s`);
        assert.deepEqual(nodes, swarm.nodes.map((node) => node.hostname), "one task on each node");

        const script = `set -- $(getent ahostsv4 tasks.spread | cut -d' ' -f1 | sort -u) spread spread spread; ${askEach}`;
        const lines = swarm.docker(["run", "--rm", "--network", "vpe-probe", baseImage, "sh", "-c", script]).split("\n");
        const byTask = lines.filter((line) => /^\d/.test(line));
        assert.equal(byTask.length, 3, `three task addresses: ${lines.join("; ")}`);
        assert.deepEqual(byTask.map((line) => line.split(" ")[1]).sort(), swarm.nodes.map((node) => node.hostname), "each task answers from its node, across the overlay");
        for (const line of lines.filter((line) => line.startsWith("spread "))) {
            assert.ok(swarm.nodes.some((node) => line === `spread ${node.hostname}`), `the service's name reaches a task: ${line}`);
        }
    });

    it("reschedules a killed node's task, and takes the node back without a doubled task", async (t) => {
        createService(swarm, "survivor", "vpe-probe", 2);
        const before = await waitFor("two running tasks of survivor", 120_000, () => runningOn(swarm, "survivor", 2), 500);
        const lost = swarm.nodes.find((node) => node !== swarm.manager && before.includes(node.hostname));
        assert.ok(lost, `a worker runs a task of survivor: ${before}`);

        let start = Date.now();
        await swarm.killNode(lost);
        await waitFor(`${lost.hostname} Down`, 60_000, () => (nodeStatus(swarm, lost) === "Down" ? true : undefined), 500);
        t.diagnostic(`${lost.hostname} Down after ${seconds(start)} s`);
        const after = await waitFor("survivor running on the other nodes", 120_000, () => {
            const nodes = runningOn(swarm, "survivor", 2);
            return nodes && !nodes.includes(lost.hostname) ? nodes : undefined;
        }, 500);
        t.diagnostic(`survivor rescheduled to ${after.join(", ")} ${seconds(start)} s after the kill`);

        start = Date.now();
        await swarm.startNode(lost);
        await waitFor(`${lost.hostname} Ready again`, 60_000, () => (nodeStatus(swarm, lost) === "Ready" ? true : undefined), 500);
        t.diagnostic(`${lost.hostname} Ready ${seconds(start)} s after its engine started`);
        // The node's engine still had the old task's container; the manager has it shut down.
        await waitFor(`no survivor task left on ${lost.hostname}`, 60_000, () => {
            const names = swarm.docker(["ps", "--filter", "name=survivor", "--format", "{{.Names}}"], { node: lost });
            return names === "" ? true : undefined;
        }, 500);
        assert.deepEqual(runningOn(swarm, "survivor", 2), after, "still two tasks, where they moved");
    });

    it("runs the platform's Spark component as swarm services: spread, registered, rolled, moved off a lost node; files as swarm secrets", async (t) => {
        const prefix = `vpe-sw${process.pid}`;
        const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-swarm-state-"));
        // The files workload runs the base image, pushed as it is (the nodes have its layers).
        const filesTag = `${swarm.registry}/${prefix}/files:1`;
        run(localDocker, ["tag", baseImage, filesTag]);
        run(localDocker, ["push", "--quiet", filesTag]);
        const filesImage = run(localDocker, ["image", "inspect", "--format", "{{index .RepoDigests 0}}", filesTag]);
        let fileSecret = `first-${process.pid}`;
        const options = (...config: string[]): HarnessOptions => ({
            projectDir: path.join(__dirname, "fixtures", "swarm"),
            stack: "swarm",
            statePath: path.join(stateDir, "state.json"),
            config: [`prefix=${prefix}`, `registry=${swarm.registry}`, `managerHost=unix://${swarm.manager.socket}`, "sparkWorkers=2", `sparkMasterUiHostPort=${masterUiHostPort}`, `filesImage=${filesImage}`, `fileSecret=${fileSecret}`, ...config],
            logStream: "ignore",
        });
        const [master, workers, filesService] = [`${prefix}-spark-master`, `${prefix}-spark-worker`, `${prefix}-files`];
        const secretNames = () => swarm.docker(["secret", "ls", "--filter", `name=${prefix}`, "--format", "{{.Name}}"]).split("\n").filter(Boolean).sort();
        /** Runs `command` in the files workload's container, on whichever node runs it. */
        const inFiles = (...command: string[]) => {
            const node = swarm.nodes.find((n) => n.hostname === (runningOn(swarm, filesService, 1) ?? [])[0]);
            assert.ok(node, "the files workload runs");
            const container = swarm.docker(["ps", "--filter", `label=com.docker.swarm.service.name=${filesService}`, "--format", "{{.ID}}"], { node });
            return swarm.docker(["exec", container, ...command], { node });
        };
        const masterUiHostPort = 18181;
        /** The master's view (its /json/), asked inside its task's container on its node. */
        const masterState = () => {
            const [taskNode] = runningOn(swarm, master, 1) ?? [];
            const node = swarm.nodes.find((n) => n.hostname === taskNode);
            if (node === undefined) return undefined;
            const container = swarm.docker(["ps", "--filter", `label=com.docker.swarm.service.name=${master}`, "--format", "{{.ID}}"], { node });
            const json = swarm.docker(["exec", container, "curl", "-fsS", `http://localhost:${platform.ports.sparkMasterUi}/json/`], { node });
            return JSON.parse(json) as { aliveworkers: number; workers: { host: string; state: string; cores: number }[] };
        };
        /** Each worker task's node, keyed by its overlay address, on the nodes whose engines run. */
        const workerNodes = (nodes = swarm.nodes) =>
            new Map(
                nodes.flatMap((node) =>
                    swarm
                        .docker(["ps", "--filter", `label=com.docker.swarm.service.name=${workers}`, "--format", "{{.ID}}"], { node })
                        .split("\n")
                        .filter(Boolean)
                        .map((id) => [swarm.docker(["inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", id], { node }), node.hostname] as const),
                ),
            );
        const filesNode = swarm.nodes[1];
        swarm.docker(["node", "update", "--label-add", "vpe.files=true", filesNode.hostname]);
        try {
            let start = Date.now();
            const first = await up(options());
            t.diagnostic(`up (image pushed, services converged): ${seconds(start)} s`);
            assert.deepEqual(runningOn(swarm, master, 1)?.length, 1, "the master converged");
            const spread = runningOn(swarm, workers, 2);
            assert.ok(spread && new Set(spread).size === 2, `two workers on two nodes: ${spread}`);
            assert.ok(first.warnings.some((w) => w.includes(`${master}: port ${masterUiHostPort} is not published`)), `the unpublished port is a warning: ${first.warnings}`);
            const image = swarm.docker(["service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", workers]);
            assert.match(image, new RegExp(`^${swarm.registry}/${prefix}/spark@sha256:[0-9a-f]{64}$`), "services run the pushed image by digest");

            const registered = await waitFor("both workers registered with the master", 120_000, () => {
                const state = masterState();
                return state?.aliveworkers === 2 ? state : undefined;
            }, 1000);
            const nodesByAddress = workerNodes();
            const registeredFrom = registered.workers.filter((w) => w.state === "ALIVE").map((w) => nodesByAddress.get(w.host));
            assert.equal(new Set(registeredFrom).size, 2, `workers registered from two nodes: ${JSON.stringify(registered.workers)} ${[...nodesByAddress]}`);
            assert.ok(registeredFrom.every((n) => n !== undefined));

            assert.deepEqual(runningOn(swarm, filesService, 1), [filesNode.hostname], "the pinned workload runs on the labelled node");
            // Files: a credential readable by group 0 alone (the user is nobody, group 0 added), a public file, each an auto-named secret.
            const credential = secretPath("probe-credential");
            assert.equal(inFiles("stat", "-c", "%a %u:%g", credential, "/etc/vpe/greeting"), "440 0:0\n444 0:0");
            assert.equal(inFiles("cat", credential), fileSecret);
            assert.equal(inFiles("cat", "/etc/vpe/greeting"), "hello");
            const firstSecrets = secretNames();
            assert.deepEqual(firstSecrets.map((n) => n.replace(/-[0-9a-f]{7}$/, "")), [`${filesService}-greeting`, `${filesService}-probe-credential`]);

            const again = await up(options());
            assert.deepEqual(changed(again), {}, "an unchanged up changes nothing");

            // A changed credential: a new secret first, the service moved to it, then the old one removed.
            fileSecret = `second-${process.pid}`;
            start = Date.now();
            const rotated = await up(options());
            t.diagnostic(`a file's content changed: ${seconds(start)} s`);
            assert.deepEqual(
                Object.entries(changed(rotated)).map(([urn, op]) => `${urn.split("::").pop()} ${op}`).sort(),
                [`${filesService} update`, `${filesService}-probe-credential replace`],
            );
            assert.equal(inFiles("cat", credential), fileSecret);
            const rotatedSecrets = secretNames();
            assert.equal(rotatedSecrets.length, 2, `the old secret removed: ${rotatedSecrets}`);
            assert.ok(rotatedSecrets.includes(firstSecrets[0]), "the unchanged file keeps its secret");
            assert.ok(!rotatedSecrets.includes(firstSecrets[1]), "the changed file has a new one");

            // A rolling update (start-first, so each new worker takes the node without one): only the workers change.
            start = Date.now();
            const rolled = await up(options("sparkWorkerCores=2"));
            t.diagnostic(`rolling update of the workers: ${seconds(start)} s`);
            assert.deepEqual(Object.keys(changed(rolled)).map((urn) => urn.split("::").pop()), [workers], "only the workers' service changes");
            const updated = await waitFor("two workers of 2 cores registered", 120_000, () => {
                const alive = masterState()?.workers.filter((w) => w.state === "ALIVE") ?? [];
                return alive.length === 2 && alive.every((w) => w.cores === 2) ? alive : undefined;
            }, 1000);
            assert.equal(updated.length, 2);

            const placed = runningOn(swarm, workers, 2) ?? [];
            const lost = swarm.nodes.find((node) => node !== swarm.manager && placed.includes(node.hostname));
            assert.ok(lost, `a worker node runs a Spark worker: ${placed}`);
            start = Date.now();
            await swarm.killNode(lost);
            const moved = await waitFor("two Spark workers registered, none on the lost node", 180_000, () => {
                const state = masterState();
                const alive = state?.workers.filter((w) => w.state === "ALIVE") ?? [];
                const where = workerNodes(swarm.nodes.filter((node) => node !== lost));
                const nodes = alive.map((w) => where.get(w.host));
                return alive.length === 2 && nodes.every((n) => n !== undefined && n !== lost.hostname) ? nodes : undefined;
            }, 1000);
            t.diagnostic(`Spark workers on ${moved.join(", ")}, registered ${seconds(start)} s after ${lost.hostname} was killed`);
            await swarm.startNode(lost);
            await waitFor(`${lost.hostname} Ready again`, 60_000, () => (nodeStatus(swarm, lost) === "Ready" ? true : undefined), 500);

            start = Date.now();
            const failure = await expectFailure(up(options("brokenService=true")), new RegExp(`::${prefix}-broken: Service with ID \\(\\w+\\) did not converge after 20s`));
            t.diagnostic(`a service that cannot converge failed the up after ${seconds(start)} s: ${failure.message.split("\n")[0]}`);
            assert.equal(swarm.docker(["service", "ls", "--quiet", "--filter", `name=${prefix}-broken`]), "", "the service that never converged is removed");

            await destroy(options());
            assert.equal(swarm.docker(["service", "ls", "--quiet", "--filter", `name=${prefix}`]), "", "destroy removes the services");
            assert.equal(swarm.docker(["network", "ls", "--quiet", "--filter", `name=${prefix}-net`]), "", "and the overlay network");
            assert.deepEqual(secretNames(), [], "and the secrets");
        } finally {
            for (const service of swarm.docker(["service", "ls", "--quiet", "--filter", `name=${prefix}`]).split("\n").filter(Boolean)) swarm.docker(["service", "rm", service]);
            for (const secret of secretNames()) swarm.docker(["secret", "rm", secret]);
            swarm.docker(["node", "update", "--label-rm", "vpe.files", filesNode.hostname]);
            spawnSync(localDocker, ["rmi", `${swarm.registry}/${prefix}/spark:local`, filesTag], { stdio: "ignore" });
            fs.rmSync(stateDir, { recursive: true, force: true });
        }
    });

    it("leaves nothing behind when removed, also after a killed run", async () => {
        await removeTestSwarm();
        assert.deepEqual(testSwarmLeftovers(), nothingLeft);

        swarm = await startTestSwarm();
        await swarm.loadImages([baseImage]);
        const worker = swarm.nodes[2];
        swarm.docker(["run", "-d", "--name", "vpe-test-swarm-orphan", baseImage, "sleep", "infinity"], { node: worker });
        const orphan = Number(swarm.docker(["inspect", "--format", "{{.State.Pid}}", "vpe-test-swarm-orphan"], { node: worker }));
        // A killed run: every process of every node dies at once, no cleanup.
        for (const node of swarm.nodes) {
            const pids = run("ip", ["netns", "pids", node.hostname]).split("\n").filter(Boolean).map(Number);
            assert.ok(pids.length >= 2, `dockerd and containerd on ${node.hostname}: ${pids}`);
            for (const pid of pids) process.kill(pid, "SIGKILL");
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
        assert.ok(fs.existsSync(`/proc/${orphan}`), "the container's process outlives its engine");
        await removeTestSwarm();
        assert.deepEqual(testSwarmLeftovers(), nothingLeft);
        assert.equal(fs.existsSync("/run/netns"), hadRunNetns, "/run/netns as before");
    });
});
