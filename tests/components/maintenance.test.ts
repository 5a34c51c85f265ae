import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { platform } from "../../platform";
import { byType, envOf, filesOf, named, runStack, types } from "../support/stack";

describe("Maintenance", () => {
    const dev = runStack("dev");
    const container = named(dev, "vpe-dev-maintenance").inputs as Record<string, any>;
    const mounts = () => Object.fromEntries((container.volumes as { volumeName: string; containerPath: string }[]).map((v) => [v.containerPath, v.volumeName]));

    it("builds docker/maintenance on the platform's PostgreSQL image, so pg_dump matches the server", () => {
        const image = named(dev, "vpe-dev-maintenance-image").inputs as Record<string, any>;
        assert.equal(image.build.dockerfile, "docker/maintenance/Dockerfile");
        assert.deepEqual(image.build.args, { POSTGRES_IMAGE: platform.images.postgres });
        assert.match(container.image, /^vpe-dev\/maintenance:local@sha256:/);
    });

    it("runs as the Airflow user (owner of the log volume), never root, on the stack network", () => {
        assert.equal(container.user, `${platform.users.airflow.uid}:${platform.users.airflow.gid}`);
        assert.deepEqual(container.networksAdvanced, [{ name: "vpe-dev-net", aliases: [platform.aliases.maintenance] }]);
        assert.equal(container.ports, undefined);
    });

    it("mounts the logs, the backups and Airflow's keys volume, and nothing else", () => {
        assert.deepEqual(mounts(), {
            [platform.paths.logs]: "vpe-dev-logs",
            [platform.paths.backups]: "vpe-dev-backups",
            [platform.paths.airflowKeys]: "vpe-dev-airflow-keys",
        });
    });

    it("with metrics on, also writes the backups' state into the metrics volume, which destroy removes", () => {
        assert.equal(envOf(dev, "vpe-dev-maintenance").vars.has(platform.env.metricsDir), false);
        const prod = runStack("prod");
        const inputs = named(prod, "vpe-prod-maintenance").inputs as Record<string, any>;
        const volumes = Object.fromEntries((inputs.volumes as { volumeName: string; containerPath: string }[]).map((v) => [v.containerPath, v.volumeName]));
        assert.equal(volumes[platform.paths.metricsTextfiles], "vpe-prod-metrics");
        assert.equal(envOf(prod, "vpe-prod-maintenance").vars.get(platform.env.metricsDir), platform.paths.metricsTextfiles);
        assert.equal(named(prod, "vpe-prod-metrics").options.retainOnDelete, false, "derived: nothing to keep");
        const prepare = (named(prod, "vpe-prod-metrics-init").inputs.command as string[]).join(" ");
        assert.ok(prepare.includes(`chown ${platform.users.airflow.uid}:${platform.users.airflow.gid} "$d"; chmod 0755 "$d"`), prepare);
    });

    it("keeps the backup volume on destroy, readable by its owner alone, unless the user asks to delete data", () => {
        assert.equal(named(dev, "vpe-dev-backups").options.retainOnDelete, true);
        const prepare = (named(dev, "vpe-dev-backups-init").inputs.command as string[]).join(" ");
        assert.ok(prepare.includes(`chown ${platform.users.airflow.uid}:${platform.users.airflow.gid} "$d"; chmod 0700 "$d"`), prepare);
        const purge = runStack("dev", { overrides: { "vpe:deleteDataOnDestroy": "true" } });
        assert.equal(named(purge, "vpe-dev-backups").options.retainOnDelete, false);
    });

    it("takes its schedule, retention and databases from the stack config, with the admin password secret", () => {
        const env = platform.env;
        const expected = { dev: { keep: "3", days: "7" }, prod: { keep: "14", days: "30" } };
        for (const stack of ["dev", "prod"] as const) {
            const run = stack === "dev" ? dev : runStack("prod");
            const vars = envOf(run, `vpe-${stack}-maintenance`).vars;
            assert.equal(vars.get(env.backupKeep), expected[stack].keep);
            assert.equal(vars.get(env.logRetentionDays), expected[stack].days);
            assert.equal(vars.get(env.backupEveryHours), "24");
            assert.equal(vars.get(env.backupDatabases), `${platform.databases.warehouse} ${platform.databases.airflow}`);
            assert.equal(vars.get("PGHOST"), platform.aliases.postgres);
            assert.equal(vars.get(env.maintenanceTickSeconds), String(platform.maintenance.tickSeconds));
        }
        const passwordFile = envOf(dev, "vpe-dev-maintenance").vars.get("PGPASSWORD_FILE")!;
        assert.equal(envOf(dev, "vpe-dev-maintenance").vars.has("PGPASSWORD"), false);
        const file = filesOf(dev, "vpe-dev-maintenance").get(passwordFile);
        assert.match(file?.content ?? "", /^[A-Za-z0-9]{32}$/);
        assert.equal(file?.secret, true);
        const custom = runStack("dev", { overrides: { "vpe:backup": '{"everyHours": 6, "keep": 28}', "vpe:logs": '{"retentionDays": 90}' } });
        const vars = envOf(custom, "vpe-dev-maintenance").vars;
        assert.deepEqual([vars.get(env.backupEveryHours), vars.get(env.backupKeep), vars.get(env.logRetentionDays)], ["6", "28", "90"]);
    });

    it("is healthy while its loop beats", () => {
        assert.deepEqual(container.healthcheck.tests, ["CMD", "vpe-maintenance", "--alive", String(platform.maintenance.heartbeatMaxAgeSeconds)]);
    });
});

describe("stack outputs for the user commands", () => {
    for (const stack of ["dev", "prod"]) {
        it(`${stack}: containers lists every long-running container, and names the others`, () => {
            const run = runStack(stack);
            const longRunning = byType(run, types.container)
                .filter((c) => c.inputs.restart === "unless-stopped")
                .map((c) => c.name)
                .sort();
            assert.deepEqual([...(run.outputs.containers.value as string[])].sort(), longRunning);
            assert.equal(run.outputs.maintenanceContainer.value, `vpe-${stack}-maintenance`);
            assert.equal(run.outputs.executorContainer.value, `vpe-${stack}-executor`);
            assert.equal(run.outputs.postgresContainer.value, `vpe-${stack}-postgres`);
            const init = named(run, run.outputs.airflowInitContainer.value as string).inputs;
            assert.equal(init.restart, "no");
            assert.equal(run.outputs.backupVolumeName.value, `vpe-${stack}-backups`);
        });
    }
});
