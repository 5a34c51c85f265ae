// The whole program under mocks, for both environment files.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConfig } from "../config";
import { buildPlatform } from "../lib/dockerEngine";
import { formatGoDuration, parseGoDuration } from "../e2e/harness/handlers/container";
import { platform } from "../platform";
import { byType, dynamicNamed, filesOf, isSecret, named, reveal, runStack, types, type StackRun } from "./support/stack";
import { mockPassword, mockPem } from "./support/mockProviders";
import { stackConfig } from "./support/stackConfig";

type Container = {
    name: string;
    attach?: boolean;
    restart?: string;
    wait?: boolean;
    healthcheck?: { tests: string[]; interval?: string; timeout?: string; startPeriod?: string; startInterval?: string };
    networksAdvanced?: { name: string; aliases?: string[] }[];
    ports?: { internal: number; external: number; ip: string }[];
    envs?: unknown[];
};

function containers(run: StackRun) {
    return byType(run, types.container).map((r) => ({ resource: r, inputs: r.inputs as unknown as Container }));
}

for (const stack of ["dev", "prod"]) {
    describe(`${stack} stack`, () => {
        const run = runStack(stack);
        const config = parseConfig(stackConfig(stack), stack);
        const prefix = config.namePrefix;

        it("evaluates without error", () => {
            assert.equal(run.error, undefined);
            console.log(`# ${stack}: ${run.resources.length} resources evaluated in ${run.evaluationMs.toFixed(0)} ms`);
        });

        it("exports no undefined value (Pulumi warns about each one on every up)", () => {
            const undefinedOutputs = Object.entries(run.outputs).filter(([, o]) => o.known && o.value === undefined).map(([k]) => k);
            assert.deepEqual(undefinedOutputs, []);
            assert.equal(run.outputs.executorHostAddress.value, config.executor.hostPort === undefined ? null : `${config.bindAddress}:${config.executor.hostPort}`);
        });

        it("declares the expected resource graph", () => {
            const names = new Set(run.resources.map((r) => r.name));
            const expected = [
                `${prefix}-net`,
                `${prefix}-logs`,
                `${prefix}-logs-init`,
                `${prefix}-buffer`,
                `${prefix}-buffer-init`,
                `${prefix}-postgres`,
                `${prefix}-postgres-data`,
                `${prefix}-postgresql`,
                `${prefix}-warehouse-migrations`,
                `${prefix}-executor`,
                `${prefix}-executor-image`,
                `${prefix}-spark-master`,
                `${prefix}-spark-image`,
                `${prefix}-airflow-image`,
                `${prefix}-airflow-init`,
                ...["api-server", "scheduler", "dag-processor", "triggerer"].map((s) => `${prefix}-airflow-${s}`),
                ...Array.from({ length: config.spark.workers }, (_, i) => `${prefix}-spark-worker-${i + 1}`),
                ...Array.from({ length: config.airflow.celeryWorkers }, (_, i) => `${prefix}-airflow-worker-${i + 1}`),
            ];
            for (const name of expected) assert.ok(names.has(name), `missing ${name}`);
            assert.equal(byType(run, types.network).length, 1);
            const workers = containers(run).filter((c) => c.inputs.name.includes("spark-worker"));
            assert.equal(workers.length, config.spark.workers);
            assert.equal(names.has(`${prefix}-redis`), config.airflow.executor === "CeleryExecutor");
        });

        it("names every resource explicitly with the stack prefix", () => {
            for (const r of run.resources) {
                assert.ok(r.name.startsWith(`${prefix}`), `${r.type} ${r.name} lacks the prefix`);
                const inputName = (r.inputs as { name?: string }).name;
                if ([types.container, types.network, types.volume].includes(r.type)) {
                    assert.equal(inputName, r.name, `${r.name} must set its engine name explicitly`);
                }
            }
        });

        it("healthchecks, restarts and networks every long-running container, and waits for it", () => {
            const longRunning = containers(run).filter((c) => !c.inputs.attach);
            assert.ok(longRunning.length >= 7);
            for (const { resource, inputs } of longRunning) {
                assert.ok(inputs.healthcheck?.tests?.length, `${inputs.name} has no healthcheck`);
                assert.equal(inputs.restart, "unless-stopped", `${inputs.name} restart`);
                assert.equal(inputs.wait, true, `${inputs.name} wait`);
                const nets = inputs.networksAdvanced ?? [];
                assert.equal(nets.length, 1, `${inputs.name} networks`);
                assert.equal(nets[0].name, `${prefix}-net`);
                assert.ok(nets[0].aliases?.length, `${inputs.name} has no alias`);
                assert.deepEqual(resource.options.replaceOnChanges, ["healthcheck"], `${inputs.name} replaceOnChanges`);
                assert.equal(resource.options.deleteBeforeReplace, true, `${inputs.name} deleteBeforeReplace`);
            }
        });

        it("writes every healthcheck duration as the provider stores it, so an unchanged up is a no-op", () => {
            for (const { inputs } of containers(run)) {
                const { interval, timeout, startPeriod, startInterval } = inputs.healthcheck ?? {};
                for (const [field, value] of Object.entries({ interval, timeout, startPeriod, startInterval })) {
                    if (value === undefined) continue;
                    const stored = formatGoDuration(parseGoDuration(value, field));
                    assert.equal(value, stored, `${inputs.name} healthcheck.${field} "${value}" is stored as "${stored}"`);
                }
            }
        });

        it("caps swap at the memory limit wherever a memory limit is set (else the engine doubles it: a diff on every up)", () => {
            for (const { inputs } of containers(run)) {
                const { memory, memorySwap } = inputs as { memory?: number; memorySwap?: number };
                assert.equal(memorySwap, memory, `${inputs.name} memorySwap`);
            }
        });

        it("builds every image for an explicit platform (else the provider warns on every up)", () => {
            const images = byType(run, types.image);
            assert.ok(images.length >= 3);
            for (const image of images) {
                assert.equal((image.inputs as { build: { platform?: string } }).build.platform, buildPlatform(), image.name);
            }
        });

        it("gives each service its stable alias", () => {
            const aliases = new Set(containers(run).flatMap((c) => c.inputs.networksAdvanced?.flatMap((n) => n.aliases ?? []) ?? []));
            for (const alias of ["postgres", "executor", "sparkMaster", "airflowApiServer", "airflowScheduler", "airflowDagProcessor", "airflowTriggerer"] as const) {
                assert.ok(aliases.has(platform.aliases[alias]), `alias ${platform.aliases[alias]}`);
            }
        });

        it("publishes only the configured ports, on the bind address", () => {
            const published = containers(run).flatMap((c) => (c.inputs.ports ?? []).map((p) => ({ ...p, container: c.inputs.name })));
            const expectedHostPorts = [config.postgres.hostPort, config.airflow.hostPort, config.spark.masterUiHostPort];
            if (config.executor.hostPort) expectedHostPorts.push(config.executor.hostPort);
            if (config.metrics.enabled) expectedHostPorts.push(config.metrics.hostPort);
            assert.deepEqual(published.map((p) => p.external).sort(), expectedHostPorts.sort());
            for (const port of published) {
                assert.equal(port.ip, "127.0.0.1", `${port.container} publishes on ${port.ip}`);
            }
        });

        it("marks every credential secret: inputs, generated values and outputs", () => {
            for (const c of containers(run)) {
                const envs = reveal<string[]>(c.inputs.envs) ?? [];
                const credentials = envs.filter((e) => /PASSWORD=|SQL_ALCHEMY_CONN=|FERNET_KEY=|JWT_SECRET=|SECRET_KEY=|BROKER_URL=|_URL=postgres/.test(e));
                if (credentials.length > 0) {
                    assert.ok(isSecret(c.inputs.envs), `${c.inputs.name}: ${credentials.map((e) => e.split("=")[0])} not secret`);
                }
            }
            const provider = byType(run, types.pgProvider)[0];
            assert.ok(isSecret(provider.inputs.password), "postgresql provider password");
            for (const role of dynamicNamed(run, "role")) {
                assert.ok(isSecret(role.inputs.password), `role ${role.name} password`);
            }
            const migrations = named(run, `${prefix}-warehouse-migrations`);
            assert.ok(isSecret(migrations.inputs.password), "migrations password");
            for (const key of ["airflowAdminPassword", "postgresAdminPassword", "warehouseWriterUrl", "warehouseAnalystUrl", "airflowDatabaseUrl"]) {
                assert.ok(run.outputs[key], `output ${key}`);
                assert.equal(run.outputs[key].secret, true, `output ${key} is not secret`);
            }
        });

        it("puts no generated secret in any container's environment, command, labels or healthcheck: they are files", () => {
            const generated = [
                ...byType(run, types.password).map((g) => mockPassword(g.name, Number(g.inputs.length))),
                ...byType(run, types.bytes).map((b) => Buffer.alloc(Number(b.inputs.length), 0xfb).toString("base64").slice(0, 20)),
                ...byType(run, types.tlsKey).map((k) => mockPem("EC PRIVATE KEY", k.name)),
            ];
            assert.ok(generated.length >= 8, "the stack generates its credentials");
            for (const c of containers(run)) {
                const visible = JSON.stringify(
                    ["envs", "command", "entrypoints", "labels", "healthcheck"].map((k) => reveal(c.inputs[k as keyof typeof c.inputs])),
                );
                for (const value of generated) {
                    assert.ok(!visible.includes(value), `${c.inputs.name}: a generated secret in what docker inspect shows`);
                }
                for (const [path, file] of filesOf(run, c.resource.name)) {
                    if (path.startsWith(platform.paths.secrets) || path.endsWith(platform.tls.keyFile)) {
                        // Root-owned, read by group 0 alone: the container's user must be in it.
                        assert.deepEqual([file.secret, file.permissions, file.owner], [true, "0440", ":"], `${c.inputs.name}: ${path}`);
                        const inputs = c.inputs as { user?: string; groupAdds?: string[] };
                        assert.ok(inputs.user?.endsWith(":0") || inputs.groupAdds?.includes("0"), `${c.inputs.name} cannot read ${path}`);
                    }
                }
            }
        });

        it("keeps generated and literal passwords out of every non-secret input", () => {
            const plain = JSON.stringify(run.resources.map((r) => r.inputs), (_k, v) => (isSecret(v) ? "<secret>" : v));
            for (const generator of byType(run, types.password)) {
                const value = mockPassword(generator.name, Number(generator.inputs.length));
                assert.ok(!plain.includes(value), `${generator.name} leaked into a non-secret input`);
            }
            assert.doesNotMatch(plain, /123456|admin:admin/);
        });

        it("exports what a user needs to reach each service", () => {
            const o = run.outputs;
            assert.equal(o.airflowUrl.value, `http://127.0.0.1:${config.airflow.hostPort}`);
            assert.equal(o.airflowAdminUser.value, config.airflow.adminUser);
            assert.equal(o.sparkMasterUrl.value, "spark://spark-master:7077");
            assert.equal(o.sparkUiUrl.value, `http://127.0.0.1:${config.spark.masterUiHostPort}`);
            assert.equal(o.executorAddress.value, `executor:${platform.ports.executorGrpc}`);
            assert.equal(o.postgresHost.value, "127.0.0.1");
            assert.equal(o.postgresPort.value, config.postgres.hostPort);
            assert.deepEqual(o.databases.value, platform.databases);
            assert.equal(o.networkName.value, `${prefix}-net`);
            assert.equal(o.logVolumeName.value, `${prefix}-logs`);
            assert.equal(o.postgresDataVolumeName.value, `${prefix}-postgres-data`);
            assert.match(String(o.warehouseAnalystUrl.value), new RegExp(`^postgresql://analyst:.+@127\\.0\\.0\\.1:${config.postgres.hostPort}/landslide_warehouse$`));
        });

        it("keeps data volumes on destroy, not the project content it copies in nor the metrics maintenance derives", () => {
            const content = [`${prefix}-dags`, `${prefix}-data`, `${prefix}-metrics`];
            for (const v of byType(run, types.volume)) {
                assert.equal(v.options.retainOnDelete ?? false, !content.includes(v.name), `${v.name}: retainOnDelete`);
            }
        });

        it("mounts no path of the machine running Pulumi into any container: the one host path is the engine's own socket, on the engine's host", () => {
            const binds = byType(run, types.container).flatMap((c) =>
                ((c.inputs.volumes as { hostPath?: string; containerPath: string; readOnly?: boolean }[] | undefined) ?? [])
                    .filter((v) => v.hostPath !== undefined)
                    .map((v) => ({ container: c.name, ...v })),
            );
            const exporter = `${prefix}-${platform.aliases.containerExporter}`;
            const socket = { container: exporter, hostPath: "/var/run/docker.sock", containerPath: platform.paths.engineSocket, readOnly: true };
            assert.deepEqual(binds, byType(run, types.container).some((c) => c.name === exporter) ? [socket] : []);
        });

        it("has no side effect of its own in preview", () => {
            const preview = runStack(stack, { preview: true });
            assert.equal(preview.error, undefined);
            assert.deepEqual(preview.sideEffects, []);
            assert.equal(preview.resources.length, run.resources.length);
        });
    });
}

