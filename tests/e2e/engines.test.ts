// Which engine the end-to-end suite uses: the real Pulumi CLI when one is on PATH, else the
// harness; VPE_E2E_ENGINE forces one and names what is missing.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { openStack, pulumiCli, selectEngine } from "../../e2e/engines";

const withCli = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-engines-"));
const withoutCli = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-engines-"));
fs.writeFileSync(path.join(withCli, "pulumi"), "#!/bin/sh\n", { mode: 0o755 });
fs.writeFileSync(path.join(withoutCli, "pulumi"), "not executable\n", { mode: 0o644 });

after(() => {
    for (const dir of [withCli, withoutCli]) fs.rmSync(dir, { recursive: true, force: true });
});

describe("selectEngine", () => {
    it("finds an executable pulumi on PATH, and only an executable one", () => {
        assert.equal(pulumiCli([withoutCli, withCli].join(path.delimiter)), path.join(withCli, "pulumi"));
        assert.equal(pulumiCli(withoutCli), undefined);
    });

    it("uses the real CLI when one is on PATH, the harness otherwise", () => {
        assert.equal(selectEngine({ PATH: withCli }), "pulumi");
        assert.equal(selectEngine({ PATH: withoutCli }), "harness");
    });

    it("VPE_E2E_ENGINE forces an engine", () => {
        assert.equal(selectEngine({ PATH: withCli, VPE_E2E_ENGINE: "harness" }), "harness");
        assert.equal(selectEngine({ PATH: withCli, VPE_E2E_ENGINE: "pulumi" }), "pulumi");
    });

    it("asking for pulumi without a CLI fails, naming what is missing", () => {
        assert.throws(() => selectEngine({ PATH: withoutCli, VPE_E2E_ENGINE: "pulumi" }), /VPE_E2E_ENGINE=pulumi: no `pulumi` executable on PATH/);
    });

    it("rejects an unknown engine name, naming the variable and the choices", () => {
        assert.throws(() => selectEngine({ PATH: withCli, VPE_E2E_ENGINE: "terraform" }), /VPE_E2E_ENGINE: expected "pulumi" or "harness", got "terraform"/);
    });
});

describe("the harness engine", () => {
    it("takes only project:key[.path]=value overrides, as the real engine does", async () => {
        const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-engines-"));
        try {
            const projectDir = path.join(__dirname, "harness", "fixtures", "basic");
            const engine = await openStack("harness", { projectDir, stack: "dev", workDir, namePrefix: "vpe-unit" });
            await assert.rejects(engine.preview(["weather.baseUrl=http://archive"]), /"weather\.baseUrl=http:\/\/archive": expected project:key\[\.path\]=value/);
        } finally {
            fs.rmSync(workDir, { recursive: true, force: true });
        }
    });
});
