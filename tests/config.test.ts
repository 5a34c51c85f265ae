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
        ["a relative engine socket", { "vpe:metrics": '{"enabled": true, "engineSocket": "run/docker.sock"}' }, "vpe:metrics.engineSocket: must be an absolute path"],
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

describe("the engine: docker:host and docker:sshOpts", () => {
    const strict = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${__filename}`, "-i", "/keys/id"];
    const server = (host: string, options: unknown) => ({ "docker:host": host, "docker:sshOpts": JSON.stringify(options) });

    it("takes a server over SSH used strictly, and this machine's engine when unset", () => {
        assert.deepEqual(parseConfig({}, "qa").engine, { host: undefined });
        const config = parseConfig(server("ssh://deploy@srv.example.org:2222", strict), "qa");
        assert.deepEqual(config.engine.ssh, { url: "ssh://deploy@srv.example.org:2222", user: "deploy", host: "srv.example.org", port: 2222, options: strict });
        assert.equal(parseConfig({ "docker:host": "tcp://127.0.0.1:2375" }, "qa").engine.ssh, undefined);
    });

    const refused: [string, Record<string, string>, RegExp][] = [
        ["no prompt allowed", server("ssh://deploy@srv", strict.slice(2)), /^docker:sshOpts: must include "-o", "BatchMode=yes"/],
        ["host keys trusted on first use", server("ssh://deploy@srv", [...strict.slice(0, 2), "-o", "StrictHostKeyChecking=no", ...strict.slice(2)]), /^docker:sshOpts: must include "-o", "StrictHostKeyChecking=yes" \(not no\)/],
        ["no pinned known-hosts file", server("ssh://deploy@srv", strict.slice(0, 4)), /^docker:sshOpts: must include "-o", "UserKnownHostsFile=<file>"/],
        ["a known-hosts file that is not there", server("ssh://deploy@srv", [...strict.slice(0, 5), "UserKnownHostsFile=/nowhere/known_hosts"]), /^docker:sshOpts: UserKnownHostsFile \/nowhere\/known_hosts does not exist/],
        ["a placeholder for the host", server("ssh://deploy@YOUR_SERVER", strict), /^docker:host: "YOUR_SERVER" is not a host name or address/],
        ["an unknown scheme", { "docker:host": "http://srv:2375" }, /^docker:host: must be ssh:\/\/user@host\[:port\]/],
        ["ssh options without a server", { "docker:sshOpts": JSON.stringify(strict) }, /^docker:sshOpts: only applies with docker:host: ssh:/],
        ["ssh options that are not a list", { "docker:host": "ssh://deploy@srv", "docker:sshOpts": '"-o BatchMode=yes"' }, /^docker:sshOpts: must be a list of ssh arguments/],
    ];
    for (const [what, raw, expected] of refused) {
        it(`refuses ${what}, naming the key`, () => {
            const problems = problemsOf(raw);
            assert.ok(problems.some((p) => expected.test(p)), problems.join("\n"));
        });
    }

    it("reads the option forms ssh reads (-o K=V, -oK=V, -o 'K V'), the first value winning", () => {
        const problems = problemsOf(server("ssh://deploy@srv", ["-oBatchMode=yes", "-o", "StrictHostKeyChecking yes", "-o", "StrictHostKeyChecking=no"]));
        assert.equal(problems.length, 1, problems.join("\n"));
        assert.match(problems[0], /^docker:sshOpts: must include "-o", "UserKnownHostsFile=<file>"/);
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

    it("the server stack file is the prod shape on its own ports, and names what the user must set before anything runs", () => {
        const problems = problemsOf(stackConfig("server"));
        assert.ok(problems.some((p) => /^docker:host: "YOUR_SERVER" is not a host name/.test(p)), problems.join("\n"));
        const { "docker:host": _host, "docker:sshOpts": _opts, ...platformOnly } = stackConfig("server");
        const server = parseConfig(platformOnly, "server");
        assert.equal(server.namePrefix, "vpe-server");
        assert.deepEqual([server.airflow.executor, server.airflow.celeryWorkers, server.spark.workers], [prod.airflow.executor, prod.airflow.celeryWorkers, prod.spark.workers]);
        const taken = new Set([...publishedPorts(dev), ...publishedPorts(prod)].map(([, port]) => port));
        // Its PostgreSQL tunnel listens on this machine on the same port, beside a local dev or prod.
        for (const [key, port] of publishedPorts(server)) assert.ok(!taken.has(port), `server ${key}=${port} collides with dev or prod`);
    });

    it("no stack file chooses an environment format: the environments do", () => {
        for (const stack of ["dev", "prod", "server"]) {
            assert.doesNotMatch(fs.readFileSync(path.join(projectRoot, `Pulumi.${stack}.yaml`), "utf8"), /environmentFormat|conda/);
        }
    });
});
