import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { healthcheckSpec, probeDefaults } from "../../lib/containers";
import { apiAtLeast, dockerApiVersion, engineAddress, startIntervalApiVersion } from "../../lib/dockerEngine";

/** An HTTP server on a unix socket answering /version with `body`, as the engine does. */
async function fakeEngine(body: string): Promise<{ host: string; close: () => Promise<void> }> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-engine-"));
    const socketPath = path.join(dir, "docker.sock");
    const server = http.createServer((req, res) => {
        res.writeHead(req.url === "/version" ? 200 : 404, { "content-type": "application/json" });
        res.end(req.url === "/version" ? body : "{}");
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    return {
        host: `unix://${socketPath}`,
        close: () => new Promise<void>((resolve) => server.close(() => (fs.rmSync(dir, { recursive: true, force: true }), resolve()))),
    };
}

describe("the Docker engine the stack deploys to", () => {
    const closers: (() => Promise<void>)[] = [];
    after(async () => Promise.all(closers.map((close) => close())));

    it("is asked where the docker provider connects: DOCKER_HOST, else the default socket", () => {
        assert.deepEqual(engineAddress(undefined), { socketPath: "/var/run/docker.sock" });
        assert.deepEqual(engineAddress("unix:///run/user/1000/docker.sock"), { socketPath: "/run/user/1000/docker.sock" });
        assert.deepEqual(engineAddress("tcp://10.0.0.5:2375"), { url: "http://10.0.0.5:2375" });
        assert.equal(engineAddress("ssh://me@build-host"), undefined);
    });

    it("reads the engine's API version from /version", async () => {
        for (const version of ["1.41", "1.44"]) {
            const engine = await fakeEngine(JSON.stringify({ Version: "x", ApiVersion: version }));
            closers.push(engine.close);
            assert.equal(await dockerApiVersion(engine.host), version);
        }
    });

    it("answers undefined, not an error, when the engine cannot be asked", async () => {
        assert.equal(await dockerApiVersion(`unix://${path.join(os.tmpdir(), "vpe-no-such-engine.sock")}`), undefined);
        assert.equal(await dockerApiVersion("ssh://me@build-host"), undefined);
        const garbled = await fakeEngine("not json");
        closers.push(garbled.close);
        assert.equal(await dockerApiVersion(garbled.host), undefined);
    });

    it("has a start interval from API 1.44 (Docker 25) on", () => {
        assert.equal(startIntervalApiVersion, "1.44");
        assert.equal(apiAtLeast("1.41", "1.44"), false); // Docker 20.10
        assert.equal(apiAtLeast("1.43", "1.44"), false);
        assert.equal(apiAtLeast("1.44", "1.44"), true);
        assert.equal(apiAtLeast("1.51", "1.44"), true);
        assert.equal(apiAtLeast("2.0", "1.44"), true);
        assert.equal(apiAtLeast(undefined, "1.44"), false);
        assert.equal(apiAtLeast("unknown", "1.44"), false);
    });
});

describe("healthcheckSpec (what the provider is given)", () => {
    const probe = { test: ["CMD", "true"], intervalSeconds: 3 };

    it("sets a start interval only where the engine has one: older engines read it back as 0s, a change on every up", () => {
        assert.equal(healthcheckSpec(probe, true).startInterval, "1s");
        assert.ok(!("startInterval" in healthcheckSpec(probe, false)));
    });

    it("writes durations as the provider stores them, with the shared defaults for what a probe leaves out", () => {
        assert.deepEqual(healthcheckSpec(probe, false), {
            tests: ["CMD", "true"],
            interval: "3s",
            timeout: `${probeDefaults.timeoutSeconds}s`,
            retries: probeDefaults.retries,
            startPeriod: `${probeDefaults.startPeriodSeconds}s`,
        });
    });
});
