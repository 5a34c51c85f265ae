// Unit tests of the harness's pure parts: the fidelity rule, diffing, wire format, config.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { genericDiff } from "../../../e2e/harness/engine";
import { UnimplementedInputError, assertImplemented, unimplementedPaths } from "../../../e2e/harness/fidelity";
import { containerHandler, formatGoDuration, parseGoDuration } from "../../../e2e/harness/handlers/container";
import { generatePassword } from "../../../e2e/harness/handlers/random";
import { differs, serviceHandler, shortDuration } from "../../../e2e/harness/handlers/service";
import { applyOverrides } from "../../../e2e/harness/stackConfig";
import { plainProps, secret, sigKey, wireOutputs, isSecret, resourceSig } from "../../../e2e/harness/wire";

describe("fidelity rule", () => {
    const declared = ["name", "healthcheck.tests[]", "healthcheck.interval", "ports[].internal", "ports[].ip", "labels{}"];

    it("accepts declared deep paths, lists and free-form maps", () => {
        const inputs = {
            name: "x",
            healthcheck: { tests: ["CMD", "true"], interval: "1s" },
            ports: [{ internal: 80, ip: "127.0.0.1" }],
            labels: { anything: "goes", "a.b": "c" },
        };
        assert.deepEqual(unimplementedPaths(inputs, declared), []);
    });

    it("names every undeclared path, including nested ones", () => {
        const inputs = {
            name: "x",
            healthcheck: { tests: ["CMD"], startPeriod: "5s" },
            ports: [{ internal: 80, protocol: "udp" }],
            privileged: true,
        };
        assert.deepEqual(unimplementedPaths(inputs, declared), ["healthcheck.startPeriod", "ports[].protocol", "privileged"]);
    });

    it("ignores unset (undefined/null) inputs", () => {
        assert.deepEqual(unimplementedPaths({ name: "x", privileged: undefined, shmSize: null }, declared), []);
    });

    it("fails with an error naming resource, type and input path", () => {
        assert.throws(
            () => assertImplemented("urn:pulumi:s::p::docker:index/container:Container::web", "docker:index/container:Container", { privileged: true }, declared),
            (err: unknown) =>
                err instanceof UnimplementedInputError &&
                err.message.includes("urn:pulumi:s::p::docker:index/container:Container::web") &&
                err.message.includes("docker:index/container:Container") &&
                err.message.includes("privileged"),
        );
    });

    it("checks the unwrapped value of secret inputs", () => {
        const wire = { name: secret("x"), healthcheck: secret({ tests: ["CMD"], retries: 3 }) };
        assert.deepEqual(unimplementedPaths(plainProps(wire), declared), ["healthcheck.retries"]);
    });
});

describe("diff semantics", () => {
    it("unchanged inputs (defaults applied) are the same", () => {
        const olds = { name: "a", image: "i", restart: "no" };
        assert.equal(genericDiff(containerHandler, olds, { name: "a", image: "i" }).verdict, "same");
    });

    it("a ForceNew container input replaces", () => {
        const result = genericDiff(containerHandler, { name: "a", image: "i1" }, { name: "a", image: "i2" });
        assert.deepEqual(result, { verdict: "replace", changed: ["image"] });
    });

    it("an updatable container input updates in place", () => {
        const result = genericDiff(containerHandler, { name: "a", restart: "no" }, { name: "a", restart: "always" });
        assert.deepEqual(result, { verdict: "update", changed: ["restart"] });
    });

    it("a healthcheck edit is an in-place update (kreuzwerker #988), not a replace", () => {
        const result = genericDiff(containerHandler, { healthcheck: { tests: ["CMD", "a"] } }, { healthcheck: { tests: ["CMD", "b"] } });
        assert.equal(result.verdict, "update");
    });
});

describe("wire format", () => {
    it("unwraps secrets and resource references for providers", () => {
        const wire = { a: secret("s"), b: [secret(1)], c: { [sigKey]: resourceSig, urn: "urn:x", id: "id-1" } };
        assert.deepEqual(plainProps(wire), { a: "s", b: [1], c: "id-1" });
    });

    it("marks provider-secret outputs and outputs of secret inputs as secret", () => {
        const out = wireOutputs({ result: "pw", length: 20, name: "n" }, ["result"], { name: secret("n"), length: 20 });
        assert.ok(isSecret(out.result));
        assert.ok(isSecret(out.name));
        assert.equal(out.length, 20);
    });
});

