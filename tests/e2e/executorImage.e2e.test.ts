// The executor exists so that each pipeline runs in its own environment: an image with two
// pipeline environments whose pins conflict (packaging 21 and 24), built as the stack builds it,
// runs a task from each through its gRPC server, and each sees its own version. A conda
// environment whose channel cannot be reached fails the build at once, naming both.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { executorBuildArgs } from "../../components/executor";
import { platform } from "../../platform";
import { projectRoot } from "../support/stackConfig";
import { buildExecutorImage, docker, dockerClient, provideImages, waitFor } from "./platform";
import { writeTlsDir } from "./testPki";

const fixture = path.join(projectRoot, "tests", "e2e", "fixtures", "isolation");
const image = "vpe-test/executor-isolation:local";
const container = "vpe-test-executor-isolation";

/** docker/ plus the fixture's environments, pipeline and tasks, in a temporary folder. */
function contextWithFixture(): string {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-isolation-"));
    fs.cpSync(path.join(projectRoot, "docker"), path.join(root, "docker"), { recursive: true });
    const executor = path.join(root, "docker", "executor");
    fs.cpSync(path.join(fixture, "envs"), path.join(executor, "envs"), { recursive: true });
    fs.cpSync(path.join(fixture, "pipelines"), path.join(executor, "pipelines"), { recursive: true });
    fs.appendFileSync(path.join(executor, "tasks.toml"), fs.readFileSync(path.join(fixture, "tasks.toml")));
    return root;
}

/** Runs registry tasks through the server's gRPC API from inside the container, as Airflow would over the network. */
function runTasks(...tasks: string[]): Record<string, { exitCode: number; output: string }> {
    const client = [
        "import json, sys, grpc, executor_pb2 as pb, executor_pb2_grpc as rpc",
        `tls = "${platform.tls.dir}/"`,
        `creds = grpc.ssl_channel_credentials(*(open(tls + f, "rb").read() for f in ("${platform.tls.caFile}", "${platform.tls.keyFile}", "${platform.tls.certFile}")))`,
        `channel = grpc.secure_channel("127.0.0.1:${platform.ports.executorGrpc}", creds, options=[("grpc.ssl_target_name_override", "${platform.aliases.executor}")])`,
        "stub = rpc.PingServiceStub(channel)",
        "out = {}",
        "for name in sys.argv[1:]:",
        "    r = stub.command(pb.ExeTask(command=name), timeout=60)",
        "    out[name] = {'exitCode': r.exit_code, 'output': open(r.log_path).read()}",
        "print(json.dumps(out))",
    ].join("\n");
    return JSON.parse(docker("exec", container, "python", "-c", client, ...tasks));
}

describe("executor environments in a built image", { timeout: 30 * 60_000 }, () => {
    let root: string;

    before(() => {
        provideImages("debian");
        spawnSync(dockerClient, ["rm", "-f", container]);
        root = contextWithFixture();
    });
    after(() => {
        spawnSync(dockerClient, ["rm", "-f", container]);
        spawnSync(dockerClient, ["rmi", "-f", image]);
        if (root) fs.rmSync(root, { recursive: true, force: true });
    });

    it("runs a task from each of two environments whose pins conflict, each with its own version", async () => {
        const built = buildExecutorImage(path.join(root, "docker"), image, executorBuildArgs(false));
        assert.equal(built.status, 0, built.output.slice(-4000));
        // The executor serves mutual TLS only; this client presents the server's own identity, as its probe does.
        const tlsDir = path.join(root, "tls");
        await writeTlsDir(tlsDir, platform.aliases.executor);
        docker("run", "-d", "--name", container, "-v", `${tlsDir}:${platform.tls.dir}:ro`, image);
        await waitFor("the executor to be healthy", 120_000, () =>
            docker("inspect", "--format", "{{.State.Health.Status}}", container) === "healthy" ? true : undefined,
        );
        const results = runTasks("report_old", "report_new");
        assert.equal(results.report_old.exitCode, 0);
        assert.equal(results.report_new.exitCode, 0);
        assert.match(results.report_old.output, new RegExp(`packaging=21\\.3 prefix=${platform.paths.envs}/iso_old\\b`));
        assert.match(results.report_new.output, new RegExp(`packaging=24\\.2 prefix=${platform.paths.envs}/iso_new\\b`));
    });

    it("fails the build at once when a conda environment's channel cannot be reached, naming both", () => {
        const conda = path.join(root, "docker", "executor", "envs", "conda_probe");
        fs.mkdirSync(conda);
        const channel = "http://127.0.0.1:9/conda-forge";
        fs.writeFileSync(path.join(conda, "environment.yml"), `name: conda_probe\nchannels:\n  - ${channel}\ndependencies:\n  - python=${platform.pythonMinor}\n`);
        const built = buildExecutorImage(path.join(root, "docker"), `${image}-conda`, executorBuildArgs(false));
        assert.notEqual(built.status, 0);
        assert.match(built.output, new RegExp(`env conda_probe uses conda \\(environment\\.yml\\) but its channel ${channel} cannot be reached`));
    });
});
