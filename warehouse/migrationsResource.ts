// Pulumi dynamic resource that applies the warehouse migrations.
//
// The migration files' names and contents are inputs, read when the program
// runs, so an edited or new file shows as a diff in preview and the provider
// never reads the program's filesystem for SQL at apply time.
//
// The provider below is serialized into the stack state (see callTimeRequire):
// it loads pg (through the runner) at call time; the credentials come from the
// inputs of each call.
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { projectModulePath, requireProjectModule } from "./callTimeRequire";
import { MigrationFile, MigrationResult, SslMode, readMigrations } from "./migrate";

export interface WarehouseMigrationsArgs {
    host: pulumi.Input<string>;
    port: pulumi.Input<number>;
    database: pulumi.Input<string>;
    user: pulumi.Input<string>;
    password: pulumi.Input<string>;
    sslmode: pulumi.Input<SslMode>;
    /** The server's expected `cluster_name`: migrations go to the stack's PostgreSQL or nowhere. */
    cluster: string;
    /** Names and contents, from readMigrationFiles (plain values, so preview always knows them). */
    migrations: MigrationFile[];
}

interface ProviderInputs {
    host: string;
    port: number;
    database: string;
    user: string;
    password: string;
    sslmode: SslMode;
    cluster: string;
    migrations: MigrationFile[];
}

// The password stays out of the outputs, hence out of the state's outputs.
type ProviderOutputs = Omit<ProviderInputs, "password"> & Pick<MigrationResult, "applied" | "versions">;

type Runner = typeof import("./migrate");
type Access = typeof import("./access");

const RUNNER_MODULE = projectModulePath(path.join(__dirname, "migrate"));
const ACCESS_MODULE = projectModulePath(path.join(__dirname, "access"));

function loadRunner(): Runner {
    return requireProjectModule<Runner>(RUNNER_MODULE);
}

async function applyFromInputs(inputs: ProviderInputs): Promise<ProviderOutputs> {
    const runner = loadRunner();
    const connection = runner.connectionConfig(inputs);
    await requireProjectModule<Access>(ACCESS_MODULE).checkCluster(connection, inputs.cluster);
    const result = await runner.applyMigrations({ connection, files: inputs.migrations });
    const { host, port, database, user, sslmode, cluster, migrations } = inputs;
    return { host, port, database, user, sslmode, cluster, migrations, applied: result.applied, versions: result.versions };
}

// Compared by value: the engine may hand back objects with their keys in
// another order than the program produced them.
function migrationSetKey(migrations: readonly MigrationFile[]): string {
    return JSON.stringify(migrations.map((m) => [m.name, m.sql]));
}

const TARGET_KEYS = ["host", "port", "database", "user", "sslmode", "cluster"] as const;

export const provider: pulumi.dynamic.ResourceProvider<ProviderInputs, ProviderOutputs> = {
    async create(inputs) {
        const outs = await applyFromInputs(inputs);
        return { id: `${inputs.host}:${inputs.port}/${inputs.database}`, outs };
    },

    // Never a replacement: replacing would mean deleting, and delete must not
    // touch the data. A changed target or migration set is an update, which
    // applies whatever the target has not recorded yet.
    async diff(_id, olds, news) {
        const targetChanged = TARGET_KEYS.some((key) => olds[key] !== news[key]);
        const migrationsChanged = migrationSetKey(olds.migrations ?? []) !== migrationSetKey(news.migrations ?? []);
        return { changes: targetChanged || migrationsChanged, replaces: [], deleteBeforeReplace: false };
    },

    async update(_id, _olds, news) {
        return { outs: await applyFromInputs(news) };
    },

    // Removing the resource from the stack leaves the schema and its data as
    // they are.
    async delete() {},
};

/** The migration files of a directory, validated, as the resource's `migrations` input. */
export function readMigrationFiles(directory: string = path.join(__dirname, "migrations")): MigrationFile[] {
    return readMigrations(directory).map(({ name, sql }) => ({ name, sql }));
}

export class WarehouseMigrations extends pulumi.dynamic.Resource {
    /** Files applied by the latest create or update. */
    declare public readonly applied: pulumi.Output<string[]>;
    /** Every version recorded in schema_migrations. */
    declare public readonly versions: pulumi.Output<number[]>;

    constructor(name: string, args: WarehouseMigrationsArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            provider,
            name,
            {
                host: args.host,
                port: args.port,
                database: args.database,
                user: args.user,
                password: pulumi.secret(args.password),
                sslmode: args.sslmode,
                cluster: args.cluster,
                migrations: args.migrations,
                applied: undefined,
                versions: undefined,
            },
            opts,
        );
    }
}