describe("Go durations", () => {
    it("parses compound durations to nanoseconds", () => {
        assert.equal(parseGoDuration("1m30s", "f"), 90e9);
        assert.equal(parseGoDuration("500ms", "f"), 500e6);
        assert.equal(parseGoDuration("0", "f"), 0);
    });

    it("formats nanoseconds as Go's Duration.String() does (what the provider stores)", () => {
        const cases: [number, string][] = [
            [0, "0s"],
            [10e9, "10s"],
            [60e9, "1m0s"],
            [90e9, "1m30s"],
            [3600e9, "1h0m0s"],
            [3661.5e9, "1h1m1.5s"],
            [500e6, "500ms"],
            [1.5e6, "1.5ms"],
            [2e3, "2µs"],
            [7, "7ns"],
        ];
        for (const [ns, text] of cases) {
            assert.equal(formatGoDuration(ns), text, `${ns} ns`);
        }
    });

    it("a stored healthcheck in Go form makes a non-canonical program value a change", () => {
        const olds = { healthcheck: { tests: ["CMD", "true"], startPeriod: "60s" } };
        const outputs = { healthcheck: { tests: ["CMD", "true"], interval: "0s", timeout: "0s", startPeriod: "1m0s", startInterval: "0s", retries: 0 } };
        const stored = containerHandler.stored!(olds, outputs);
        const news = (program: string) => ({ healthcheck: { tests: ["CMD", "true"], interval: "0s", timeout: "0s", startPeriod: program, startInterval: "0s", retries: 0 } });
        assert.deepEqual(genericDiff(containerHandler, stored, news("60s")).changed, ["healthcheck"]);
        assert.equal(genericDiff(containerHandler, stored, news("1m0s")).verdict, "same");
    });

    it("a memory limit without a swap limit is stored with the engine's doubled swap, an update on every up", () => {
        const inputs = { memory: 64 };
        const stored = containerHandler.stored!(inputs, { memory: 64, memorySwap: 128 });
        assert.deepEqual(genericDiff(containerHandler, stored, { memory: 64 }), { verdict: "update", changed: ["memorySwap"] });
        const pinned = containerHandler.stored!({ memory: 64, memorySwap: 64 }, { memory: 64, memorySwap: 64 });
        assert.equal(genericDiff(containerHandler, pinned, { memory: 64, memorySwap: 64 }).verdict, "same");
    });

    it("rejects malformed durations naming the field", () => {
        assert.throws(() => parseGoDuration("10 s", "healthcheck.interval"), /healthcheck\.interval/);
        assert.throws(() => parseGoDuration("10", "healthcheck.timeout"), /healthcheck\.timeout/);
    });
});

