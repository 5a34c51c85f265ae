// docker.Container `uploads` in the harness, as pulumi-docker 5.2.0 (terraform-provider-docker
// v4.6.0) does them: first the pure parts (the tar entry, the set's canonical form, validation),
// then the fixtures/uploads program against the real Docker engine, where a one-shot container's
// command reports the uploaded files from inside, so they existed before it ran.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { type HarnessOptions, changed, destroy, outputValues, up } from "../../../e2e/harness";
import { buildTar, checkUploads, containerHandler, uploadSetCode } from "../../../e2e/harness/handlers/container";
import { isSecret, unknownValue } from "../../../e2e/harness/wire";
import { platform } from "../../../platform";
import { provideImages } from "../platform";
import { docker, exists, expectFailure } from "./support";

/** Reads a tar archive back: header fields per entry, checksums verified. */
function parseTar(archive: Buffer) {
    const entries = [];
    let offset = 0;
    for (;;) {
        const block = archive.subarray(offset, offset + 512);
        assert.equal(block.length, 512, "archives are whole 512-byte blocks");
        if (block.every((b) => b === 0)) {
            assert.ok(archive.subarray(offset + 512, offset + 1024).every((b) => b === 0), "two zero blocks end it");
            assert.equal(archive.length, offset + 1024, "nothing after the end blocks");
            return entries;
        }
        const str = (start: number, width: number) => block.subarray(start, start + width).toString("utf8").replace(/\0.*$/s, "");
        const oct = (start: number, width: number) => parseInt(str(start, width), 8);
        const unsigned = block.reduce((sum, b, i) => sum + (i >= 148 && i < 156 ? 0x20 : b), 0);
        assert.equal(oct(148, 8), unsigned, "header checksum");
        assert.equal(block.subarray(148, 156).toString("latin1"), `${unsigned.toString(8).padStart(6, "0")}\0 `);
        const size = oct(124, 12);
        entries.push({
            name: str(0, 100),
            mode: oct(100, 8),
            uid: oct(108, 8),
            gid: oct(116, 8),
            size,
            mtime: oct(136, 12),
            typeflag: str(156, 1),
            magic: block.subarray(257, 265).toString("latin1"),
            uname: str(265, 32),
            gname: str(297, 32),
            prefix: str(345, 155),
            data: archive.subarray(offset + 512, offset + 512 + size),
        });
        offset += 512 + Math.ceil(size / 512) * 512;
    }
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const entry = { name: "/run/secrets/db.txt", mode: 0o440, uid: 0, gid: 0, uname: "", gname: "", mtime: 1_700_000_000, data: Buffer.from("hello\n") };

describe("uploads: the tar entry the provider builds", () => {
    it("is one USTAR regular-file entry with the file's path, mode, size, root ids and mtime", () => {
        const archive = buildTar(entry);
        assert.equal(archive.length, 2048);
        const [e, ...rest] = parseTar(archive);
        assert.equal(rest.length, 0);
        assert.deepEqual(
            { ...e, data: e.data.toString() },
            {
                name: "/run/secrets/db.txt",
                mode: 0o440,
                uid: 0,
                gid: 0,
                size: 6,
                mtime: 1_700_000_000,
                typeflag: "0",
                magic: "ustar\u000000",
                uname: "",
                gname: "",
                prefix: "",
                data: "hello\n",
            },
        );
        // Byte for byte what Go's archive/tar Writer makes of the same tar.Header (checked with go1.26).
        assert.equal(sha256(archive), "92831b67717738cfb8a2cabf939d65a598ff96da561e3ba94876392abcc0f5a1");
    });

    it("writes header ids and names as given, like Go's writer", () => {
        const archive = buildTar({ ...entry, name: "/var/lib/postgresql/server.key", mode: 0o600, uid: 999, gid: 999, uname: "postgres", gname: "postgres", data: Buffer.from("key") });
        const [e] = parseTar(archive);
        assert.deepEqual([e.uid, e.gid, e.uname, e.gname, e.mode], [999, 999, "postgres", "postgres", 0o600]);
        assert.equal(sha256(archive), "7e4cfe6064c48a5fc1701ee3923d2cf1d85c409d70e3ca60fe4af94660c95bcc");
    });

    it("splits a long ASCII path into USTAR prefix and name at the last slash within 156 bytes, as Go does", () => {
        const name = `/opt/${"a".repeat(74)}/${"b".repeat(76)}/c.pem`;
        const archive = buildTar({ ...entry, name, mode: 0o644, data: Buffer.from([0, 255, 1, 128]) });
        const [e] = parseTar(archive);
        assert.deepEqual([e.prefix, e.name], [`/opt/${"a".repeat(74)}`, `${"b".repeat(76)}/c.pem`]);
        assert.equal(sha256(archive), "997c5efd3810e617ebc6a2be98ae1f92595dc43242ae28f9266e43558a1e0b0a");
    });

    it("puts a non-ASCII path in a PAX extended header, as Go does", () => {
        const archive = buildTar({ ...entry, name: "/etc/ä.txt", mode: 0o744, data: Buffer.alloc(0) });
        const [pax, file] = parseTar(archive);
        assert.equal(pax.typeflag, "x");
        assert.equal(pax.name, "/etc/PaxHeaders.0/.txt");
        assert.equal(pax.data.toString("utf8"), "20 path=/etc/ä.txt\n");
        assert.deepEqual([file.typeflag, file.name, file.size], ["0", "/etc/.txt", 0]);
        assert.equal(sha256(archive), "ce7dd2541288483c65fca7f5768492e7be52de8c2614d926652e9ce75afbb4cf");
    });
});

describe("uploads: the provider's check and set semantics", () => {
    const a = { file: "/run/a.txt", content: "hello", permissions: "0440" };
    const b = { file: "/run/b.bin", contentBase64: "AP8=", executable: true };

    it("hashes each element as terraform-plugin-sdk's HashResource does over v4.5.0's upload schema (CRC-32 values from Go)", () => {
        assert.equal(uploadSetCode(a), "3775892072");
        assert.equal(uploadSetCode(b), "544739565");
        assert.equal(uploadSetCode({ file: "/d", source: "files/d.pem", sourceHash: "abc" }), "3871716980");
        assert.equal(uploadSetCode({ file: "/e", content: "ü" }), "1245263873");
    });

    it("lists the set in its order, so a reordered list, a duplicate or an explicit default is no change", async () => {
        const checked = checkUploads([a, b]);
        // Hash codes sorted as decimal strings: "3775892072" (a) before "544739565" (b).
        assert.deepEqual(checked, [{ ...a, executable: false }, { ...b }]);
        assert.deepEqual(checkUploads([b, a, { ...a }]), checked);
        assert.deepEqual(checkUploads([{ ...a, contentBase64: "", executable: false, source: "" }, b]), checked);
        assert.equal(checkUploads([]), undefined, "an empty set is no set");
        const plan = async (news: object[]) => (await containerHandler.check?.({} as never, { image: "i", uploads: news }, undefined)) ?? {};
        assert.deepEqual(await plan([b, a]), await plan([a, b]));
        assert.equal("uploads" in (await plan([])), false);
    });

    it("keeps the program's order while a value is unknown (preview)", () => {
        assert.deepEqual(checkUploads([a, { file: "/x", content: unknownValue }]), [
            { ...a, executable: false },
            { file: "/x", content: unknownValue, executable: false },
        ]);
    });

    it("validates permissions and contentBase64 as the schema does, naming the path", () => {
        assert.throws(() => checkUploads([a, { file: "/p", content: "x", permissions: "0999" }]), /uploads\[1\]\.permissions: '0999' doesn't match the pattern '\^0\[0-7\]\{3\}\$'/);
        assert.throws(() => checkUploads([{ file: "/p", content: "x", permissions: "440" }]), /uploads\[0\]\.permissions/);
        assert.throws(() => checkUploads([{ file: "/p", contentBase64: "AP8" }]), /uploads\[0\]\.contentBase64: the value is not base64 decodeable/);
        assert.throws(() => checkUploads([{ file: "/p", contentBase64: "AP8=!" }]), /uploads\[0\]\.contentBase64/);
        assert.doesNotThrow(() => checkUploads([{ file: "/p", contentBase64: "AP8A\r\nAP8=\n" }]), "Go's decoder skips CR and LF");
        assert.throws(() => checkUploads([{ file: "/p", contentBase64: "AP8=\nAP8=" }]), /contentBase64/, "nothing after padding");
        assert.throws(() => checkUploads([{ content: "x" }]), /uploads\[0\]\.file: required/);
        // Not a schema conflict: content with contentBase64 passes check and fails at create.
        assert.doesNotThrow(() => checkUploads([{ file: "/p", content: "x", contentBase64: "eA==" }]));
    });

    it("declares every upload field of the real 5.2.0 plugin for the fidelity rule, and not owner/group, which it refuses", () => {
        for (const f of ["file", "content", "contentBase64", "permissions", "executable", "source", "sourceHash"]) {
            assert.ok(containerHandler.inputs.includes(`uploads[].${f}`), f);
        }
        for (const f of ["owner", "group"]) {
            assert.ok(!containerHandler.inputs.includes(`uploads[].${f}`), f);
        }
    });
});

const repo = path.resolve(__dirname, "..", "..", "..");
const fixture = path.join(__dirname, "fixtures", "uploads");
const readerUrn = "urn:pulumi:test::uploads::docker:index/container:Container::reader";

/** For each file: `<path> <mode> <uid>:<gid> <user>:<group>` then its content in base64. */
const report = (...files: string[]) =>
    `set -e; for f in ${files.join(" ")}; do stat -c '%n %a %u:%g %U:%G' "$f"; base64 -w0 "$f"; echo; done`;

interface Project {
    dir: string;
    prefix: string;
    state: string;
    options(uploads: object[], script: string, ...config: string[]): HarnessOptions;
}

const projects: Project[] = [];

function project(): Project {
    const prefix = `h5u${randomBytes(3).toString("hex")}`;
    const dir = path.join(repo, ".e2e", "fixtures", prefix);
    fs.cpSync(fixture, dir, { recursive: true });
    const state = path.join(dir, "state.json");
    const p: Project = {
        dir,
        prefix,
        state,
        options: (uploads, script, ...config) => ({
            projectDir: dir,
            stack: "test",
            statePath: state,
            config: [`prefix=${prefix}`, `image=${platform.images.debian}`, `uploads=${JSON.stringify(uploads)}`, `script=${script}`, ...config],
            logStream: "ignore",
        }),
    };
    projects.push(p);
    return p;
}

/** The container's report, by file: mode, numeric and named owner, content. */
function files(logs: unknown): Record<string, { mode: string; ids: string; names: string; content: Buffer }> {
    const lines = String(logs).trim().split("\n");
    const result: Record<string, { mode: string; ids: string; names: string; content: Buffer }> = {};
    for (let i = 0; i + 1 < lines.length; i += 2) {
        const [name, mode, ids, names] = lines[i].split(" ");
        result[name] = { mode, ids, names, content: Buffer.from(lines[i + 1], "base64") };
    }
    return result;
}

const readerId = (p: Project) => docker("inspect", "-f", "{{.Id}}", `${p.prefix}-reader`);

const binary = Buffer.from([0, 255, 1, 128, 10, 13, 0xc3, 0x28]);
const cert = "-----BEGIN CERTIFICATE-----\nMIIBfixture\n-----END CERTIFICATE-----\n";
const secretUpload = { file: "/run/vpe/db-password", content: "s3cr3t\n", permissions: "0440" };
const allKinds = [
    secretUpload,
    { file: "/opt/vpe/blob.bin", contentBase64: binary.toString("base64"), executable: true },
    { file: "/etc/vpe/plain.conf", content: "a=1\n" },
    { file: "/srv/owned.key", content: "key\n", permissions: "0600" },
    { file: "/etc/ssl/vpe/cert.pem", source: "files/cert.pem" },
];
const allFiles = allKinds.map((u) => u.file);

describe("uploads on the real Docker engine", () => {
    before(() => provideImages("debian"));

    after(async () => {
        const failures: string[] = [];
        for (const p of projects) {
            await destroy(p.options([], "true")).catch((err: Error) => failures.push(`${p.prefix}: ${err.message}`));
            fs.rmSync(p.dir, { recursive: true, force: true });
        }
        assert.deepEqual(failures, [], "cleanup left resources behind");
    });

    it("writes every upload before the command runs, root-owned, with its content and mode; an unchanged or reordered up is a no-op", async () => {
        const p = project();
        const first = await up(p.options(allKinds, report(...allFiles), "secret=true"));
        assert.equal(outputValues(first).exitCode, 0, String(outputValues(first).logs));
        const seen = files(outputValues(first).logs);
        assert.deepEqual(seen["/run/vpe/db-password"], { mode: "440", ids: "0:0", names: "root:root", content: Buffer.from("s3cr3t\n") });
        assert.deepEqual(seen["/opt/vpe/blob.bin"], { mode: "744", ids: "0:0", names: "root:root", content: binary });
        assert.deepEqual(seen["/etc/vpe/plain.conf"], { mode: "644", ids: "0:0", names: "root:root", content: Buffer.from("a=1\n") });
        assert.deepEqual(seen["/srv/owned.key"], { mode: "600", ids: "0:0", names: "root:root", content: Buffer.from("key\n") });
        assert.deepEqual(seen["/etc/ssl/vpe/cert.pem"], { mode: "644", ids: "0:0", names: "root:root", content: Buffer.from(cert) });
        const state = JSON.parse(fs.readFileSync(p.state, "utf8")) as { resources: { urn: string; inputs: Record<string, unknown>; outputs: Record<string, unknown> }[] };
        const reader = state.resources.find((r) => r.urn === readerUrn);
        assert.ok(reader && isSecret(reader.inputs.uploads) && isSecret(reader.outputs.uploads), "secret uploads stay secret in state");

        const id = readerId(p);
        assert.deepEqual(changed(await up(p.options(allKinds, report(...allFiles), "secret=true"))), {});
        assert.deepEqual(changed(await up(p.options([...allKinds].reverse(), report(...allFiles), "secret=true"))), {}, "a set: order is no change");
        assert.equal(readerId(p), id, "the container was not touched");
    });

    it("replaces the container when an upload changes; a changed source file alone is no change until sourceHash changes", async () => {
        const p = project();
        const uploads = (content: string, sourceHash?: string) => [
            { ...secretUpload, content },
            { file: "/etc/ssl/vpe/cert.pem", source: "files/cert.pem", sourceHash },
        ];
        const script = report(secretUpload.file, "/etc/ssl/vpe/cert.pem");
        await up(p.options(uploads("one\n"), script));
        const first = readerId(p);

        const second = await up(p.options(uploads("two\n"), script));
        assert.deepEqual(changed(second), { [readerUrn]: "replace" });
        assert.notEqual(readerId(p), first);
        assert.deepEqual(files(outputValues(second).logs)[secretUpload.file].content, Buffer.from("two\n"));

        fs.writeFileSync(path.join(p.dir, "files", "cert.pem"), "rotated\n");
        assert.deepEqual(changed(await up(p.options(uploads("two\n"), script))), {}, "state keeps the path, not the file's content");
        const third = await up(p.options(uploads("two\n", "v2"), script));
        assert.deepEqual(changed(third), { [readerUrn]: "replace" });
        assert.deepEqual(files(outputValues(third).logs)["/etc/ssl/vpe/cert.pem"].content, Buffer.from("rotated\n"));
    });

    it("fails at create when content and contentBase64 are both set, or neither: the half-created container is in state and destroy removes it", async () => {
        const p = project();
        const both = [{ file: "/x", content: "x", contentBase64: "eA==" }];
        const err = await expectFailure(up(p.options(both, "true")), /only one of 'content', 'content_base64', or 'source' can be set \(upload of \/x; in Pulumi: content, contentBase64, source\)/);
        assert.ok(err.summary.errors.some((e) => e.startsWith(readerUrn)));
        assert.ok(exists("container", `${p.prefix}-reader`), "created before the upload failed, as the provider does");
        assert.equal(docker("inspect", "-f", "{{.State.Status}}", `${p.prefix}-reader`), "created", "never started");
        await destroy(p.options([], "true"));
        assert.ok(!exists("container", `${p.prefix}-reader`));

        await expectFailure(up(p.options([{ file: "/x", executable: true }], "true")), /one of 'content', 'content_base64', or 'source' must be set/);
    });

    it("rejects invalid permissions or base64 at check, before anything is created", async () => {
        const p = project();
        await expectFailure(up(p.options([{ file: "/x", content: "x", permissions: "0999" }], "true")), /uploads\[0\]\.permissions: '0999' doesn't match/);
        await expectFailure(up(p.options([{ file: "/x", contentBase64: "not base64" }], "true")), /uploads\[0\]\.contentBase64: the value is not base64 decodeable/);
        assert.ok(!exists("container", `${p.prefix}-reader`));
    });
});
