import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { contentFiles, syncScript } from "../../components/contentVolume";
import { projectRoot } from "../../platform";
import { named, runStack } from "../support/stack";

function tree(root: string, files: Record<string, string>): void {
    for (const [name, text] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
        fs.writeFileSync(path.join(root, name), text);
    }
}

function listing(root: string): Record<string, string> {
    const out: Record<string, string> = {};
    const walk = (dir: string) => {
        for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
            const rel = path.posix.join(dir, e.name);
            if (e.isDirectory()) walk(rel);
            else out[rel] = `${(fs.statSync(path.join(root, rel)).mode & 0o777).toString(8)} ${fs.readFileSync(path.join(root, rel), "utf8")}`;
        }
    };
    walk(".");
    return out;
}

describe("ContentVolume", () => {
    it("lists a folder's files with their hashes, sorted, leaving out caches and bytecode", () => {
        const root = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-content-"));
        try {
            tree(root, { "dags/b.py": "b", "dags/.airflowignore": "x", "dags/pkg/a.py": "a", "dags/pkg/__pycache__/a.cpython-311.pyc": "", "dags/c.pyc": "" });
            assert.deepEqual(contentFiles("dags", root), [
                { relative: ".airflowignore", source: "dags/.airflowignore", sha256: crypto.createHash("sha256").update("x").digest("hex") },
                { relative: "b.py", source: "dags/b.py", sha256: crypto.createHash("sha256").update("b").digest("hex") },
                { relative: "pkg/a.py", source: "dags/pkg/a.py", sha256: crypto.createHash("sha256").update("a").digest("hex") },
            ]);
        } finally {
            fs.rmSync(root, { recursive: true, force: true });
        }
    });

    it("syncs a volume to the folder: new and changed files in, read-only; files and folders it no longer has out", () => {
        const root = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-sync-"));
        try {
            const [staging, volume] = [path.join(root, "content"), path.join(root, "volume")];
            tree(staging, { "ingestion.py": "new", "vpe_dags/platform.py": "p" });
            tree(volume, { "ingestion.py": "old", "removed.py": "gone", "old_pkg/x.py": "gone" });
            const out = execFileSync("sh", ["-ec", syncScript(staging, volume)], { encoding: "utf8" });
            assert.equal(out.trim(), "synced 2 files");
            assert.deepEqual(listing(volume), { "ingestion.py": "444 new", "vpe_dags/platform.py": "444 p" });
            // Running again changes nothing.
            execFileSync("sh", ["-ec", syncScript(staging, volume)]);
            assert.deepEqual(listing(volume), { "ingestion.py": "444 new", "vpe_dags/platform.py": "444 p" });
        } finally {
            fs.rmSync(root, { recursive: true, force: true });
        }
    });

    it("uploads every DAG and sample file from the project, by path and hash, so an edit replaces the sync container alone", () => {
        const dev = runStack("dev");
        for (const [volume, dir] of [["vpe-dev-dags", "dags"], ["vpe-dev-data", "data/fixtures"]]) {
            const sync = named(dev, `${volume}-sync`).inputs as { uploads: { file: string; source: string; sourceHash: string }[]; volumes: { volumeName: string }[] };
            const expected = contentFiles(dir);
            assert.ok(expected.length >= 2, dir);
            assert.deepEqual(
                sync.uploads.map((u) => [u.file, u.source, u.sourceHash]),
                expected.map((f) => [`/content/${f.relative}`, f.source, f.sha256]),
            );
            for (const f of expected) assert.ok(fs.existsSync(path.join(projectRoot, f.source)), f.source);
            assert.deepEqual(sync.volumes.map((v) => v.volumeName), [volume]);
        }
    });
});
