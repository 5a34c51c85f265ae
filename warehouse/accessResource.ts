// Pulumi dynamic resources for the stack's login roles and databases. Unlike the postgresql
// provider's Role and Database, creating one that already exists takes it over (see access.ts):
// that is how a stack destroyed with its data kept comes back with a plain `pulumi up`.
// Serialized into the state like the migrations resource (see callTimeRequire).
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { projectModulePath, requireProjectModule } from "./callTimeRequire";
import type { SslMode } from "./migrate";

/** The superuser connection the resources work through (its maintenance database). */
export interface AdminConnection {
    host: pulumi.Input<string>;
    port: pulumi.Input<number>;
    adminUser: pulumi.Input<string>;
    adminPassword: pulumi.Input<string>;
    sslmode: SslMode;
    /** The server's expected `cluster_name` (access.checkCluster). */
    cluster: string;
}

interface AdminInputs {
    host: string;
    port: number;
    adminUser: string;
    adminPassword: string;
    sslmode: SslMode;
    cluster: string;
}

interface RoleInputs extends AdminInputs {
    name: string;
    password: string;
    /** Absent rather than empty, so roles recorded before it existed show no change. */
    memberOf?: string[];
}

interface DatabaseInputs extends AdminInputs {
    name: string;
    owner: string;
}

/** Whether the role or database was already in the cluster when this stack created it. */
type Outputs<T> = T & { existed: boolean };

type Access = typeof import("./access");
type Migrate = typeof import("./migrate");

const ACCESS_MODULE = projectModulePath(path.join(__dirname, "access"));
const MIGRATE_MODULE = projectModulePath(path.join(__dirname, "migrate"));

function connect(inputs: AdminInputs) {
    const { connectionConfig } = requireProjectModule<Migrate>(MIGRATE_MODULE);
    return connectionConfig({ ...inputs, database: "postgres", user: inputs.adminUser, password: inputs.adminPassword });
}

const ADMIN_KEYS = ["host", "port", "adminUser", "adminPassword", "sslmode", "cluster"] as const;

/** Any change converges again (an update); only a new name is another object (a replacement). */
function diffBy<T extends AdminInputs & { name: string }>(keys: readonly (keyof T)[]) {
    return async (_id: string, olds: T, news: T) => ({
        changes: [...ADMIN_KEYS, ...keys].some((key) => JSON.stringify(olds[key as keyof T]) !== JSON.stringify(news[key as keyof T])),
        replaces: olds.name === news.name ? [] : ["name"],
        deleteBeforeReplace: false,
    });
}

/** The access module, once the server answering is known to be the stack's. */
async function checkedAccess(inputs: AdminInputs): Promise<Access> {
    const access = requireProjectModule<Access>(ACCESS_MODULE);
    // State written before the check existed has no cluster: the next update records it.
    if (inputs.cluster !== undefined) await access.checkCluster(connect(inputs), inputs.cluster);
    return access;
}

/** Create and update converge (`ensure`); delete drops. */
function convergingProvider<T extends AdminInputs & { name: string }>(
    keys: readonly (keyof T)[],
    ensure: (access: Access, inputs: T) => Promise<{ existed: boolean }>,
    drop: (access: Access, props: T) => Promise<void>,
): pulumi.dynamic.ResourceProvider<T, Outputs<T>> {
    return {
        async create(inputs) {
            const { existed } = await ensure(await checkedAccess(inputs), inputs);
            return { id: inputs.name, outs: { ...inputs, existed } };
        },
        diff: diffBy<T>(keys),
        async update(_id, olds, news) {
            await ensure(await checkedAccess(news), news);
            return { outs: { ...news, existed: olds.existed } };
        },
        async delete(_id, props) {
            await drop(await checkedAccess(props), props);
        },
    };
}

export const roleProvider = convergingProvider<RoleInputs>(
    ["name", "password", "memberOf"],
    (access, r) => access.ensureLoginRole(connect(r), r.name, r.password, r.memberOf),
    (access, r) => access.dropRole(connect(r), r.name),
);

export const databaseProvider = convergingProvider<DatabaseInputs>(
    ["name", "owner"],
    (access, d) => access.ensureDatabase(connect(d), d.name, d.owner),
    (access, d) => access.dropDatabase(connect(d), d.name),
);

// Delete needs the admin connection, so it stays in the outputs, encrypted like every secret.
const secretOutputs = ["adminPassword", "password"];

function adminInputs(admin: AdminConnection) {
    return { ...admin, adminPassword: pulumi.secret(admin.adminPassword) };
}

export class LoginRole extends pulumi.dynamic.Resource {
    declare public readonly name: pulumi.Output<string>;
    declare public readonly existed: pulumi.Output<boolean>;

    constructor(
        resourceName: string,
        args: { admin: AdminConnection; name: string; password: pulumi.Input<string>; memberOf?: string[] },
        opts?: pulumi.CustomResourceOptions,
    ) {
        super(
            roleProvider,
            resourceName,
            { ...adminInputs(args.admin), name: args.name, password: pulumi.secret(args.password), memberOf: args.memberOf, existed: undefined },
            { ...opts, additionalSecretOutputs: secretOutputs },
        );
    }
}

export class Database extends pulumi.dynamic.Resource {
    declare public readonly name: pulumi.Output<string>;
    declare public readonly existed: pulumi.Output<boolean>;

    constructor(resourceName: string, args: { admin: AdminConnection; name: string; owner: pulumi.Input<string> }, opts?: pulumi.CustomResourceOptions) {
        super(
            databaseProvider,
            resourceName,
            { ...adminInputs(args.admin), name: args.name, owner: args.owner, existed: undefined },
            { ...opts, additionalSecretOutputs: secretOutputs },
        );
    }
}
