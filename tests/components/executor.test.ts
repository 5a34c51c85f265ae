import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { usesConda } from "../../components/executor";
import { platform, projectRoot } from "../../platform";
import { filesOf, named, reveal, runStack } from "../support/stack";

describe("Executor", () => {
    const dev = runStack("dev");
    const container = named(dev, "vpe-dev-executor").inputs as Record<string, any>;

    it("builds the same image from docker/executor in both stacks: locked uv environments on Debian", () => {
        const devImage = named(dev, "vpe-dev-executor-image").inputs as Record<string, any>;
        assert.equal(devImage.build.dockerfile, "docker/executor/Dockerfile");
        assert.equal(devImage.build.args.BASE_IMAGE, platform.images.debian);
        const prodImage = named(runStack("prod"), "vpe-prod-executor-image").inputs as Record<string, any>;
        assert.deepEqual(prodImage.build, devImage.build);
    });

    it("builds on the conda base image only when an environment is a conda spec", () => {
        const envs = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-envs-"));
        try {
            fs.mkdirSync(path.join(envs, "server"));
            fs.writeFileSync(path.join(envs, "server", "pyproject.toml"), "");
            assert.equal(usesConda(envs), false);
            fs.mkdirSync(path.join(envs, "geo"));
            fs.writeFileSync(path.join(envs, "geo", "environment.yml"), "");
            assert.equal(usesConda(envs), true);
        } finally {
            fs.rmSync(envs, { recursive: true, force: true });
        }
        assert.equal(usesConda(path.join(projectRoot, "docker", "executor", "envs")), false, "a shipped environment is a conda spec");
    });

    it("runs the built image by digest, as a non-root user in group 0", () => {
        assert.match(container.image, /^vpe-dev\/executor:local@sha256:/);
        assert.equal(container.user, `${platform.users.executor.uid}:0`);
        assert.notEqual(platform.users.executor.uid, 0);
    });

    it("is reachable as executor:3170 on the network only, unless a host port is configured", () => {
        assert.deepEqual(container.networksAdvanced[0].aliases, ["executor"]);
        assert.equal(container.ports, undefined);
        const published = runStack("dev", { overrides: { "vpe:executor": '{"hostPort": 13170}' } });
        const ports = (named(published, "vpe-dev-executor").inputs as Record<string, any>).ports;
        assert.deepEqual(ports, [{ internal: platform.ports.executorGrpc, external: 13170, ip: "127.0.0.1", protocol: "tcp" }]);
        assert.equal(published.outputs.executorHostAddress.value, "127.0.0.1:13170");
    });

    it("honours the concurrency limit and memory limit configured for prod", () => {
        const prod = named(runStack("prod"), "vpe-prod-executor").inputs as Record<string, any>;
        assert.equal(prod.memory, 4096);
        assert.ok(reveal<string[]>(prod.envs).includes(`${platform.env.executorMaxConcurrent}=8`));
        assert.equal(container.memory, undefined);
    });

    it("checks health with the gRPC health protocol", () => {
        assert.deepEqual(container.healthcheck.tests, ["CMD", `${platform.paths.envs}/server/bin/python`, "-m", "vpe_executor.health"]);
    });

    it("mounts the shared buffer, the logs and the read-only data volume", () => {
        const mounts = container.volumes.map((v: Record<string, any>) => [v.containerPath, v.volumeName ?? "bind", v.readOnly ?? false]);
        assert.deepEqual(mounts, [
            [platform.paths.buffer, "vpe-dev-buffer", false],
            [platform.paths.logs, "vpe-dev-logs", false],
            [platform.paths.data, "vpe-dev-data", true],
        ]);
    });

    it("gets the pipeline writer's warehouse URL as a secret file and its concurrency limit", () => {
        const envs = reveal<string[]>(container.envs);
        const path = `${platform.paths.secrets}/warehouse-url`;
        assert.ok(envs.includes(`${platform.env.warehouseUrl}_FILE=${path}`));
        const file = filesOf(dev, "vpe-dev-executor").get(path);
        assert.match(file?.content ?? "", /^postgresql:\/\/pipeline_writer:[^@]+@postgres:5432\/landslide_warehouse$/);
        assert.equal(file?.secret, true);
        assert.deepEqual([file?.permissions, file?.owner], ["0440", ":"]);
        assert.ok(envs.includes(`${platform.env.executorMaxConcurrent}=4`));
        // The public archive by default, at a rate inside its free tier.
        assert.ok(envs.includes(`${platform.env.weatherBaseUrl}=https://archive-api.open-meteo.com/v1/archive`));
        assert.ok(envs.includes(`${platform.env.weatherRequestsPerMinute}=20`));
    });
});
