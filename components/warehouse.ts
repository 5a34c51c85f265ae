import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import { urlSafePassword } from "../lib/secrets";
import { platform } from "../platform";
import { type AdminConnection, Database, LoginRole } from "../warehouse/accessResource";
import { WarehouseMigrations, readMigrationFiles } from "../warehouse/migrationsResource";
import { countedTables, warehouseTables } from "../warehouse/tables";

export const roleNames = {
    airflow: "airflow",
    writer: "pipeline_writer",
    analyst: "analyst",
    monitoring: "monitoring",
};

export interface WarehouseArgs {
    namePrefix: string;
    /** PostgreSQL as seen from the machine running `pulumi up`. */
    host: pulumi.Input<string>;
    port: pulumi.Input<number>;
    adminUser: string;
    adminPassword: pulumi.Input<string>;
    /** The server's `cluster_name`: every provisioning step first checks it reached that one. */
    cluster: string;
    /** Folder of versioned SQL migration files. */
    migrationsDir: string;
    /**
     * Keep databases and roles when the stack is destroyed: deleting them would DROP the data
     * even though the data volume is kept. The next `pulumi up` takes them over.
     */
    retainData: boolean;
    /** Provision the read-only monitoring role (PostgreSQL's statistics, the row counts). */
    monitoring: boolean;
}

export interface Login {
    user: string;
    password: pulumi.Output<string>;
}

/**
 * Databases, least-privilege login roles and the warehouse schema. Roles and databases are taken
 * over when they exist (a stack destroyed with its data kept); grants go through an explicit
 * postgresql provider built from the container's outputs (dependsOn on a provider is not
 * honoured, pulumi #8917, so the outputs carry the ordering).
 */
export class Warehouse extends pulumi.ComponentResource {
    declare readonly airflowLogin: Login;
    declare readonly writerLogin: Login;
    declare readonly analystLogin: Login;
    /** With `monitoring`: the exporter's login, pg_monitor and SELECT on the counted tables. */
    declare readonly monitoringLogin: Login | undefined;
    /** Versions recorded in the warehouse's migrations table. */
    declare readonly appliedMigrations: pulumi.Output<number[]>;
    /** Resolves once the schema is current and every grant is in place. */
    declare readonly ready: pulumi.Output<string>;

