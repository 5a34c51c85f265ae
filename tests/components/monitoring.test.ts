import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as fs from "node:fs";
import { airflowStatsd, alertTiming, nodeExporterMountsExcluded, statsdMappingFile, warehouseScrapeSeconds } from "../../components/monitoring";
import { roleNames } from "../../components/warehouse";
import { countedTables } from "../../warehouse/tables";
import { platform } from "../../platform";
import { byType, envOf, filesOf, isSecret, named, reveal, runStack, types } from "../support/stack";

const prometheusConfigOf = (run: ReturnType<typeof runStack>) =>
    JSON.parse(filesOf(run, "vpe-prod-prometheus").get(`${platform.paths.prometheusConfig}/vpe.yml`)!.content);

describe("Monitoring", () => {
    const prod = runStack("prod");
    const prometheus = named(prod, "vpe-prod-prometheus").inputs as Record<string, any>;
    const alertmanager = named(prod, "vpe-prod-alertmanager").inputs as Record<string, any>;

    it("is off unless the stack file turns it on: dev runs neither Prometheus nor Alertmanager", () => {
        const dev = runStack("dev");
        const names = byType(dev, types.container).map((c) => c.name);
        assert.deepEqual(names.filter((n) => /prometheus|alertmanager|exporter/.test(n)), []);
        assert.equal(dev.outputs.prometheusUrl.value, null);
    });

    it("publishes Prometheus' UI and API on the bind address, and Alertmanager nowhere", () => {
        assert.deepEqual(prometheus.ports, [{ internal: platform.ports.prometheus, external: 29090, ip: "127.0.0.1", protocol: "tcp" }]);
        assert.equal(alertmanager.ports, undefined);
        assert.equal(prod.outputs.prometheusUrl.value, "http://127.0.0.1:29090");
    });

    it("runs the pinned upstream images as their own non-root user, state in kept volumes", () => {
        assert.equal(named(prod, "vpe-prod-prometheus-image").inputs.name, platform.images.prometheus);
        assert.equal(named(prod, "vpe-prod-alertmanager-image").inputs.name, platform.images.alertmanager);
        assert.equal(prometheus.user, undefined, "the image's nobody");
        assert.deepEqual(prometheus.volumes, [{ volumeName: "vpe-prod-prometheus-data", containerPath: platform.paths.prometheusData }]);
        assert.equal(named(prod, "vpe-prod-prometheus-data").options.retainOnDelete, true);
        const purge = runStack("prod", { overrides: { "vpe:deleteDataOnDestroy": "true" } });
        assert.equal(named(purge, "vpe-prod-prometheus-data").options.retainOnDelete, false);
        assert.equal(named(purge, "vpe-prod-alertmanager-data").options.retainOnDelete, false);
    });

    it("keeps samples for the configured retention and scrapes at the configured interval", () => {
        assert.ok(prometheus.command.includes("--storage.tsdb.retention.time=30d"));
        const config = prometheusConfigOf(prod);
        assert.equal(config.global.scrape_interval, "15s");
        assert.equal(config.global.evaluation_interval, "15s");
        const custom = runStack("prod", { overrides: { "vpe:metrics": '{"enabled": true, "hostPort": 29090, "scrapeIntervalSeconds": 60, "retentionDays": 90}' } });
        assert.ok((named(custom, "vpe-prod-prometheus").inputs.command as string[]).includes("--storage.tsdb.retention.time=90d"));
        assert.equal(prometheusConfigOf(custom).global.scrape_interval, "1m0s");
    });

    it("scrapes the executor, the Spark master and every worker, PostgreSQL, node_exporter, Redis, the containers, and itself", () => {
        const jobs = Object.fromEntries(
            (prometheusConfigOf(prod).scrape_configs as { job_name: string; scrape_interval?: string; metrics_path: string; static_configs: { targets: string[] }[] }[]).map(
                (j) => [j.job_name, { path: j.metrics_path, targets: j.static_configs[0].targets, ...(j.scrape_interval ? { interval: j.scrape_interval } : {}) }],
            ),
        );
        assert.deepEqual(jobs, {
            prometheus: { path: "/metrics", targets: [`localhost:${platform.ports.prometheus}`] },
            airflow: { path: "/metrics", targets: [`statsd-exporter:${platform.ports.statsdExporterWeb}`] },
            postgres: { path: "/metrics", targets: [`postgres-exporter:${platform.ports.postgresExporter}`], interval: `${warehouseScrapeSeconds / 60}m0s` },
            node: { path: "/metrics", targets: [`node-exporter:${platform.ports.nodeExporter}`] },
            redis: { path: "/metrics", targets: [`redis-exporter:${platform.ports.redisExporter}`] },
            containers: { path: "/metrics", targets: [`container-exporter:${platform.ports.containerExporter}`] },
            executor: { path: "/metrics", targets: [`executor:${platform.ports.executorMetrics}`] },
            "spark-master": { path: platform.paths.sparkMasterMetrics, targets: [`spark-master:${platform.ports.sparkMasterUi}`] },
            "spark-worker": { path: platform.paths.sparkWorkerMetrics, targets: ["spark-worker-1:8081", "spark-worker-2:8081"] },
        });
        for (const name of ["vpe-prod-spark-master", "vpe-prod-spark-worker-1"]) {
            const envs = (named(prod, name).inputs as Record<string, any>).envs as string[];
            assert.ok(envs.some((e) => e.includes("sink.prometheusServlet.class=org.apache.spark.metrics.sink.PrometheusServlet")), name);
        }
    });

    it("ships the alert rules and sends what fires to Alertmanager", () => {
        const files = filesOf(prod, "vpe-prod-prometheus");
        const rules = files.get(`${platform.paths.prometheusConfig}/rules/vpe.yml`)!;
        assert.match(rules.content, /alert: SparkWorkerLost/);
        assert.deepEqual(prometheusConfigOf(prod).rule_files, [`${platform.paths.prometheusConfig}/rules/vpe.yml`]);
        assert.deepEqual(prometheusConfigOf(prod).alerting.alertmanagers[0].static_configs[0].targets, [`alertmanager:${platform.ports.alertmanager}`]);
    });

    it("routes every alert to the stack's webhook, resolved ones too; without one, nowhere", () => {
        const config = (run: ReturnType<typeof runStack>) => filesOf(run, "vpe-prod-alertmanager").get(`${platform.paths.alertmanagerConfig}/vpe.yml`)!;
        const none = JSON.parse(config(prod).content);
        assert.deepEqual(none.receivers, [{ name: "none" }]);
        const url = "https://alerts.example.org/hook?token=t0ken";
        const hooked = runStack("prod", { overrides: { "vpe:metrics": JSON.stringify({ enabled: true, hostPort: 29090, alertWebhookUrl: url }) } });
        const file = config(hooked);
        assert.equal(file.secret, true, "a webhook URL may carry a token");
        const parsed = JSON.parse(file.content);
        assert.equal(parsed.route.receiver, "webhook");
        assert.equal(parsed.route.group_wait, alertTiming.groupWait);
        assert.deepEqual(parsed.receivers, [{ name: "webhook", webhook_configs: [{ url, send_resolved: true }] }]);
        assert.ok(!JSON.stringify(named(hooked, "vpe-prod-alertmanager").inputs.command).includes("t0ken"));
    });

    it("has the PostgreSQL exporter log in as the monitoring role, its password a file, and count every warehouse table", () => {
        const exporter = named(prod, "vpe-prod-postgres-exporter").inputs as Record<string, any>;
        assert.equal(named(prod, "vpe-prod-postgres-exporter-image").inputs.name, platform.images["postgres-exporter"]);
        assert.equal(exporter.user, undefined, "the image's nobody");
        assert.deepEqual(exporter.groupAdds, ["0"], "reads the root-owned password file through group 0");
        const { vars } = envOf(prod, "vpe-prod-postgres-exporter");
        const passwordFile = `${platform.paths.secrets}/monitoring-password`;
        assert.deepEqual(Object.fromEntries(vars), {
            DATA_SOURCE_URI: `postgres:${platform.ports.postgres}/${platform.databases.warehouse}?sslmode=disable`,
            DATA_SOURCE_USER: roleNames.monitoring,
            DATA_SOURCE_PASS_FILE: passwordFile,
        });
        const files = filesOf(prod, "vpe-prod-postgres-exporter");
        const password = files.get(passwordFile)!;
        assert.equal(password.secret, true);
        assert.equal(password.permissions, "0440");
        const role = byType(prod, types.dynamic).find((r) => r.name === `vpe-prod-role-${roleNames.monitoring}`)!;
        assert.equal(password.content, reveal(role.inputs.password), "the file holds the monitoring role's password");
        assert.ok(isSecret(role.inputs.password));
        const queries = JSON.parse(files.get(platform.paths.postgresExporterQueries)!.content);
        assert.deepEqual(queries.vpe_warehouse.metrics.map((m: object) => Object.keys(m)[0]), ["relation", "rows"]);
        const counted = [...(queries.vpe_warehouse.query as string).matchAll(/SELECT '(\w+)' AS relation, count\(\*\) AS rows FROM public\.(\w+)/g)];
        assert.deepEqual(counted.map((m) => [m[1], m[2]]), countedTables.map((t) => [t, t]));
        assert.ok(exporter.command.includes(`--extend.query-path=${platform.paths.postgresExporterQueries}`));
        const inspectable = JSON.stringify([exporter.envs, exporter.command, exporter.labels, exporter.healthcheck]);
        assert.ok(!inspectable.includes(String(reveal(role.inputs.password))), "the password would show in docker inspect");
    });

    it("runs node_exporter with only the textfile and filesystem collectors, on the metrics volume read-only", () => {
        const exporter = named(prod, "vpe-prod-node-exporter").inputs as Record<string, any>;
        assert.equal(named(prod, "vpe-prod-node-exporter-image").inputs.name, platform.images["node-exporter"]);
        assert.equal(exporter.user, undefined, "the image's nobody");
        assert.deepEqual(exporter.volumes, [{ volumeName: "vpe-prod-metrics", containerPath: platform.paths.metricsTextfiles, readOnly: true }]);
        assert.deepEqual(exporter.command.slice(0, 5), [
            "--collector.disable-defaults",
            "--collector.textfile",
            `--collector.textfile.directory=${platform.paths.metricsTextfiles}`,
            "--collector.filesystem",
            `--collector.filesystem.mount-points-exclude=${nodeExporterMountsExcluded}`,
        ]);
        const excluded = new RegExp(nodeExporterMountsExcluded);
        assert.deepEqual(["/", "/etc/hosts", "/dev/shm", "/proc", "/sys/fs/cgroup", platform.paths.metricsTextfiles].filter((m) => !excluded.test(m)), [platform.paths.metricsTextfiles]);
        assert.equal(exporter.ports, undefined);
    });

    it("with CeleryExecutor, has the Redis exporter log in with Redis' password from a file; without Celery, runs none", () => {
        const exporter = named(prod, "vpe-prod-redis-exporter").inputs as Record<string, any>;
        assert.equal(named(prod, "vpe-prod-redis-exporter-image").inputs.name, platform.images["redis-exporter"]);
        assert.equal(exporter.user, undefined, "the image's own uid");
        assert.deepEqual(exporter.groupAdds, ["0"]);
        const file = `${platform.paths.secrets}/redis-exporter-passwords.json`;
        assert.deepEqual(exporter.command, [`--redis.addr=redis://redis:${platform.ports.redis}`, `--redis.password-file=${file}`, `--web.listen-address=:${platform.ports.redisExporter}`]);
        const passwords = filesOf(prod, "vpe-prod-redis-exporter").get(file)!;
        assert.deepEqual([passwords.secret, passwords.permissions], [true, "0440"]);
        const redisConf = filesOf(prod, "vpe-prod-redis").get(`${platform.paths.secrets}/redis.conf`)!.content;
        assert.deepEqual(JSON.parse(passwords.content), { [`redis://redis:${platform.ports.redis}`]: redisConf.replace(/^requirepass (\S+)\n$/, "$1") });
        assert.equal(exporter.envs, undefined);
        const local = runStack("prod", { overrides: { "vpe:airflow": '{"executor": "LocalExecutor", "hostPort": 28080}' } });
        assert.deepEqual(byType(local, types.container).map((c) => c.name).filter((n) => n.includes("redis")), []);
        assert.ok(!JSON.stringify(prometheusConfigOf(local).scrape_configs).includes("redis"));
    });

    it("lists its containers for status", () => {
        const containers = prod.outputs.containers.value as string[];
        for (const name of ["vpe-prod-prometheus", "vpe-prod-alertmanager", "vpe-prod-statsd-exporter", "vpe-prod-postgres-exporter", "vpe-prod-node-exporter", "vpe-prod-redis-exporter", "vpe-prod-container-exporter"]) assert.ok(containers.includes(name), name);
    });

    it("has the container exporter, built from its own context, report every long-running container through the engine's socket, read-only", () => {
        const exporter = named(prod, "vpe-prod-container-exporter").inputs as Record<string, any>;
        const image = named(prod, "vpe-prod-container-exporter-image").inputs as Record<string, any>;
        assert.equal(image.build.dockerfile, "docker/container-exporter/Dockerfile");
        assert.deepEqual(image.build.args, { BASE_IMAGE: platform.images.debian, UV_VERSION: platform.versions.uv });
        assert.deepEqual(exporter.volumes, [{ hostPath: "/var/run/docker.sock", containerPath: platform.paths.engineSocket, readOnly: true }]);
        const { uid, gid } = platform.users.containerExporter;
        assert.deepEqual(exporter.command.slice(0, 4), [`--port=${platform.ports.containerExporter}`, `--socket=${platform.paths.engineSocket}`, `--uid=${uid}`, `--gid=${gid}`]);
        assert.deepEqual([...exporter.command.slice(4)].sort(), [...(prod.outputs.containers.value as string[])].sort(), "every container status lists, itself included");
        assert.equal(exporter.ports, undefined);
        const custom = runStack("prod", { overrides: { "vpe:metrics": '{"enabled": true, "hostPort": 29090, "engineSocket": "/run/user/1000/docker.sock"}' } });
        assert.equal((named(custom, "vpe-prod-container-exporter").inputs as Record<string, any>).volumes[0].hostPath, "/run/user/1000/docker.sock");
    });

    it("leaves the engine's socket alone when vpe:metrics.containers is off", () => {
        const off = runStack("prod", { overrides: { "vpe:metrics": '{"enabled": true, "hostPort": 29090, "containers": false}' } });
        const names = byType(off, types.container).map((c) => c.name);
        assert.ok(!names.includes("vpe-prod-container-exporter"));
        assert.ok(names.includes("vpe-prod-node-exporter"));
        assert.ok(!JSON.stringify(byType(off, types.container).map((c) => c.inputs.volumes)).includes("docker.sock"));
        assert.ok(!prometheusConfigOf(off).scrape_configs.some((j: { job_name: string }) => j.job_name === "containers"));
    });

    it("has every Airflow process send StatsD to the exporter, which maps it with the shipped file", () => {
        for (const name of ["vpe-prod-airflow-scheduler", "vpe-prod-airflow-triggerer", "vpe-prod-airflow-worker-1"]) {
            const envs = (named(prod, name).inputs as Record<string, any>).envs as string[];
            for (const setting of ["AIRFLOW__METRICS__STATSD_ON=True", `AIRFLOW__METRICS__STATSD_HOST=${airflowStatsd.host}`, `AIRFLOW__METRICS__STATSD_PORT=${platform.ports.statsd}`, "AIRFLOW__METRICS__STATSD_PREFIX=airflow"]) {
                assert.ok(envs.includes(setting), `${name}: ${setting}`);
            }
        }
        const dev = runStack("dev");
        const devEnvs = (named(dev, "vpe-dev-airflow-scheduler").inputs as Record<string, any>).envs as string[];
        assert.ok(!devEnvs.some((e) => e.startsWith("AIRFLOW__METRICS__")), "no StatsD without metrics");
        const mapping = filesOf(prod, "vpe-prod-statsd-exporter").get(platform.paths.statsdMapping)!;
        assert.equal(mapping.content, fs.readFileSync(statsdMappingFile, "utf8"));
        const matches = [...mapping.content.matchAll(/match: "([^"]+)"/g)].map((m) => m[1]);
        assert.ok(matches.length > 0 && matches.every((m) => m.startsWith(`${airflowStatsd.prefix}.`)), matches.join(", "));
    });
});
