// The harness against the real Docker engine, driving the fixture program through its config
// knobs. Each test copies the fixture into the gitignored .e2e/ folder (so a test may edit files
// and module resolution still finds the repo's node_modules) and destroys what it created.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import {
    type HarnessOptions,
    changed,
    destroy,
    outputValues,
    preview,
    purgeRetained,
    up,
} from "../../../e2e/harness";
import { platform } from "../../../platform";
import { provideImages } from "../platform";
import { docker, exists, expectFailure } from "./support";

const repo = path.resolve(__dirname, "..", "..", "..");
const fixture = path.join(__dirname, "fixtures", "basic");
const urn = (type: string, name: string) => `urn:pulumi:test::fixture::${type}::${name}`;
const serverUrn = urn("docker:index/container:Container", "server");
const jobUrn = urn("docker:index/container:Container", "job");

interface Project {
    options(...config: string[]): HarnessOptions;
    dir: string;
    prefix: string;
    markerDir: string;
}

const projects: Project[] = [];

function project(): Project {
    const prefix = `h5t${randomBytes(3).toString("hex")}`;
    const dir = path.join(repo, ".e2e", "fixtures", prefix);
    fs.cpSync(fixture, dir, { recursive: true });
    const markerDir = path.join(dir, "markers");
    fs.mkdirSync(markerDir);
    const base = [`prefix=${prefix}`, `markerDir=${markerDir}`, `image=${platform.images.debian}`];
    const p = {
        dir,
        prefix,
        markerDir,
        options: (...config: string[]) => ({ projectDir: dir, stack: "test", config: [...base, ...config], logStream: "ignore" as const }),
    };
    projects.push(p);
    return p;
}

function containerId(name: string): string {
    return docker("inspect", "-f", "{{.Id}}", name);
}

before(() => provideImages("debian"));

after(async () => {
    const failures: string[] = [];
    for (const p of projects) {
        for (const step of [() => destroy(p.options("protect=false")), () => purgeRetained(p.options())]) {
            await step().catch((err: Error) => failures.push(`${p.prefix}: ${err.message}`));
        }
        // The provider's Image delete leaves the image in the engine's store; tests remove theirs.
        if (exists("image", `${p.prefix}-image:latest`)) {
            docker("rmi", `${p.prefix}-image:latest`);
        }
        fs.rmSync(p.dir, { recursive: true, force: true });
    }
    assert.deepEqual(failures, [], "cleanup left resources behind");
});

