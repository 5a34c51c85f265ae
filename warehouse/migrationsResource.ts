// Pulumi dynamic resource that applies the warehouse migrations.
//
// The migration files' names and contents are inputs, read when the program
// runs, so an edited or new file shows as a diff in preview and the provider
// never reads the program's filesystem for SQL at apply time.
//
// The provider below is serialized into the stack state and later revived in
// Pulumi's dynamic-provider process, where `require` resolves from the
// project directory. So its methods capture nothing but plain values and load
// pg (through the runner) and the runner with `require` at call time; the
// credentials come from the inputs of each call.
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { MigrationFile, MigrationResult, SslMode, readMigrations } from "./migrate";

export interface WarehouseMigrationsArgs {
    host: pulumi.Input<string>;
    port: pulumi.Input<number>;
    database: pulumi.Input<string>;
    user: pulumi.Input<string>;
    password: pulumi.Input<string>;
    sslmode: pulumi.Input<SslMode>;
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
    migrations: MigrationFile[];
}

// The password stays out of the outputs, hence out of the state's outputs.
type ProviderOutputs = Omit<ProviderInputs, "password"> & Pick<MigrationResult, "applied" | "versions">;

type Runner = typeof import("./migrate");

// Relative to the project directory, which is the working directory of both
// the Pulumi program and the dynamic-provider process; a relative path keeps
// the serialized provider identical across checkouts.
const RUNNER_MODULE = path.relative(process.cwd(), path.join(__dirname, "migrate"));

// Serialized providers cannot import: every module is required at call time.
/* eslint-disable @typescript-eslint/no-require-imports */
function loadRunner(): Runner {
    // The dynamic-provider process is plain node: teach it TypeScript first.
    // Under tsx (tests, the end-to-end harness) .ts is already handled.
    if (!require.extensions[".ts"]) {
        require("tsx/cjs/api").register();
    }
    return require(require("node:path").resolve(RUNNER_MODULE));
}
/* eslint-enable @typescript-eslint/no-require-imports */

async function applyFromInputs(inputs: ProviderInputs): Promise<ProviderOutputs> {
    const runner = loadRunner();
    const result = await runner.applyMigrations({
        connection: runner.connectionConfig(inputs),
        files: inputs.migrations,
    });
    const { host, port, database, user, sslmode, migrations } = inputs;
    return { host, port, database, user, sslmode, migrations, applied: result.applied, versions: result.versions };
}

// Compared by value: the engine may hand back objects with their keys in
// another order than the program produced them.
function migrationSetKey(migrations: readonly MigrationFile[]): string {
    return JSON.stringify(migrations.map((m) => [m.name, m.sql]));
}

const TARGET_KEYS = ["host", "port", "database", "user", "sslmode"] as const;

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
                migrations: args.migrations,
                applied: undefined,
                versions: undefined,
            },
            opts,
        );
    }
}
