import * as pulumi from "@pulumi/pulumi";
import type { BackupConfig, LogsConfig } from "../config";
import { serviceContainer } from "../lib/containers";
import { type SecretFile, fileVariable, secretUploads } from "../lib/secretFiles";
import { localImage } from "../lib/images";
import { platform, userSpec } from "../platform";

export interface MaintenanceArgs {
    namePrefix: string;
    network: pulumi.Input<string>;
    backup: BackupConfig;
    logs: LogsConfig;
    logVolume: pulumi.Input<string>;
    /** Where backup sets are written; kept on destroy like the data volume. */
    backupVolume: pulumi.Input<string>;
    /** Airflow's keys volume, where a restore leaves the marker that makes airflow-init re-encrypt. */
    keysVolume: pulumi.Input<string>;
    /** The admin login on the stack network: backups and restores cover every object. */
    postgres: { host: string; port: number; user: string; passwordFile: SecretFile };
    /** Databases each backup set holds. */
    databases: string[];
    /** With metrics on: where each tick writes the backups' state for node_exporter. */
    metricsVolume?: pulumi.Input<string>;
}

/** The log folders the groomer owns; Spark's workers clean their own (see workerCleanupOpts). */
export const groomedLogDirs = platform.logSubdirs.filter((dir) => dir !== "spark");

/** The environment the maintenance scripts read (docker/maintenance/bin). */
export function maintenanceEnv(args: Pick<MaintenanceArgs, "backup" | "logs" | "postgres" | "databases" | "metricsVolume">): pulumi.Input<string>[] {
    const env = platform.env;
    return [
        `PGHOST=${args.postgres.host}`,
        `PGPORT=${args.postgres.port}`,
        `PGUSER=${args.postgres.user}`,
        // The scripts read the file into their own PGPASSWORD.
        fileVariable("PGPASSWORD", args.postgres.passwordFile),
        `${env.backupDir}=${platform.paths.backups}`,
        `${env.backupKeep}=${args.backup.keep}`,
        `${env.backupEveryHours}=${args.backup.everyHours}`,
        `${env.backupDatabases}=${args.databases.join(" ")}`,
        `${env.logDirs}=${groomedLogDirs.map((dir) => `${platform.paths.logs}/${dir}`).join(" ")}`,
        `${env.logRetentionDays}=${args.logs.retentionDays}`,
        `${env.maintenanceTickSeconds}=${platform.maintenance.tickSeconds}`,
        `${env.groomEveryMinutes}=${platform.maintenance.groomEveryMinutes}`,
        `${env.maintenanceHeartbeat}=${platform.paths.maintenanceHeartbeat}`,
        ...(args.metricsVolume ? [`${env.metricsDir}=${platform.paths.metricsTextfiles}`] : []),
    ];
}

/**
 * The platform's housekeeping: scheduled pg_dump backups of the warehouse and of Airflow's
 * metadata into the backup volume, with retention, and removal of old task and executor logs
 * (as the official Airflow compose file's log groomer does). Runs as the Airflow user, which owns
 * the log volume, and carries the scripts `npm run backup` and `npm run restore` call.
 */
export class Maintenance extends pulumi.ComponentResource {
    declare readonly containerName: string;

    constructor(name: string, args: MaintenanceArgs, opts?: pulumi.ComponentResourceOptions) {
        super("vpe:platform:Maintenance", name, {}, opts);
        this.containerName = `${args.namePrefix}-${platform.aliases.maintenance}`;
        const image = localImage(
            `${args.namePrefix}-maintenance-image`,
            { namePrefix: args.namePrefix, service: "maintenance", args: { POSTGRES_IMAGE: platform.images.postgres } },
            { parent: this },
        );
        serviceContainer(
            {
                name: this.containerName,
                image: image.repoDigest,
                network: args.network,
                alias: platform.aliases.maintenance,
                user: userSpec(platform.users.airflow),
                envs: maintenanceEnv(args),
                uploads: secretUploads([args.postgres.passwordFile]),
                volumes: [
                    { volumeName: args.logVolume, containerPath: platform.paths.logs },
                    { volumeName: args.backupVolume, containerPath: platform.paths.backups },
                    { volumeName: args.keysVolume, containerPath: platform.paths.airflowKeys },
                    ...(args.metricsVolume ? [{ volumeName: args.metricsVolume, containerPath: platform.paths.metricsTextfiles }] : []),
                ],
                healthcheck: {
                    test: ["CMD", "vpe-maintenance", "--alive", String(platform.maintenance.heartbeatMaxAgeSeconds)],
                    intervalSeconds: 10,
                    startPeriodSeconds: 5,
                },
                // A backup in progress is abandoned on stop; its partial set is removed next time.
                stopTimeoutSeconds: 10,
            },
            { parent: this },
        );
        this.registerOutputs({ containerName: this.containerName });
    }
}
