import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { airflowConnections, celeryWorkerConcurrency, grpcTlsExtras } from "../../components/airflow";
import { platform } from "../../platform";
import { type StackRun, byType, envOf, filesOf, named, runStack, types } from "../support/stack";

const services = ["api-server", "scheduler", "dag-processor", "triggerer"];

/** The value Airflow gets from a `_CMD` setting: the uploaded file the command prints. */
function commandValue(run: StackRun, container: string, variable: string): string {
    const command = envOf(run, container).vars.get(`${variable}_CMD`);
    assert.ok(command, `${container}: ${variable}_CMD missing`);
    const match = /^cat (\S+)$/.exec(command);
    assert.ok(match, `${container}: ${variable}_CMD is ${command}`);
    const file = filesOf(run, container).get(match[1]);
    assert.ok(file, `${container}: ${match[1]} is not uploaded`);
    assert.equal(file.secret, true, `${container}: ${match[1]} is not secret`);
    assert.deepEqual([file.permissions, file.owner], ["0440", ":"]);
    assert.equal(envOf(run, container).vars.has(variable), false, `${container}: ${variable} set as a value`);
    return file.content;
}

describe("Airflow", () => {
    const dev = runStack("dev");
    const airflowContainers = ["init", ...services].map((s) => `vpe-dev-airflow-${s}`);

    it("builds docker/airflow on the pinned official image", () => {
        const image = named(dev, "vpe-dev-airflow-image").inputs as Record<string, any>;
        assert.equal(image.build.dockerfile, "docker/airflow/Dockerfile");
        assert.deepEqual(image.build.args, { AIRFLOW_IMAGE: platform.images.airflow, PLATFORM_FILE: platform.paths.platformFile });
    });

    it("shares one JWT secret, Fernet key, API secret and execution API URL across every container", () => {
        for (const key of ["AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]) {
            const values = new Set(airflowContainers.map((c) => commandValue(dev, c, key)));
            assert.equal(values.size, 1, `${key} differs between containers`);
            assert.ok([...values][0], `${key} missing`);
        }
        for (const c of airflowContainers) {
            assert.equal(envOf(dev, c).vars.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL"), "http://airflow-api-server:8080/execution/");
        }
    });

    it("uses a 44-character padded URL-safe Fernet key made from 32 random bytes", () => {
        const bytes = byType(dev, types.bytes);
        assert.deepEqual(bytes.map((b) => b.inputs.length), [32]);
        const key = commandValue(dev, "vpe-dev-airflow-scheduler", "AIRFLOW__CORE__FERNET_KEY");
        assert.equal(key.length, 44);
        assert.match(key, /^[A-Za-z0-9_-]{43}=$/);
    });

    it("provisions grpc_default and spark_default as AIRFLOW_CONN_* JSON", () => {
        const env = envOf(dev, "vpe-dev-airflow-scheduler").vars;
        assert.deepEqual(JSON.parse(env.get("AIRFLOW_CONN_GRPC_DEFAULT")!), {
            conn_type: "grpc",
            host: "executor",
            port: 3170,
            extra: { auth_type: "CUSTOM", ca_file: "/run/vpe/tls/ca.pem", cert_file: "/run/vpe/tls/cert.pem", key_file: "/run/vpe/tls/key.pem" },
        });
        assert.deepEqual(JSON.parse(env.get("AIRFLOW_CONN_GRPC_DEFAULT")!).extra, grpcTlsExtras);
        assert.deepEqual(JSON.parse(env.get("AIRFLOW_CONN_SPARK_DEFAULT")!), {
            conn_type: "spark",
            host: "spark://spark-master",
            port: 7077,
        });
        assert.equal(env.get("AIRFLOW_CONN_FS_DEFAULT"), undefined, "no filesystem connection: the sensors ask the executor");
        const ids = Object.keys(airflowConnections({ executorAddress: { host: "executor", port: 3170 }, sparkMasterUrl: "spark://spark-master:7077" }));
        assert.deepEqual(ids.sort(), Object.values(platform.connections).sort());
    });

    it("runs a one-shot init (db migrate, admin user) before the services, which depend on its success", () => {
        const init = named(dev, "vpe-dev-airflow-init").inputs as Record<string, any>;
        assert.equal(init.attach, true);
        assert.deepEqual(init.command, ["bash", platform.paths.airflowInit]);
        const env = envOf(dev, "vpe-dev-airflow-init");
        assert.equal(env.vars.get(platform.env.adminUsername), "admin");
        const passwordFile = env.vars.get(`${platform.env.adminPassword}_FILE`)!;
        assert.equal(env.vars.has(platform.env.adminPassword), false);
        assert.match(filesOf(dev, "vpe-dev-airflow-init").get(passwordFile)?.content ?? "", /^[A-Za-z0-9]{32}$/);
        for (const s of services) {
            const labels = named(dev, `vpe-dev-airflow-${s}`).inputs.labels as { label: string; value: string }[];
            assert.deepEqual(labels, [{ label: "org.vpe.airflow-init", value: "vpe-dev-airflow-init-id" }], s);
            assert.equal(filesOf(dev, `vpe-dev-airflow-${s}`).has(passwordFile), false, `${s} sees the admin password`);
        }
    });

    it("mounts the kept Fernet keys volume (mode 0700, the airflow user's) in the init step only", () => {
        const mounts = (name: string) => (named(dev, name).inputs.volumes as { containerPath: string; volumeName?: string }[]).map((v) => v.containerPath);
        assert.ok(mounts("vpe-dev-airflow-init").includes(platform.paths.airflowKeys));
        for (const s of services) assert.ok(!mounts(`vpe-dev-airflow-${s}`).includes(platform.paths.airflowKeys), `${s} mounts the keys`);
        const volume = named(dev, "vpe-dev-airflow-keys");
        assert.equal(volume.options.retainOnDelete, true, "the keys must outlive destroy like the data they decrypt");
        const prepare = (named(dev, "vpe-dev-airflow-keys-init").inputs.command as string[]).join(" ");
        assert.ok(prepare.includes(`chown ${platform.users.airflow.uid}:${platform.users.airflow.gid} "$d"; chmod 0700 "$d"`), prepare);
    });

    it("does not start the services when the init fails", () => {
        const failed = runStack("dev", { failingContainers: ["vpe-dev-airflow-init"] });
        assert.match(failed.error ?? "", /vpe-dev-airflow-init exited with code 3/);
        for (const s of services) {
            assert.ok(!failed.resources.some((r) => r.name === `vpe-dev-airflow-${s}`), `${s} was created`);
        }
    });

    it("uses LocalExecutor in dev and CeleryExecutor with Redis and N workers in prod", () => {
        assert.equal(envOf(dev, "vpe-dev-airflow-scheduler").vars.get("AIRFLOW__CORE__EXECUTOR"), "LocalExecutor");
        assert.ok(!dev.resources.some((r) => r.name === "vpe-dev-redis"));
        const prod = runStack("prod");
        const env = envOf(prod, "vpe-prod-airflow-worker-1");
        assert.equal(env.vars.get("AIRFLOW__CORE__EXECUTOR"), "CeleryExecutor");
        const brokerUrl = commandValue(prod, "vpe-prod-airflow-worker-1", "AIRFLOW__CELERY__BROKER_URL");
        assert.match(brokerUrl, /^redis:\/\/:[^@]+@redis:6379\/0$/);
        assert.match(commandValue(prod, "vpe-prod-airflow-worker-1", "AIRFLOW__CELERY__RESULT_BACKEND"), /^db\+postgresql\+psycopg2:\/\//);
        const workers = byType(prod, types.container).filter((c) => /airflow-worker-\d$/.test(c.name));
        assert.equal(workers.length, 2);
        const redis = named(prod, "vpe-prod-redis").inputs as Record<string, any>;
        const password = new URL(brokerUrl).password;
        assert.deepEqual(redis.command, ["redis-server", `${platform.paths.secrets}/redis.conf`]);
        assert.equal(filesOf(prod, "vpe-prod-redis").get(`${platform.paths.secrets}/redis.conf`)?.content, `requirepass ${password}\n`);
        assert.equal(redis.user, `${platform.users.redis.uid}:${platform.users.redis.gid}`);
        assert.deepEqual(redis.groupAdds, ["0"]);
        assert.equal(envOf(prod, "vpe-prod-redis").vars.size, 0);
    });

    it("probes the scheduler, DAG processor and triggerer by their job's heartbeat; the scheduler's probe also ends it once silent for the restart limit", () => {
        const probe = (alias: string) => ((named(dev, `vpe-dev-${alias}`).inputs as Record<string, any>).healthcheck.tests as string[]).slice(1);
        assert.deepEqual(probe(platform.aliases.airflowScheduler), ["python", platform.paths.airflowJobProbe, "SchedulerJob", "30", String(platform.airflowProbes.schedulerRestartAfterSeconds)]);
        assert.deepEqual(probe(platform.aliases.airflowTriggerer), ["python", platform.paths.airflowJobProbe, "TriggererJob", "30"]);
        assert.deepEqual(probe(platform.aliases.airflowDagProcessor), ["python", platform.paths.airflowJobProbe, "DagProcessorJob", "30"]);
    });

    it("runs the DAGs' schedules from the start: none is created paused", () => {
        for (const c of airflowContainers) {
            assert.equal(envOf(dev, c).vars.get("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"), "False", c);
        }
    });

    it("sizes task slots from vpe:airflow.parallelism: LocalExecutor processes, or shared out among Celery workers", () => {
        assert.equal(envOf(dev, "vpe-dev-airflow-scheduler").vars.get("AIRFLOW__CORE__PARALLELISM"), "4");
        assert.equal(envOf(dev, "vpe-dev-airflow-scheduler").vars.get("AIRFLOW__CELERY__WORKER_CONCURRENCY"), undefined);
        const prod = runStack("prod");
        assert.equal(envOf(prod, "vpe-prod-airflow-scheduler").vars.get("AIRFLOW__CORE__PARALLELISM"), "16");
        assert.equal(envOf(prod, "vpe-prod-airflow-worker-1").vars.get("AIRFLOW__CELERY__WORKER_CONCURRENCY"), "8");
        assert.equal(celeryWorkerConcurrency({ parallelism: 5, celeryWorkers: 2 }), 3);
    });

    it("mounts the DAGs volume read-only and the logs, not the executor's buffer", () => {
        const volumes = named(dev, "vpe-dev-airflow-scheduler").inputs.volumes as Record<string, any>[];
        const dags = volumes.find((v) => v.containerPath === platform.paths.airflowDags)!;
        assert.deepEqual([dags.volumeName, dags.hostPath, dags.readOnly], ["vpe-dev-dags", undefined, true]);
        assert.ok(volumes.some((v) => v.volumeName === "vpe-dev-logs" && v.containerPath === platform.paths.logs));
        assert.ok(!volumes.some((v) => v.volumeName === "vpe-dev-buffer"), "the sensors ask the executor for its buffer");
    });

    it("gives every Airflow container the stack CA and Airflow's client identity for the executor's mutual TLS", () => {
        for (const c of airflowContainers) {
            const files = filesOf(dev, c);
            assert.match(files.get(grpcTlsExtras.ca_file)?.content ?? "", /vpe-dev-tls-g1-ca\n/);
            assert.match(files.get(grpcTlsExtras.cert_file)?.content ?? "", /vpe-dev-tls-g1-client\n/);
            assert.match(files.get(grpcTlsExtras.key_file)?.content ?? "", /vpe-dev-tls-g1-client-key\n/);
            assert.deepEqual([files.get(grpcTlsExtras.key_file)?.permissions, files.get(grpcTlsExtras.key_file)?.owner], ["0440", ":"]);
            assert.equal(files.get(grpcTlsExtras.key_file)?.secret, true);
        }
    });

    it("publishes only the API server, on loopback, and runs as uid 50000 group 0", () => {
        for (const s of services) {
            const inputs = named(dev, `vpe-dev-airflow-${s}`).inputs as Record<string, any>;
            assert.equal(inputs.user, "50000:0");
            if (s === "api-server") {
                assert.deepEqual(inputs.ports, [{ internal: 8080, external: 18080, ip: "127.0.0.1", protocol: "tcp" }]);
            } else {
                assert.equal(inputs.ports, undefined, s);
            }
        }
    });
});
