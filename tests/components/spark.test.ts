import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { prometheusServletOpts } from "../../components/spark";
import { platform } from "../../platform";
import { byType, named, runStack, types } from "../support/stack";

const workerNames = (run: ReturnType<typeof runStack>) =>
    byType(run, types.container).map((c) => c.name).filter((n) => n.includes("spark-worker"));

describe("Spark", () => {
    const run = runStack("prod");

    it("builds its image from docker/spark on the pinned Debian base", () => {
        const image = named(run, "vpe-prod-spark-image").inputs as Record<string, any>;
        assert.equal(image.build.context, "docker");
        assert.equal(image.build.dockerfile, "docker/spark/Dockerfile");
        assert.deepEqual(image.build.args, { DEBIAN_IMAGE: platform.images.debian, SPARK_HOME: platform.paths.sparkHome });
        assert.equal(image.skipPush, true);
    });

    it("runs a master and the configured workers, which register with spark://spark-master:7077", () => {
        const master = named(run, "vpe-prod-spark-master").inputs as Record<string, any>;
        assert.equal(master.command[1], "org.apache.spark.deploy.master.Master");
        assert.deepEqual(master.ports, [{ internal: 8080, external: 28181, ip: "127.0.0.1", protocol: "tcp" }]);
        assert.deepEqual(workerNames(run), ["vpe-prod-spark-worker-1", "vpe-prod-spark-worker-2"]);
        const worker = named(run, "vpe-prod-spark-worker-1");
        const inputs = worker.inputs as Record<string, any>;
        assert.deepEqual(inputs.command.slice(1), ["org.apache.spark.deploy.worker.Worker", "spark://spark-master:7077"]);
        assert.ok(inputs.envs.includes("SPARK_WORKER_CORES=1"));
        assert.ok(inputs.envs.includes("SPARK_WORKER_MEMORY=2g"));
        assert.equal(inputs.user, `${platform.users.spark.uid}:0`);
        assert.ok(worker.options.dependencies.some((urn: string) => urn.endsWith("::vpe-prod-spark-master")), "workers wait for the master");
        assert.equal(run.outputs.sparkWorkers.value, 2);
    });

    it("has each worker remove finished applications' folders after the stack's log retention", () => {
        const opts = (stack: ReturnType<typeof runStack>, name: string) =>
            ((named(stack, name).inputs as Record<string, any>).envs as string[]).find((e) => e.startsWith("SPARK_WORKER_OPTS="));
        const expected = (days: number) =>
            "SPARK_WORKER_OPTS=-Dspark.worker.cleanup.enabled=true " +
            `-Dspark.worker.cleanup.interval=${platform.maintenance.groomEveryMinutes * 60} -Dspark.worker.cleanup.appDataTtl=${days * 86400} ` +
            prometheusServletOpts;
        assert.equal(opts(run, "vpe-prod-spark-worker-2"), expected(30));
        const custom = runStack("dev", { overrides: { "vpe:logs": '{"retentionDays": 2}' } });
        assert.equal(opts(custom, "vpe-dev-spark-worker-1"), expected(2));
    });

    it("allows zero workers", () => {
        const none = runStack("dev", { overrides: { "vpe:spark": '{"workers": 0, "masterUiHostPort": 18181}' } });
        assert.equal(none.error, undefined);
        assert.deepEqual(workerNames(none), []);
        assert.ok(none.resources.some((r) => r.name === "vpe-dev-spark-master"));
    });
});
