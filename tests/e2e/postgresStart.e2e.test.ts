// The PostgreSQL container's start script on the real image: settings reach the server, and a
// data volume kept from an earlier stack accepts the new stack's admin password, not the old one.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { adminPasswordFileName, startScript } from "../../components/postgres";
import { secretFileMode, secretPath, secretReaderGroups } from "../../lib/secretFiles";
import { platform } from "../../platform";
import { docker, dockerClient, provideImages, query, waitFor } from "./platform";

const volume = "vpe-test-postgres-start";
const [first, second] = ["vpe-test-pg-first", "vpe-test-pg-second"];
const hostPort = 25999;
const secrets = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-pg-secret-"));

/** As the stack runs it: the password in a root-owned file only group 0 reads, never in the environment. */
function start(name: string, password: string, sharedBuffers: string): void {
    const file = path.join(secrets, name);
    fs.writeFileSync(file, password, { mode: parseInt(secretFileMode, 8) });
    const inContainer = secretPath(adminPasswordFileName);
    docker(
        "run", "-d", "--name", name, "-p", `127.0.0.1:${hostPort}:${platform.ports.postgres}`,
        "--user", `${platform.users.postgres.uid}:${platform.users.postgres.gid}`,
        ...secretReaderGroups.flatMap((group) => ["--group-add", group]),
        "-e", "POSTGRES_USER=postgres", "-e", `POSTGRES_PASSWORD_FILE=${inContainer}`,
        "-v", `${file}:${inContainer}:ro`,
        "-v", `${volume}:${platform.paths.postgresData}`,
        platform.images.postgres, "bash", "-c", startScript, "vpe-postgres", `shared_buffers=${sharedBuffers}`,
    );
}

const url = (password: string) => `postgresql://postgres:${password}@127.0.0.1:${hostPort}/postgres`;

describe("PostgreSQL start script", () => {
    const removeContainersAndVolume = () => {
        for (const name of [first, second]) spawnSync(dockerClient, ["rm", "-f", name]);
        spawnSync(dockerClient, ["volume", "rm", "-f", volume]);
    };
    before(() => {
        provideImages("postgres");
        removeContainersAndVolume(); // a killed run's
    });
    after(() => {
        removeContainersAndVolume();
        fs.rmSync(secrets, { recursive: true, force: true });
    });

    it("applies settings, and moves a kept cluster to the new admin password", async () => {
        start(first, "firstPassword1", "64MB");
        await waitFor("first server", 60_000, () => query(url("firstPassword1"), "SELECT 1"), 500);
        await query(url("firstPassword1"), "CREATE TABLE kept AS SELECT 42 AS answer");
        docker("kill", first); // a crash, so the second start also recovers
        docker("rm", first);

        start(second, "secondPassword2", "96MB");
        const [row] = await waitFor("second server", 60_000, () => query<{ answer: number; sb: string }>(url("secondPassword2"), "SELECT answer, current_setting('shared_buffers') AS sb FROM kept"), 500);
        assert.deepEqual(row, { answer: 42, sb: "96MB" });
        await assert.rejects(query(url("firstPassword1"), "SELECT 1"), /password authentication failed/);
        const logs = spawnSync(dockerClient, ["logs", second], { encoding: "utf8" });
        assert.match(logs.stderr + logs.stdout, /database system is ready to accept connections/);
        assert.doesNotMatch(logs.stderr + logs.stdout, /secondPassword2|firstPassword1/);
    });
});