describe("dev and prod side by side", () => {
    const dev = runStack("dev");
    const prod = runStack("prod");

    it("share no resource name, engine name or host port", () => {
        const engineNames = (run: StackRun) =>
            new Set(run.resources.map((r) => (r.inputs as { name?: string; imageName?: string }).name ?? (r.inputs as { imageName?: string }).imageName).filter(Boolean));
        const devNames = new Set(dev.resources.map((r) => r.name));
        for (const r of prod.resources) assert.ok(!devNames.has(r.name), `resource ${r.name} in both`);
        const shared = [...engineNames(prod)].filter((n) => engineNames(dev).has(n));
        // Upstream images are pulled once and shared; role/database names live in separate servers.
        const allowed = new Set([...Object.values(platform.images), ...Object.values(platform.databases), "airflow", "pipeline_writer", "analyst"]);
        assert.deepEqual(shared.filter((n) => !allowed.has(String(n))), []);
        const hostPorts = (run: StackRun) =>
            containers(run).flatMap((c) => (c.inputs.ports ?? []).map((p) => p.external));
        const devPorts = new Set(hostPorts(dev));
        assert.deepEqual(hostPorts(prod).filter((p) => devPorts.has(p)), []);
    });
});

describe("invalid config", () => {
    it("stops before any resource is registered, naming each bad key", () => {
        const run = runStack("dev", { overrides: { "vpe:spark": '{"workers": -2, "workerMemory": "big"}' } });
        assert.match(run.error ?? "", /vpe:spark\.workers/);
        assert.match(run.error ?? "", /vpe:spark\.workerMemory/);
        assert.equal(run.resources.length, 0);
    });
});
