import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { adminPasswordFileName, startScript } from "../../components/postgres";
import { platform } from "../../platform";
import { filesOf, named, reveal, runStack, types } from "../support/stack";

describe("Postgres", () => {
    const run = runStack("dev");
    const container = named(run, "vpe-dev-postgres").inputs as Record<string, any>;

    it("runs the pinned upstream image by ID, as the postgres user", () => {
        const image = named(run, "vpe-dev-postgres-image");
        assert.equal(image.type, types.remoteImage);
        assert.equal(image.inputs.name, platform.images.postgres);
        assert.equal(image.inputs.keepLocally, true);
        assert.match(container.image, /^sha256:/);
        assert.equal(container.user, "999:999");
    });

    it("keeps its data in a named volume mounted at PGDATA", () => {
        assert.deepEqual(container.volumes, [{ volumeName: "vpe-dev-postgres-data", containerPath: platform.paths.postgresData }]);
        assert.equal(named(run, "vpe-dev-postgres-data").options.retainOnDelete, true);
    });

    it("checks health over TCP, so the image's socket-only init server does not count", () => {
        const test: string[] = container.healthcheck.tests;
        assert.deepEqual(test.slice(0, 4), ["CMD", "pg_isready", "-h", "127.0.0.1"]);
        assert.equal(container.wait, true);
    });

    it("is published on loopback only, and passes the generated admin password as a secret file", () => {
        assert.deepEqual(container.ports, [{ internal: 5432, external: 15432, ip: "127.0.0.1", protocol: "tcp" }]);
        const envs = reveal<string[]>(container.envs);
        const path = `${platform.paths.secrets}/${adminPasswordFileName}`;
        assert.ok(envs.includes(`POSTGRES_PASSWORD_FILE=${path}`));
        assert.ok(!envs.some((e) => e.startsWith("POSTGRES_PASSWORD=")));
        const file = filesOf(run, "vpe-dev-postgres").get(path);
        assert.match(file?.content ?? "", /^[A-Za-z0-9]{32}$/);
        assert.equal(file?.secret, true);
        // Root-owned and group-read: the postgres user reads it through supplementary group 0.
        assert.deepEqual([file?.permissions, file?.owner], ["0440", ":"]);
        assert.deepEqual(container.groupAdds, ["0"]);
        const generated = named(run, "vpe-dev-postgres-admin-password").inputs;
        assert.equal(generated.special, false, "URL-breaking characters");
    });

    it("starts the image's entrypoint with the configured settings, syncing the admin password on kept data", () => {
        assert.deepEqual(container.command, ["bash", "-c", startScript, "vpe-postgres", "shared_buffers=128MB", "cluster_name=vpe-dev"]);
        assert.match(startScript, /postgres --single/);
        assert.doesNotMatch(startScript, /PASSWORD='?[A-Za-z0-9]{8}/, "a literal password in the script");
        const tuned = runStack("dev", { overrides: { "vpe:postgres": '{"hostPort": 15432, "sharedBuffers": "256MB"}' } });
        assert.equal((named(tuned, "vpe-dev-postgres").inputs as { command: string[] }).command[4], "shared_buffers=256MB");
    });

    it("honours a configured memory limit", () => {
        const prod = runStack("prod");
        assert.equal((named(prod, "vpe-prod-postgres").inputs as { memory: number }).memory, 4096);
        assert.equal(container.memory, undefined);
    });
});