describe("harness on the real Docker engine", () => {
    it("creates everything, then a second up of unchanged inputs changes nothing", async () => {
        const p = project();
        const first = await up(p.options());
        assert.equal(first.counts.create, 7);
        const outputs = outputValues(first);
        assert.equal(outputs.jobExitCode, 0);
        assert.match(String(outputs.jobLogs), /hello from job/);
        assert.match(String(outputs.jobLogs), /server/, "the job resolves the server's network alias");
        assert.equal(String(outputs.passwordValue).length, 20);
        assert.ok(fs.existsSync(String(outputs.markerPath)), "the dynamic provider's create ran");
        assert.equal(docker("inspect", "-f", "{{.State.Health.Status}}", `${p.prefix}-server`), "healthy");
        const id = containerId(`${p.prefix}-server`);

        const second = await up(p.options());
        assert.deepEqual(changed(second), {});
        assert.equal(second.counts.same, 7);
        assert.equal(containerId(`${p.prefix}-server`), id, "no container was touched");
        assert.equal(outputValues(second).passwordValue, outputs.passwordValue, "the password is kept");
    });

    it("keeps secret outputs tagged in the summary", async () => {
        const p = project();
        const summary = await up(p.options());
        const raw = summary.outputs.passwordValue as Record<string, unknown>;
        assert.equal(raw["4dabf18193072939515e22adb298388d"], "1b47061264138c4ac30d75fd1eb44270");
    });

    it("previews a replacement without touching the engine, then applies it delete-before-replace", async () => {
        const p = project();
        await up(p.options());
        const before = containerId(`${p.prefix}-server`);

        const plan = await preview(p.options("variant=b"));
        assert.deepEqual(changed(plan), { [serverUrn]: "replace" });
        assert.equal(containerId(`${p.prefix}-server`), before);

        const applied = await up(p.options("variant=b"));
        assert.deepEqual(changed(applied), { [serverUrn]: "replace" });
        assert.notEqual(containerId(`${p.prefix}-server`), before);
        assert.match(docker("inspect", "-f", "{{.Config.Env}}", `${p.prefix}-server`), /VARIANT=b/);
    });

    it("create-before-delete of a fixed-name container fails on the name, keeping the old one", async () => {
        const p = project();
        await up(p.options());
        const before = containerId(`${p.prefix}-server`);
        await expectFailure(up(p.options("variant=c", "deleteBeforeReplace=false")), /already in use/);
        assert.equal(containerId(`${p.prefix}-server`), before, "the live container is untouched");
        const again = await up(p.options());
        assert.deepEqual(changed(again), {}, "state still records the old container as live");
    });

    it("gives an auto-named resource's replacement a fresh name, created before the old one is deleted", async () => {
        const p = project();
        const scratchUrn = urn("docker:index/volume:Volume", "scratch");
        const first = String(outputValues(await up(p.options("scratchLabel=a"))).scratchName);
        assert.match(first, /^scratch-[0-9a-f]{7}$/);
        const unchanged = await up(p.options("scratchLabel=a"));
        assert.equal(outputValues(unchanged).scratchName, first, "an unchanged up keeps the name");

        const replaced = await up(p.options("scratchLabel=b"));
        assert.deepEqual(changed(replaced), { [scratchUrn]: "replace" });
        const second = String(outputValues(replaced).scratchName);
        assert.match(second, /^scratch-[0-9a-f]{7}$/);
        assert.notEqual(second, first, "a fresh name, so both can exist at once");
        assert.ok(exists("volume", second));
        assert.ok(!exists("volume", first), "the old one is deleted after");
    });

    it("updates an updatable input in place", async () => {
        const p = project();
        await up(p.options());
        const before = containerId(`${p.prefix}-server`);
        const summary = await up(p.options("restart=always"));
        assert.deepEqual(changed(summary), { [serverUrn]: "update" });
        assert.equal(containerId(`${p.prefix}-server`), before);
        assert.equal(docker("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", before), "always");
    });

    it("diffs a healthcheck against what the provider stored: \"60s\" is stored as \"1m0s\" and replaces on every up", async () => {
        const p = project();
        await up(p.options("startPeriod=60s", "replaceOnHealthcheck=true"));
        const first = containerId(`${p.prefix}-server`);
        const again = await up(p.options("startPeriod=60s", "replaceOnHealthcheck=true"));
        assert.deepEqual(changed(again), { [serverUrn]: "replace" }, "the real engine replaces here");
        assert.notEqual(containerId(`${p.prefix}-server`), first);

        await up(p.options("startPeriod=1m0s", "replaceOnHealthcheck=true"));
        const canonical = containerId(`${p.prefix}-server`);
        assert.deepEqual(changed(await up(p.options("startPeriod=1m0s", "replaceOnHealthcheck=true"))), {});
        assert.equal(containerId(`${p.prefix}-server`), canonical, "the canonical spelling is a no-op");
    });

    it("deletes resources the program no longer declares", async () => {
        const p = project();
        await up(p.options());
        assert.ok(exists("container", `${p.prefix}-job`));
        const summary = await up(p.options("withJob=false"));
        assert.deepEqual(changed(summary), { [jobUrn]: "delete" });
        assert.ok(!exists("container", `${p.prefix}-job`));
    });

    it("surfaces a one-shot container's non-zero exit code without failing", async () => {
        const p = project();
        const summary = await up(p.options("jobExit=3"));
        assert.equal(outputValues(summary).jobExitCode, 3);
        assert.match(String(outputValues(summary).jobLogs), /hello from job/);
    });

    it("fails a container that never becomes healthy within waitTimeout, and destroy cleans it up", async () => {
        const p = project();
        const err = await expectFailure(up(p.options("healthy=false", "waitTimeout=3")), /healthy state within waitTimeout 3s/);
        assert.ok(err.summary.errors.some((e) => e.startsWith(serverUrn)));
        assert.ok(exists("container", `${p.prefix}-server`), "the half-created container is in state");
        await destroy(p.options());
        assert.ok(!exists("container", `${p.prefix}-server`));
    });

    it("rejects an input the harness does not implement, naming resource, type and path", async () => {
        const p = project();
        await expectFailure(up(p.options("unimplemented=true")), /Container::server: resource type docker:index\/container:Container sets input\(s\) the harness does not implement: privileged/);
        assert.ok(!exists("container", `${p.prefix}-server`), "nothing was created for it");
    });

    it("retainOnDelete keeps the volume through destroy; purgeRetained removes it", async () => {
        const p = project();
        const created = await up(p.options());
        const marker = String(outputValues(created).markerPath);
        const summary = await destroy(p.options());
        assert.equal(summary.counts.delete, 7);
        assert.ok(!exists("container", `${p.prefix}-server`));
        assert.ok(!exists("network", `${p.prefix}-net`));
        assert.ok(!fs.existsSync(marker), "the dynamic provider's delete ran");
        assert.ok(exists("volume", `${p.prefix}-data`), "the retained volume is still there");
        await purgeRetained(p.options());
        assert.ok(!exists("volume", `${p.prefix}-data`));
    });

    it("protect makes destroy fail without deleting anything", async () => {
        const p = project();
        await up(p.options("protect=true"));
        await expectFailure(destroy(p.options("protect=true")), /protected/);
        assert.ok(exists("container", `${p.prefix}-server`));
        assert.ok(exists("network", `${p.prefix}-net`));
        await up(p.options("protect=false"));
        await destroy(p.options());
        assert.ok(!exists("network", `${p.prefix}-net`));
    });

    it("builds an image; a changed build context rebuilds it and replaces the container using it", async () => {
        const p = project();
        const first = await up(p.options("buildImage=true"));
        const imageUrn = urn("docker:index/image:Image", "image");
        assert.ok(first.metrics[imageUrn].buildSeconds > 0);
        assert.ok(first.metrics[imageUrn].imageBytes > 0);
        const digest = String(outputValues(first).imageDigest);
        assert.match(digest, /^sha256:/);
        assert.equal(docker("inspect", "-f", "{{.Config.User}}", `${p.prefix}-server`), "1000");

        assert.deepEqual(changed(await up(p.options("buildImage=true"))), {});
        fs.writeFileSync(path.join(p.dir, "image", "marker.txt"), "v2\n");
        const second = await up(p.options("buildImage=true"));
        assert.deepEqual(changed(second), { [imageUrn]: "update", [serverUrn]: "replace" });
        assert.notEqual(outputValues(second).imageDigest, digest);
        assert.equal(docker("exec", `${p.prefix}-server`, "cat", "/opt/marker.txt"), "v2");
    });
});