    constructor(name: string, args: WarehouseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("vpe:platform:Warehouse", name, {}, opts);
        const prefix = args.namePrefix;
        const provider = new postgresql.Provider(
            `${prefix}-postgresql`,
            {
                host: args.host,
                port: args.port,
                username: args.adminUser,
                password: args.adminPassword,
                sslmode: "disable",
                superuser: true,
                connectTimeout: 30,
            },
            { parent: this },
        );
        // Grants, like roles and databases, stay on destroy when the data does: the next `up` applies
        // them again, and a destroy reaches no PostgreSQL (a server's is behind this run's tunnel).
        const child = { parent: this, provider, retainOnDelete: args.retainData };
        const kept = { parent: this, retainOnDelete: args.retainData };
        const admin: AdminConnection = {
            host: args.host,
            port: args.port,
            adminUser: args.adminUser,
            adminPassword: args.adminPassword,
            sslmode: "disable",
            cluster: args.cluster,
        };

        const airflow = this.loginRole(prefix, roleNames.airflow, admin, kept);
        const writer = this.loginRole(prefix, roleNames.writer, admin, kept);
        const analyst = this.loginRole(prefix, roleNames.analyst, admin, kept);
        // pg_monitor reads every database's statistics and sizes, and no table.
        const monitoring = args.monitoring ? this.loginRole(prefix, roleNames.monitoring, admin, kept, ["pg_monitor"]) : undefined;

        const airflowDb = new Database(
            `${prefix}-db-${platform.databases.airflow}`,
            { admin, name: platform.databases.airflow, owner: airflow.role.name },
            kept,
        );
        const warehouseDb = new Database(
            `${prefix}-db-${platform.databases.warehouse}`,
            { admin, name: platform.databases.warehouse, owner: args.adminUser },
            kept,
        );

        const migrations = new WarehouseMigrations(
            `${prefix}-warehouse-migrations`,
            {
                host: args.host,
                port: args.port,
                database: warehouseDb.name,
                user: args.adminUser,
                password: args.adminPassword,
                sslmode: "disable",
                cluster: args.cluster,
                migrations: readMigrationFiles(args.migrationsDir),
            },
            { parent: this },
        );

        // One grant at a time: GRANTs to different roles on the same tables rewrite the same
        // catalog rows, and the provider run in parallel fails with "tuple concurrently updated".
        let previous: pulumi.Resource = migrations;
        const grant = (suffix: string, grantArgs: postgresql.GrantArgs) => {
            const created = new postgresql.Grant(`${prefix}-grant-${suffix}`, grantArgs, { ...child, dependsOn: [previous] });
            previous = created;
            return created;
        };
        const onWarehouse = { database: warehouseDb.name, schema: "public" };
        const grants = [
            // New databases let PUBLIC connect; only the named roles may.
            grant("public-airflow-db", { database: airflowDb.name, role: "public", objectType: "database", privileges: [] }),
            grant("public-warehouse-db", { database: warehouseDb.name, role: "public", objectType: "database", privileges: [] }),
            // The importer stages each file in a temporary table before inserting it.
            grant("writer-connect", { database: warehouseDb.name, role: writer.role.name, objectType: "database", privileges: ["CONNECT", "TEMPORARY"] }),
            grant("analyst-connect", { database: warehouseDb.name, role: analyst.role.name, objectType: "database", privileges: ["CONNECT"] }),
            grant("writer-staging", { ...onWarehouse, role: writer.role.name, objectType: "table", objects: warehouseTables.staging, privileges: ["SELECT", "INSERT"] }),
            grant("writer-read", { ...onWarehouse, role: writer.role.name, objectType: "table", objects: [...warehouseTables.star, ...warehouseTables.views], privileges: ["SELECT"] }),
            // The Spark job replaces the statistics with TRUNCATE + INSERT, keeping the table.
            grant("writer-statistics", { ...onWarehouse, role: writer.role.name, objectType: "table", objects: warehouseTables.statistics, privileges: ["SELECT", "INSERT", "DELETE", "TRUNCATE"] }),
            // Identity columns of the staging tables draw from sequences.
            grant("writer-sequences", { ...onWarehouse, role: writer.role.name, objectType: "sequence", objects: [], privileges: ["USAGE"] }),
            grant("analyst-read", { ...onWarehouse, role: analyst.role.name, objectType: "table", objects: [...warehouseTables.star, ...warehouseTables.statistics, ...warehouseTables.views], privileges: ["SELECT"] }),
            ...(monitoring
                ? [
                      grant("monitoring-connect", { database: warehouseDb.name, role: monitoring.role.name, objectType: "database", privileges: ["CONNECT"] }),
                      grant("monitoring-count", { ...onWarehouse, role: monitoring.role.name, objectType: "table", objects: countedTables, privileges: ["SELECT"] }),
                  ]
                : []),
        ];

        this.ready = pulumi.all(grants.map((g) => g.id)).apply(() => "ready");
        this.airflowLogin = loginAfter(roleNames.airflow, airflow.password, airflowDb.name);
        this.writerLogin = loginAfter(roleNames.writer, writer.password, this.ready);
        this.analystLogin = loginAfter(roleNames.analyst, analyst.password, this.ready);
        this.monitoringLogin = monitoring ? loginAfter(roleNames.monitoring, monitoring.password, this.ready) : undefined;
        this.appliedMigrations = migrations.versions;
        this.registerOutputs({ appliedMigrations: this.appliedMigrations });
    }

    private loginRole(prefix: string, roleName: string, admin: AdminConnection, opts: pulumi.CustomResourceOptions, memberOf?: string[]) {
        const password = urlSafePassword(`${prefix}-${roleName}-password`, this);
        const role = new LoginRole(`${prefix}-role-${roleName}`, { admin, name: roleName, password: password.result, memberOf }, opts);
        return { role, password: password.result };
    }
}

/** A login whose password resolves only once what its user needs exists, so consumers wait. */
function loginAfter(user: string, password: pulumi.Output<string>, prerequisite: pulumi.Input<string>): Login {
    return {
        user,
        password: pulumi.secret(pulumi.all([prerequisite, password]).apply(([, value]) => value)),
    };
}

/** A libpq URL; the password makes the whole string secret. */
export function postgresUrl(
    login: Login,
    host: pulumi.Input<string>,
    port: pulumi.Input<number>,
    database: string,
    scheme = "postgresql",
): pulumi.Output<string> {
    return pulumi.secret(pulumi.interpolate`${scheme}://${login.user}:${login.password}@${host}:${port}/${database}`);
}
