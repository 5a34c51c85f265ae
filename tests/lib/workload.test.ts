import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { type Workload, secretResourceName, serviceArgs, swarmSecrets, taskSlot } from "../../lib/workload";

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

    it("pins a stateful workload to the nodes with its label, and updates it stop-first", () => {
        const pinned = serviceArgs({ ...workload, pinnedTo: "vpe.postgres" }, 1, "x", swarm) as Record<string, any>;
        assert.deepEqual(pinned.taskSpec.placement, { maxReplicas: 1, constraints: ["node.labels.vpe.postgres==true"] });
        assert.deepEqual([pinned.updateConfig.order, pinned.rollbackConfig.order], ["stop-first", "stop-first"], "never two tasks on its data");
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

    it("mounts each file's secret where the upload would have written it", () => {
        const files = [{ secretId: "id-1", secretName: "s-1", fileName: "/run/secrets/x", fileUid: "0", fileGid: "0", fileMode: 0o440 }];
        const withFiles = serviceArgs(workload, 1, "x", swarm, files) as Record<string, any>;
        assert.deepEqual(withFiles.taskSpec.containerSpec.secrets, files);
    });
});

describe("swarm secrets (a workload's files on a swarm)", () => {
    const created: { type: string; name: string; inputs: Record<string, unknown> }[] = [];
    pulumi.runtime.setMocks(
        {
            newResource: (r) => {
                created.push({ type: r.type, name: r.name, inputs: r.inputs });
                return { id: `${r.name}-id`, state: { ...r.inputs, name: `${r.name}-abc1234` } };
            },
            call: (c) => c.inputs,
        },
        "vpe",
        "qa",
    );
    const unwrap = (o: pulumi.Input<string | undefined>) => new Promise<string | undefined>((resolve) => pulumi.output(o).apply(resolve));

    it("names each secret after the workload and the file, within the engine's 64 characters", () => {
        assert.equal(secretResourceName("vpe-qa-postgres", "/run/secrets/postgres-password"), "vpe-qa-postgres-postgres-password");
        const long = secretResourceName("vpe-production-airflow-dag-processor", "/opt/airflow/tls/executor client.key.pem");
        assert.equal(long, "vpe-production-airflow-dag-processor-executor-client.key", "cut to leave room for the auto-name's 8");
    });

    it("delivers each upload as an auto-named secret, with the upload's mode and root ownership", async () => {
        const refs = swarmSecrets(
            { ...workload, uploads: [{ file: "/run/secrets/pw", content: pulumi.secret("hunter2"), permissions: "0440" }, { file: "/tls/ca.pem", content: "CA" }] },
            {},
        );
        assert.equal(refs.length, 2);
        assert.deepEqual([refs[0].fileName, refs[0].fileMode, refs[0].fileUid, refs[0].fileGid], ["/run/secrets/pw", 0o440, "0", "0"]);
        assert.equal(refs[1].fileMode, 0o444, "no mode given: read-only for all, as a swarm's default");
        assert.equal(await unwrap(refs[0].secretId), "vpe-qa-spark-worker-pw-id");
        assert.equal(await unwrap(refs[0].secretName), "vpe-qa-spark-worker-pw-abc1234");
        const secrets = created.filter((c) => c.type === "docker:index/secret:Secret");
        const asSecret = (value: string) => ({ [pulumi.runtime.specialSigKey]: pulumi.runtime.specialSecretSig, value });
        assert.deepEqual(secrets.map((c) => [c.name, c.inputs.data, c.inputs.name]).sort(), [
            ["vpe-qa-spark-worker-ca.pem", asSecret(Buffer.from("CA").toString("base64")), undefined],
            ["vpe-qa-spark-worker-pw", asSecret(Buffer.from("hunter2").toString("base64")), undefined],
        ]);
    });

    it("refuses two files that would share a secret, and files given by source, naming the workload", () => {
        const refused = (uploads: Workload["uploads"], pattern: RegExp) =>
            assert.throws(() => swarmSecrets({ ...workload, uploads }, {}), (err: Error) => pulumi.RunError.isInstance(err) && pattern.test(err.message));
        refused([{ file: "/a/key", content: "1" }, { file: "/b/key", content: "2" }], /^vpe-qa-spark-worker: two files are delivered as the secret vpe-qa-spark-worker-key/);
        refused([{ file: "/a/key", source: "/etc/key" }], /^vpe-qa-spark-worker: file \/a\/key: a swarm service takes files by content/);
    });
});
