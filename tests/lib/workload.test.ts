import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { type Workload, serviceArgs, taskSlot } from "../../lib/workload";

const swarm = { registry: "registry.example:5000", maxPerNode: 1, encrypted: false };
const workload: Workload = {
    name: "vpe-qa-spark-worker",
    image: "registry.example:5000/vpe-qa/spark@sha256:abc",
    network: "net-id",
    alias: "spark-worker",
    command: ["spark-class", "Worker"],
    healthcheck: { test: ["CMD", "true"], startPeriodSeconds: 60 },
    ports: [{ internal: 8080, external: 18080, ip: "0.0.0.0", protocol: "tcp" }],
    waitTimeoutSeconds: 240,
};

describe("serviceArgs (a workload as a swarm service)", () => {
    const args = serviceArgs(workload, 3, `spark-worker-${taskSlot}`, swarm) as Record<string, any>;

    it("passes the command as the entrypoint's arguments, as a container's command is", () => {
        assert.deepEqual(args.taskSpec.containerSpec.args, ["spark-class", "Worker"]);
        assert.equal(args.taskSpec.containerSpec.commands, undefined, "the image's entrypoint stays");
    });

    it("runs the copies as replicas, each with its slot in its hostname, at most maxPerNode on a node", () => {
        assert.deepEqual(args.mode, { replicated: { replicas: 3 } });
        assert.equal(args.taskSpec.containerSpec.hostname, "spark-worker-{{.Task.Slot}}");
        assert.deepEqual(args.taskSpec.placement, { maxReplicas: 1 });
    });

    it("writes durations as the provider reads them back, and every restart-policy field", () => {
        assert.equal(args.taskSpec.containerSpec.healthcheck.startPeriod, "1m");
        assert.equal(args.taskSpec.containerSpec.healthcheck.interval, "2s");
        assert.deepEqual(args.taskSpec.restartPolicy, { condition: "any", delay: "5s", maxAttempts: 0, window: "0s" });
        assert.equal(args.taskSpec.containerSpec.stopGracePeriod, "10s", "set, so that delete waits for the containers");
        assert.deepEqual(args.convergeConfig, { delay: "2s", timeout: "4m" });
    });

    it("attaches by network ID, resolves by DNS round robin, publishes on the node, and starts the new task first", () => {
        assert.deepEqual(args.taskSpec.networksAdvanceds, [{ id: "net-id", aliases: ["spark-worker"] }]);
        assert.deepEqual(args.endpointSpec, { mode: "dnsrr", ports: [{ targetPort: 8080, publishedPort: 18080, publishMode: "host", protocol: "tcp" }] });
        assert.equal(args.updateConfig.order, "start-first");
        assert.equal(args.updateConfig.failureAction, "rollback");
    });

    it("does not publish a port bound to one address (a swarm binds every interface)", () => {
        const local = serviceArgs({ ...workload, ports: [{ internal: 8080, external: 18080, ip: "127.0.0.1", protocol: "tcp" }] }, 1, "x", swarm) as Record<string, any>;
        assert.deepEqual(local.endpointSpec.ports, []);
    });

    it("refuses files, which cannot reach a service yet, naming the workload", () => {
        assert.throws(
            () => serviceArgs({ ...workload, uploads: [{ file: "/run/secrets/x", content: "y" }] }, 1, "x", swarm),
            (err: Error) => pulumi.RunError.isInstance(err) && /^vpe-qa-spark-worker: files \(uploads\)/.test(err.message),
        );
    });
});
