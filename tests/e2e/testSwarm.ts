// The end-to-end suite's test swarm: three more Docker engines on this machine, each in a network
// namespace and private root of its own, on one bridge, joined into one swarm (node 0 its manager,
// nodes 1 and 2 workers). scripts/test-swarm.sh makes it; the suite reaches each node's engine on
// its socket, and kills and restarts a node's engine to stand for a machine lost and back. Images
// reach the nodes from the swarm's registry, which the local engine and every node trust.
import { bringUp, engineDockerEnv, hostLeftovers, type Leftovers, localDocker, pipeImages, run, runScript, type RunOptions } from "./testHosts";

const swarmName = "vpe-test-swarm";
const script = "test-swarm.sh";
const nodeCount = 3;
const registry = "10.214.0.1:5000";

export interface SwarmNode {
    index: number;
    /** The node's hostname, also its name in `docker node ls`. */
    hostname: string;
    /** Its IPv4 address on the swarm's bridge. */
    address: string;
    /** Its engine's socket, for the test's own inspection and image loading. */
    socket: string;
}

export interface TestSwarm {
    nodes: SwarmNode[];
    manager: SwarmNode;
    /** The registry's address (host:port), where the local engine pushes and every node pulls. */
    registry: string;
    /** The CA that signed the registry's certificate (PEM file). */
    registryCa: string;
    /** The local docker CLI against a node's engine (the manager's unless named). */
    docker(args: string[], options?: RunOptions & { node?: SwarmNode }): string;
    /** `docker save` on the local engine into every node's `docker load`. */
    loadImages(names: string[], timeoutMs?: number): Promise<void>;
    /** Kills a node's engine and all it runs at once, as a power cut would; its network stays. */
    killNode(node: SwarmNode): Promise<void>;
    /** Starts a killed node's engine again, on the same data root: it rejoins by itself. */
    startNode(node: SwarmNode): Promise<void>;
}

function node(index: number): SwarmNode {
    const hostname = `${swarmName}-${index}`;
    return { index, hostname, address: `10.214.0.${10 + index}`, socket: `/run/${hostname}/docker.sock` };
}

function makeSwarm(): TestSwarm {
    const nodes = Array.from({ length: nodeCount }, (_, index) => node(index));
    const manager = nodes[0];
    return {
        nodes,
        manager,
        registry,
        registryCa: `/run/${swarmName}/registry/ca.crt`,
        docker: (args, options = {}) => run(localDocker, args, { ...options, env: engineDockerEnv((options.node ?? manager).socket, options.env) }),
        loadImages: async (names, timeoutMs = 10 * 60_000) => {
            for (const target of nodes) await pipeImages(names, target.socket, timeoutMs);
        },
        killNode: (target) => runScript(script, ["kill-node", String(target.index)], 60_000),
        startNode: (target) => runScript(script, ["start-node", String(target.index)], 120_000),
    };
}

/** Brings up a fresh swarm, first removing whatever a previous run left (installs what it needs with apt). */
export function startTestSwarm(): Promise<TestSwarm> {
    return bringUp(script, "the test swarm", makeSwarm);
}

/** Removes the swarm and everything it made, also a killed run's. */
export async function removeTestSwarm(): Promise<void> {
    await runScript(script, ["down"], 180_000);
}

/** What of a test swarm exists on this machine, by kind; all empty once it is removed. */
export function testSwarmLeftovers(): Leftovers {
    const nodes = Array.from({ length: nodeCount }, (_, index) => node(index).hostname);
    const links = ["vpe-tsw", ...nodes.map((_, index) => `vpe-tsw${index}`)];
    const dirs = [swarmName, ...nodes].flatMap((name) => [`/run/${name}`, `/var/lib/${name}`]);
    return hostLeftovers([swarmName, ...nodes], swarmName, links, [...dirs, `/etc/docker/certs.d/${registry}`]);
}