describe("swarm service diff (the provider's read against the program's inputs)", () => {
    const ctx = { urn: "urn:svc", name: "svc", cwd: ".", log: () => undefined, metric: () => undefined };
    const digest = `registry:5000/x@sha256:${"a".repeat(64)}`;
    const inputs = {
        name: "svc",
        taskSpec: {
            containerSpec: { image: digest, env: { A: "1", B: "2" }, healthcheck: { tests: ["CMD", "true"], interval: "2s" } },
            networksAdvanceds: [{ id: "n1", aliases: ["a"] }],
            restartPolicy: { condition: "any", delay: "5s", maxAttempts: 0, window: "0s" },
        },
        mode: { replicated: { replicas: 2 } },
        updateConfig: { order: "start-first" },
    };
    // What the read stores: every Computed field filled, env as a map, networks by ID.
    const read = {
        name: "svc",
        taskSpec: {
            containerSpec: { image: digest, env: { B: "2", A: "1" }, healthcheck: { tests: ["CMD", "true"], interval: "2s", timeout: "0s", startPeriod: "0s", retries: 0 }, stopGracePeriod: "0s" },
            networksAdvanceds: [{ id: "n1", aliases: ["a"] }],
            restartPolicy: { condition: "any", delay: "5s", maxAttempts: 0, window: "0s" },
            placement: { maxReplicas: 0 },
            forceUpdate: 0,
        },
        labels: [],
        mode: { replicated: { replicas: 2 } },
        updateConfig: { parallelism: 1, delay: "0s", failureAction: "pause", monitor: "5s", maxFailureRatio: "0.0", order: "start-first" },
        endpointSpec: { mode: "vip", ports: [] },
    };
    const diff = async (news: Record<string, unknown>) => (await serviceHandler.diff!(ctx, "id", read, await serviceHandler.check!(ctx, news, undefined), read))!;

    it("sees nothing where the program left Computed blocks to the provider and env in another order", async () => {
        assert.deepEqual(await diff(inputs), { verdict: "same", changed: [] });
    });

    it("updates for a changed replica count or env value, and a restart-policy field left out", async () => {
        assert.deepEqual((await diff({ ...inputs, mode: { replicated: { replicas: 3 } } })).changed, ["mode"]);
        const env = structuredClone(inputs);
        env.taskSpec.containerSpec.env.B = "3";
        assert.equal((await diff(env)).verdict, "update");
        const partial = structuredClone(inputs) as any;
        partial.taskSpec.restartPolicy = { condition: "any" };
        assert.deepEqual(await diff(partial), { verdict: "update", changed: ["taskSpec"], deleteBeforeReplace: false });
    });

    it("replaces, old one first, for a network given by name (the read knows only IDs)", async () => {
        const byName = structuredClone(inputs) as any;
        byName.taskSpec.networksAdvanceds = [{ name: "net", aliases: ["a"] }];
        assert.deepEqual(await diff(byName), { verdict: "replace", changed: ["taskSpec"], deleteBeforeReplace: true });
    });

    it("refuses an image by tag: the provider would pin it to a digest and update on the next up", async () => {
        const tagged = structuredClone(inputs);
        tagged.taskSpec.containerSpec.image = "registry:5000/x:local";
        await assert.rejects(serviceHandler.check!(ctx, tagged, undefined), /reference the image by digest/);
    });

    it("sees an unchanged secret reference as the same, and a new secret as an in-place update", async () => {
        const withSecret = (secretId: string) => {
            const news = structuredClone(inputs) as any;
            news.taskSpec.containerSpec.secrets = [{ secretId, secretName: `s-${secretId}`, fileName: "/run/x" }];
            return news;
        };
        const stored = structuredClone(read) as any;
        stored.taskSpec.containerSpec.secrets = [{ secretId: "s1", secretName: "s-s1", fileName: "/run/x", fileUid: "0", fileGid: "0", fileMode: 0o444 }];
        const diffStored = async (news: Record<string, unknown>) => serviceHandler.diff!(ctx, "id", stored, await serviceHandler.check!(ctx, news, undefined), stored);
        assert.deepEqual(await diffStored(withSecret("s1")), { verdict: "same", changed: [] });
        assert.deepEqual(await diffStored(withSecret("s2")), { verdict: "update", changed: ["taskSpec"], deleteBeforeReplace: false });
    });

    it("compares lists of blocks as sets and lists of values in order", () => {
        assert.equal(differs([{ id: "b" }, { id: "a" }], [{ id: "a" }, { id: "b" }], "labels"), false);
        assert.equal(differs(["x", "y"], ["y", "x"], "taskSpec.containerSpec.args"), true);
    });

    it("writes durations as the read does: no trailing zero units", () => {
        assert.deepEqual([0, 5e9, 60e9, 90e9, 3600e9].map(shortDuration), ["0s", "5s", "1m", "1m30s", "1h"]);
    });
});

describe("random password", () => {
    it("honours length, disabled classes and minimums", () => {
        for (let i = 0; i < 20; i++) {
            const pw = generatePassword({ length: 12, special: false, minUpper: 3, minNumeric: 2 });
            assert.equal(pw.length, 12);
            assert.match(pw, /^[A-Za-z0-9]+$/);
            assert.ok((pw.match(/[A-Z]/g) ?? []).length >= 3);
            assert.ok((pw.match(/[0-9]/g) ?? []).length >= 2);
        }
    });

    it("rejects minimums longer than the password", () => {
        assert.throws(() => generatePassword({ length: 2, minUpper: 3 }), /length/);
    });
});

describe("config overrides", () => {
    it("sets plain keys in the project namespace and edits structured values by path", () => {
        const config = applyOverrides({ "vpe:postgres": '{"hostPort":5432}' }, ["postgres.hostPort=5433", "flag=true"], "vpe");
        assert.deepEqual(JSON.parse(config["vpe:postgres"]), { hostPort: 5433 });
        assert.equal(config["vpe:flag"], "true");
    });

    it("rejects a malformed override", () => {
        assert.throws(() => applyOverrides({}, ["novalue"], "vpe"), /key=value/);
    });
});
