import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, parseConfig, publishedPorts } from "../config";
import { projectRoot, stackConfig } from "./support/stackConfig";

function problemsOf(raw: Record<string, string>): string[] {
    try {
        parseConfig(raw, "test");
    } catch (err) {
        assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
        assert.ok(pulumi.RunError.isInstance(err), "a RunError: the CLI prints the problems without a stack trace");
        return err.problems;
    }
    assert.fail("config was accepted");
}

describe("stack config", () => {
    it("fills defaults for an empty stack, binding to loopback", () => {
        const config = parseConfig({}, "qa");
        assert.equal(config.namePrefix, "vpe-qa");
        assert.equal(config.bindAddress, "127.0.0.1");
        assert.equal(config.deleteDataOnDestroy, false);
        assert.equal(config.spark.workers, 1);
        assert.equal(config.airflow.executor, "LocalExecutor");
        assert.equal(config.airflow.parallelism, 8);
        assert.equal(config.executor.hostPort, undefined);
    });

    it("ignores other namespaces such as provider config", () => {
        assert.doesNotThrow(() => parseConfig({ "docker:host": "unix:///var/run/docker.sock" }, "qa"));
    });

    const badInputs: [string, Record<string, string>, string][] = [
        ["unknown top-level key", { "vpe:sparkWorkers": "2" }, "vpe:sparkWorkers: unknown key"],
        ["unknown nested key", { "vpe:spark": '{"worker": 2}' }, "vpe:spark.worker: unknown key"],
        ["wrong type", { "vpe:spark": '{"workers": "two"}' }, "vpe:spark.workers:"],
        ["negative worker count", { "vpe:spark": '{"workers": -1}' }, "vpe:spark.workers:"],
        ["fractional worker count", { "vpe:spark": '{"workers": 1.5}' }, "vpe:spark.workers:"],
        ["malformed memory size", { "vpe:spark": '{"workerMemory": "1 GB"}' }, "vpe:spark.workerMemory: must be a Spark memory size"],
        ["port out of range", { "vpe:airflow": '{"hostPort": 70000}' }, "vpe:airflow.hostPort:"],
        ["privileged port", { "vpe:postgres": '{"hostPort": 80}' }, "vpe:postgres.hostPort: must be 1024 or above"],
        ["malformed PostgreSQL size", { "vpe:postgres": '{"sharedBuffers": "128M"}' }, "vpe:postgres.sharedBuffers: must be a PostgreSQL size"],
        ["bad bind address", { "vpe:bindAddress": "localhost:80" }, "vpe:bindAddress: must be an IPv4 address"],
        ["bad name prefix", { "vpe:namePrefix": "Vpe_Dev" }, "vpe:namePrefix: must be"],
        ["unknown executor", { "vpe:airflow": '{"executor": "KubernetesExecutor"}' }, "vpe:airflow.executor:"],
        ["celery without workers", { "vpe:airflow": '{"executor": "CeleryExecutor"}' }, "vpe:airflow.celeryWorkers: must be at least 1"],
        ["workers without celery", { "vpe:airflow": '{"celeryWorkers": 2}' }, "vpe:airflow.celeryWorkers: only applies to CeleryExecutor"],
        ["no task slots", { "vpe:airflow": '{"parallelism": 0}' }, "vpe:airflow.parallelism:"],
        ["no backup kept", { "vpe:backup": '{"keep": 0}' }, "vpe:backup.keep: Too small"],
        ["backups less than hourly", { "vpe:backup": '{"everyHours": 0.5}' }, "vpe:backup.everyHours:"],
        ["unknown backup key", { "vpe:backup": '{"retain": 3}' }, "vpe:backup.retain: unknown key"],
        ["logs kept for no day", { "vpe:logs": '{"retentionDays": 0}' }, "vpe:logs.retentionDays: Too small"],
        ["a weather URL without a scheme", { "vpe:weather": '{"baseUrl": "archive-api.open-meteo.com/v1/archive"}' }, "vpe:weather.baseUrl: must be an http(s) URL"],
        ["a weather URL of another scheme", { "vpe:weather": '{"baseUrl": "ftp://mirror/v1/archive"}' }, "vpe:weather.baseUrl: must be an http(s) URL"],
        ["no weather requests", { "vpe:weather": '{"requestsPerMinute": 0}' }, "vpe:weather.requestsPerMinute: Too small"],
        ["too many weather requests", { "vpe:weather": '{"requestsPerMinute": 6001}' }, "vpe:weather.requestsPerMinute: Too big"],
        ["unknown weather key", { "vpe:weather": '{"url": "https://mirror/v1/archive"}' }, "vpe:weather.url: unknown key"],
        [
            "the removed stack-wide environment format",
            { "vpe:executor": '{"environmentFormat": "venv"}' },
            "vpe:executor.environmentFormat: removed: each environment chooses its own format",
        ],
        [
            "two services on one host port",
            { "vpe:airflow": '{"hostPort": 9000}', "vpe:spark": '{"masterUiHostPort": 9000}' },
            "vpe:spark.masterUiHostPort: host port 9000 is already used by vpe:airflow.hostPort",
        ],
    ];
    for (const [label, raw, expected] of badInputs) {
        it(`rejects ${label}, naming the key`, () => {
            const problems = problemsOf(raw);
            assert.ok(
                problems.some((p) => p.startsWith(expected)),
                `expected a problem starting with ${JSON.stringify(expected)}, got ${JSON.stringify(problems)}`,
            );
        });
    }

    it("lists every problem in one message", () => {
        const raw = {
            "vpe:bogus": "1",
            "vpe:spark": '{"workers": -1, "workerMemory": "lots"}',
            "vpe:executor": '{"hostPort": 5432}',
        };
        try {
            parseConfig(raw, "test");
            assert.fail("accepted");
        } catch (err) {
            assert.ok(err instanceof ConfigError);
            for (const key of ["vpe:bogus", "vpe:spark.workers", "vpe:spark.workerMemory", "vpe:executor.hostPort"]) {
                assert.match(err.message, new RegExp(key.replace(".", "\\.")));
            }
        }
    });

    it("reports a port collision even when another section is invalid", () => {
        const problems = problemsOf({
            "vpe:spark": '{"workers": -3}',
            "vpe:executor": '{"hostPort": 8080}',
        });
        assert.ok(problems.some((p) => p.startsWith("vpe:spark.workers")));
        assert.ok(problems.some((p) => p.includes("host port 8080 is already used")));
    });
});

describe("stack files", () => {
    const dev = parseConfig(stackConfig("dev"), "dev");
    const prod = parseConfig(stackConfig("prod"), "prod");

    it("both environment files are valid", () => {
        assert.equal(dev.namePrefix, "vpe-dev");
        assert.equal(prod.namePrefix, "vpe-prod");
    });

    it("dev and prod differ in ports, workers, resources and name prefix", () => {
        assert.notEqual(dev.namePrefix, prod.namePrefix);
        assert.notEqual(dev.spark.workers, prod.spark.workers);
        assert.notEqual(dev.spark.workerMemory, prod.spark.workerMemory);
        const devPorts = new Set(publishedPorts(dev).map(([, port]) => port));
        for (const [key, port] of publishedPorts(prod)) {
            assert.ok(!devPorts.has(port), `prod ${key}=${port} collides with a dev host port`);
        }
    });

    it("neither stack file chooses an environment format: the environments do", () => {
        for (const stack of ["dev", "prod"]) {
            assert.doesNotMatch(fs.readFileSync(path.join(projectRoot, `Pulumi.${stack}.yaml`), "utf8"), /environmentFormat|conda/);
        }
    });
});
