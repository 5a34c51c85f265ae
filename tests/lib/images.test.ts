// Each image builds from its own share of the docker/ context (docker/<service>/Dockerfile.dockerignore),
// so an edit changes the build input, and `pulumi preview` shows a change, only for the images
// that contain the edited file. The harness's contextDigest follows the provider: it honours the
// Dockerfile's own ignore file first.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { contextDigest, ignoreFile } from "../../e2e/harness/handlers/dockerImage";
import { projectRoot } from "../support/stackConfig";

const services = fs
    .readdirSync(path.join(projectRoot, "docker"))
    .filter((d) => fs.existsSync(path.join(projectRoot, "docker", d, "Dockerfile")))
    .sort();

/** Edits users make every day, and the images whose build input each must change. */
const expectedImages: Record<string, string[]> = {
    "docker/executor/pipelines/ingestion/ping_env.py": ["executor"],
    "docker/executor/tasks.toml": ["executor"],
    "docker/spark/jobs/events_per_country_year.py": ["airflow"],
    "docker/spark/build/setup.sh": ["spark"],
    "docker/airflow/bin/airflow-init.sh": ["airflow"],
    "docker/maintenance/bin/vpe-backup": ["maintenance"],
    "docker/container-exporter/vpe_container_exporter.py": ["container-exporter"],
    "docker/container-exporter/uv.lock": ["container-exporter"],
    "docker/airflow/constraints.txt": ["airflow", "spark"],
    "docker/proto/executor.proto": ["airflow", "executor"],
    "docker/platform.json": ["airflow", "executor", "spark"],
    "docker/images.json": [],
    "docker/executor/bench/README.md": [],
    "docker/spark/smoke-test.sh": [],
    "docker/executor/src/__pycache__/server.cpython-311.pyc": [],
};

describe("image build contexts", () => {
    let copy: string;
    const digests = () =>
        Object.fromEntries(services.map((s) => [s, contextDigest(path.join(copy, "docker"), path.join(copy, "docker", s, "Dockerfile"))]));

    before(() => {
        copy = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-contexts-"));
        fs.cpSync(path.join(projectRoot, "docker"), path.join(copy, "docker"), { recursive: true });
    });
    after(() => fs.rmSync(copy, { recursive: true, force: true }));

    it("every image has an ignore file of its own", () => {
        assert.deepEqual(services, ["airflow", "container-exporter", "executor", "maintenance", "spark"]);
        for (const s of services) {
            const dockerfile = path.join(projectRoot, "docker", s, "Dockerfile");
            assert.equal(ignoreFile(path.join(projectRoot, "docker"), dockerfile), `${dockerfile}.dockerignore`);
        }
    });

    for (const [file, images] of Object.entries(expectedImages)) {
        it(`an edit of ${file} changes the build input of ${images.length ? images.join(" and ") : "no image"}`, () => {
            const target = path.join(copy, file);
            const before = digests();
            const original = fs.existsSync(target) ? fs.readFileSync(target) : undefined;
            fs.mkdirSync(path.dirname(target), { recursive: true });
            fs.appendFileSync(target, "\n# an edit\n");
            try {
                const after = digests();
                assert.deepEqual(
                    services.filter((s) => after[s] !== before[s]),
                    images,
                );
            } finally {
                if (original === undefined) fs.rmSync(target);
                else fs.writeFileSync(target, original);
            }
        });
    }

    it("falls back to the context's .dockerignore when the Dockerfile has none", () => {
        const context = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-context-"));
        try {
            fs.mkdirSync(path.join(context, "app"));
            fs.writeFileSync(path.join(context, "app", "Dockerfile"), "FROM scratch\n");
            fs.writeFileSync(path.join(context, "notes.txt"), "one");
            fs.writeFileSync(path.join(context, ".dockerignore"), "notes.txt\n");
            const dockerfile = path.join(context, "app", "Dockerfile");
            const ignored = contextDigest(context, dockerfile);
            fs.writeFileSync(path.join(context, "notes.txt"), "two");
            assert.equal(contextDigest(context, dockerfile), ignored);
            fs.rmSync(path.join(context, ".dockerignore"));
            assert.notEqual(contextDigest(context, dockerfile), ignored);
        } finally {
            fs.rmSync(context, { recursive: true, force: true });
        }
    });
});
