import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as fs from "node:fs";
import { airflowStatsd, alertTiming, statsdMappingFile } from "../../components/monitoring";
import { platform } from "../../platform";
import { byType, filesOf, named, runStack, types } from "../support/stack";

const prometheusConfigOf = (run: ReturnType<typeof runStack>) =>
    JSON.parse(filesOf(run, "vpe-prod-prometheus").get(`${platform.paths.prometheusConfig}/vpe.yml`)!.content);

describe("Monitoring", () => {
    const prod = runStack("prod");
    const prometheus = named(prod, "vpe-prod-prometheus").inputs as Record<string, any>;
    const alertmanager = named(prod, "vpe-prod-alertmanager").inputs as Record<string, any>;

    it("is off unless the stack file turns it on: dev runs neither Prometheus nor Alertmanager", () => {
        const dev = runStack("dev");
        const names = byType(dev, types.container).map((c) => c.name);
        assert.deepEqual(names.filter((n) => /prometheus|alertmanager/.test(n)), []);
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

    it("scrapes the executor, the Spark master and every worker, and itself", () => {
        const jobs = Object.fromEntries(
            (prometheusConfigOf(prod).scrape_configs as { job_name: string; metrics_path: string; static_configs: { targets: string[] }[] }[]).map(
                (j) => [j.job_name, { path: j.metrics_path, targets: j.static_configs[0].targets }],
            ),
        );
        assert.deepEqual(jobs, {
            prometheus: { path: "/metrics", targets: [`localhost:${platform.ports.prometheus}`] },
            airflow: { path: "/metrics", targets: [`statsd-exporter:${platform.ports.statsdExporterWeb}`] },
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

    it("lists its containers for status", () => {
        const containers = prod.outputs.containers.value as string[];
        for (const name of ["vpe-prod-prometheus", "vpe-prod-alertmanager", "vpe-prod-statsd-exporter"]) assert.ok(containers.includes(name), name);
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
