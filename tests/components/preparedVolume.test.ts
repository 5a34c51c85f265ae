import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { prepareScript } from "../../components/preparedVolume";
import { platform } from "../../platform";
import { named, runStack, types } from "../support/stack";

const logArgs = { subdirs: platform.logSubdirs, owner: platform.users.airflow, mode: "2775" };

describe("PreparedVolume", () => {
    const run = runStack("dev");

    it("creates the named volume, kept on destroy, and an init container running the script as root", () => {
        const volume = named(run, "vpe-dev-logs");
        assert.equal(volume.type, types.volume);
        assert.equal(volume.options.retainOnDelete, true);
        const init = named(run, "vpe-dev-logs-init").inputs as { user: string; command: string[]; attach: boolean; restart: string; volumes: { volumeName: string; containerPath: string }[] };
        assert.equal(init.user, "0:0");
        assert.equal(init.attach, true);
        assert.equal(init.restart, "no");
        assert.deepEqual(init.command.slice(0, 2), ["sh", "-ec"]);
        assert.equal(init.command[2], prepareScript(logArgs));
        assert.deepEqual(init.volumes.map((v) => v.volumeName), ["vpe-dev-logs"]);
    });

    it("deletes volumes with the stack only when the user asks for it", () => {
        const purge = runStack("dev", { overrides: { "vpe:deleteDataOnDestroy": "true" } });
        assert.equal(named(purge, "vpe-dev-logs").options.retainOnDelete, false);
        assert.equal(named(purge, "vpe-dev-postgres-data").options.retainOnDelete, false);
    });

    it("stops the update when the init container fails, naming it and quoting its output", () => {
        const failed = runStack("dev", { failingContainers: ["vpe-dev-logs-init"] });
        assert.match(failed.error ?? "", /vpe-dev-logs-init exited with code 3/);
        assert.match(failed.error ?? "", /migration failed/);
        const consumers = failed.resources.filter((r) => JSON.stringify(r.inputs).includes('"vpe-dev-logs"') && r.type === types.container);
        assert.deepEqual(consumers.map((r) => r.name), ["vpe-dev-logs-init"], "a service mounted the unprepared volume");
    });
});

describe("prepareScript, run for real", () => {
    it("creates per-service folders owned by uid 50000 group 0, mode 2775, nothing world-writable", { skip: process.getuid?.() !== 0 ? "needs root to chown" : false }, () => {
        const root = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-volume-"));
        try {
            const out = execFileSync("sh", ["-ec", prepareScript(logArgs, root)], { encoding: "utf8" });
            for (const dir of [".", ...platform.logSubdirs]) {
                const stat = fs.statSync(path.join(root, dir));
                assert.equal(stat.uid, 50000, dir);
                assert.equal(stat.gid, 0, dir);
                assert.equal(stat.mode & 0o7777, 0o2775, `${dir} mode ${(stat.mode & 0o7777).toString(8)}`);
            }
            assert.match(out, /airflow 50000:0 2775/);
        } finally {
            fs.rmSync(root, { recursive: true, force: true });
        }
    });

    it("fails when something in the volume is world-writable", { skip: process.getuid?.() !== 0 ? "needs root to chown" : false }, () => {
        const root = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-volume-"));
        try {
            fs.writeFileSync(path.join(root, "left-by-chmod-777"), "");
            fs.chmodSync(path.join(root, "left-by-chmod-777"), 0o777);
            const result = spawnSync("sh", ["-ec", prepareScript(logArgs, root)], { encoding: "utf8" });
            assert.equal(result.status, 1);
            assert.match(result.stderr, /world-writable/);
        } finally {
            fs.rmSync(root, { recursive: true, force: true });
        }
    });
});
