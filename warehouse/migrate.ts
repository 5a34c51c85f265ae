// Versioned SQL migrations for the warehouse.
//
// Files are named NNNN_name.sql and applied in version order, each in its own
// transaction together with its row in schema_migrations (version, name,
// sha256 checksum). A session advisory lock is held for the whole run, so of
// two concurrent appliers the second waits and then finds nothing to do.
// Before anything is applied, the recorded history is checked against the
// files: an applied file that was edited, renamed or removed, or a new file
// numbered below the latest applied one, refuses the whole run.
//
// Why not a library: node-pg-migrate locks and orders but keeps no checksum,
// so an edited applied file goes unnoticed. postgres-migrations (5.3.0) has
// hash checks, a lock and per-file transactions, but loads only from a
// directory (the Pulumi provider receives file contents as inputs) and does
// not say which statement failed. The rules needed fit in this file.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Client, ClientConfig, DatabaseError } from "pg";

export interface MigrationFile {
    readonly name: string;
    readonly sql: string;
}

export interface Statement {
    readonly text: string;
    /** Offset of the statement's first character in the file. */
    readonly offset: number;
}

export interface Migration extends MigrationFile {
    readonly version: number;
    readonly checksum: string;
    readonly statements: readonly Statement[];
}

export interface MigrationResult {
    /** Files applied by this run, in order. */
    readonly applied: string[];
    /** Files found already recorded. */
    readonly alreadyApplied: string[];
    /** Every recorded version after this run. */
    readonly versions: number[];
}

export type Connection = string | ClientConfig;

export type ApplyOptions =
    | { readonly connection: Connection; readonly directory: string }
    | { readonly connection: Connection; readonly files: readonly MigrationFile[] };

export type SslMode = "disable" | "require" | "verify-full";

export interface ConnectionSettings {
    readonly host: string;
    readonly port: number;
    readonly database: string;
    readonly user: string;
    readonly password: string;
    readonly sslmode: SslMode;
}

const FILE_NAME = /^(\d{4})_([a-z0-9]+(?:_[a-z0-9]+)*)\.sql$/;

// Arbitrary but fixed: every applier of this warehouse must contend for the
// same key, and no other code in these databases takes advisory locks.
export const MIGRATION_LOCK_KEY = "7395014482217091";

const HISTORY_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    checksum   CHAR(64) NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`;

// Each file already runs inside a transaction the runner owns; a COMMIT in the
// file would end it early and break the all-or-nothing guarantee.
const TRANSACTION_CONTROL = /^(BEGIN|COMMIT|ROLLBACK|ABORT|END|START\s+TRANSACTION|SAVEPOINT|RELEASE|PREPARE\s+TRANSACTION)\b/i;

export class MigrationError extends Error {
    constructor(message: string, options?: { cause?: unknown }) {
        super(message, options);
        this.name = "MigrationError";
    }
}

// ---------------------------------------------------------------------------
// Splitting a file into statements, so a failure can name its statement even
// when PostgreSQL reports no position (constraint violations, failed index
// builds). Follows PostgreSQL's lexical rules for what can hide a semicolon:
// quotes, E'' escapes, dollar quotes, line and nested block comments.

const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;
const IDENTIFIER_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;

function endOfQuoted(sql: string, open: number, quote: string, backslashEscapes: boolean): number {
    let i = open + 1;
    while (i < sql.length) {
        if (backslashEscapes && sql[i] === "\\") {
            i += 2;
        } else if (sql[i] === quote && sql[i + 1] === quote) {
            i += 2;
        } else if (sql[i] === quote) {
            return i + 1;
        } else {
            i += 1;
        }
    }
    return sql.length;
}

function endOfBlockComment(sql: string, open: number): number {
    let depth = 0;
    let i = open;
    while (i < sql.length) {
        if (sql.startsWith("/*", i)) {
            depth += 1;
            i += 2;
        } else if (sql.startsWith("*/", i)) {
            depth -= 1;
            i += 2;
            if (depth === 0) {
                return i;
            }
        } else {
            i += 1;
        }
    }
    return sql.length;
}

function endOfDollarQuote(sql: string, open: number): number | undefined {
    if (open > 0 && IDENTIFIER_CHAR.test(sql[open - 1])) {
        return undefined;
    }
    DOLLAR_TAG.lastIndex = open;
    const tag = DOLLAR_TAG.exec(sql)?.[0];
    if (tag === undefined) {
        return undefined;
    }
    const close = sql.indexOf(tag, open + tag.length);
    return close < 0 ? sql.length : close + tag.length;
}

function isEscapeStringPrefix(sql: string, quote: number): boolean {
    const prefix = sql[quote - 1];
    return (prefix === "E" || prefix === "e") && !(quote > 1 && IDENTIFIER_CHAR.test(sql[quote - 2]));
}

/** Splits SQL text into statements at top-level semicolons. */
export function splitStatements(sql: string): Statement[] {
    const statements: Statement[] = [];
    let start = -1;
    let i = 0;
    const finish = (end: number) => {
        if (start >= 0) {
            statements.push({ text: sql.slice(start, end).trimEnd(), offset: start });
        }
        start = -1;
    };
    while (i < sql.length) {
        const c = sql[i];
        if (sql.startsWith("--", i)) {
            const newline = sql.indexOf("\n", i);
            i = newline < 0 ? sql.length : newline + 1;
        } else if (sql.startsWith("/*", i)) {
            i = endOfBlockComment(sql, i);
        } else if (/\s/.test(c)) {
            i += 1;
        } else if (c === ";") {
            finish(i);
            i += 1;
        } else {
            if (start < 0) {
                start = i;
            }
            if (c === "'") {
                i = endOfQuoted(sql, i, "'", isEscapeStringPrefix(sql, i));
            } else if (c === '"') {
                i = endOfQuoted(sql, i, '"', false);
            } else {
                i = (c === "$" ? endOfDollarQuote(sql, i) : undefined) ?? i + 1;
            }
        }
    }
    finish(sql.length);
    return statements;
}

function lineAt(sql: string, offset: number): number {
    let line = 1;
    for (let i = 0; i < offset && i < sql.length; i += 1) {
        if (sql[i] === "\n") {
            line += 1;
        }
    }
    return line;
}

function summary(statement: Statement): string {
    const oneLine = statement.text.replace(/\s+/g, " ");
    return oneLine.length > 120 ? `${oneLine.slice(0, 117)}...` : oneLine;
}

// ---------------------------------------------------------------------------
// Reading and validating migration files.

function sha256(text: string): string {
    return createHash("sha256").update(text, "utf8").digest("hex");
}

function parseMigration(file: MigrationFile): Migration {
    const match = FILE_NAME.exec(file.name);
    if (!match) {
        throw new MigrationError(
            `Invalid migration file name "${file.name}": expected NNNN_name.sql ` +
                "(a 4-digit version, then lowercase words joined by underscores)",
        );
    }
    const version = Number(match[1]);
    if (version === 0) {
        throw new MigrationError(`Invalid migration file name "${file.name}": versions start at 0001`);
    }
    const statements = splitStatements(file.sql);
    for (const statement of statements) {
        const control = TRANSACTION_CONTROL.exec(statement.text);
        if (control) {
            throw new MigrationError(
                `${file.name} line ${lineAt(file.sql, statement.offset)}: "${control[1]}" is not allowed; ` +
                    "each migration already runs in its own transaction (write function bodies " +
                    "as dollar-quoted strings rather than BEGIN ATOMIC)",
            );
        }
    }
    return { name: file.name, sql: file.sql, version, checksum: sha256(file.sql), statements };
}

/** Validates names and versions and returns the migrations in version order. */
export function parseMigrations(files: readonly MigrationFile[]): Migration[] {
    const migrations = files.map(parseMigration).sort((a, b) => a.version - b.version);
    for (let i = 1; i < migrations.length; i += 1) {
        if (migrations[i].version === migrations[i - 1].version) {
            throw new MigrationError(
                `Duplicate migration version ${migrations[i].version}: ` +
                    `${migrations[i - 1].name} and ${migrations[i].name}`,
            );
        }
    }
    return migrations;
}

/** Reads every file of a directory; each one must be a migration. */
export function readMigrations(directory: string): Migration[] {
    const names = readdirSync(directory).sort();
    return parseMigrations(names.map((name) => ({ name, sql: readFileSync(join(directory, name), "utf8") })));
}

// ---------------------------------------------------------------------------
// Applying.

interface Recorded {
    version: number;
    name: string;
    checksum: string;
}

/** Returns the migrations still to apply, or throws if history and files disagree. */
function pendingMigrations(migrations: readonly Migration[], recorded: readonly Recorded[]): Migration[] {
    const byVersion = new Map(migrations.map((m) => [m.version, m]));
    for (const row of recorded) {
        const file = byVersion.get(row.version);
        if (!file) {
            throw new MigrationError(`${row.name} is recorded as applied but its file is missing`);
        }
        if (file.name !== row.name) {
            throw new MigrationError(
                `Version ${row.version} was applied as ${row.name} but the file is now ${file.name}; ` +
                    "applied migrations must not be renamed",
            );
        }
        if (file.checksum !== row.checksum) {
            throw new MigrationError(
                `${file.name} was edited after it was applied (recorded sha256 ${row.checksum}, ` +
                    `file sha256 ${file.checksum}); put the change in a new migration instead`,
            );
        }
    }
    const applied = new Set(recorded.map((row) => row.version));
    const latest = Math.max(0, ...applied);
    const pending = migrations.filter((m) => !applied.has(m.version));
    const late = pending.find((m) => m.version < latest);
    if (late) {
        throw new MigrationError(
            `${late.name} is not applied but version ${latest} already is; ` +
                `renumber it above ${String(latest).padStart(4, "0")}`,
        );
    }
    return pending;
}

function describeFailure(migration: Migration, statement: Statement, index: number, error: unknown): MigrationError {
    const position = error instanceof DatabaseError && error.position ? Number(error.position) - 1 : 0;
    const line = lineAt(migration.sql, statement.offset + position);
    const reason = error instanceof Error ? error.message : String(error);
    return new MigrationError(
        `${migration.name} failed at line ${line} (statement ${index + 1}: ${summary(statement)}): ${reason}`,
        { cause: error },
    );
}

async function applyOne(client: Client, migration: Migration): Promise<void> {
    await client.query("BEGIN");
    try {
        for (const [index, statement] of migration.statements.entries()) {
            try {
                await client.query(statement.text);
            } catch (error) {
                throw describeFailure(migration, statement, index, error);
            }
        }
        await client.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [
            migration.version,
            migration.name,
            migration.checksum,
        ]);
        await client.query("COMMIT");
    } catch (error) {
        // The error being reported is the one that matters; if ROLLBACK fails
        // too the session is broken and the server aborts the transaction.
        await client.query("ROLLBACK").catch(() => undefined);
        throw error;
    }
}

function clientConfig(connection: Connection): ClientConfig {
    return typeof connection === "string" ? { connectionString: connection } : connection;
}

/** Client settings from discrete values, as the Pulumi resource receives them. */
export function connectionConfig(settings: ConnectionSettings): ClientConfig {
    const ssl = { disable: false, require: { rejectUnauthorized: false }, "verify-full": { rejectUnauthorized: true } };
    if (!Object.hasOwn(ssl, settings.sslmode)) {
        throw new MigrationError(`sslmode must be one of ${Object.keys(ssl).join(", ")}; got "${settings.sslmode}"`);
    }
    if (!Number.isInteger(settings.port) || settings.port < 1 || settings.port > 65535) {
        throw new MigrationError(`port must be an integer between 1 and 65535; got ${settings.port}`);
    }
    return {
        host: settings.host,
        port: settings.port,
        database: settings.database,
        user: settings.user,
        password: settings.password,
        ssl: ssl[settings.sslmode],
    };
}

export async function applyMigrations(options: ApplyOptions): Promise<MigrationResult> {
    const migrations = "directory" in options ? readMigrations(options.directory) : parseMigrations(options.files);
    const client = new Client(clientConfig(options.connection));
    await client.connect();
    try {
        // Session-level lock, released when the connection closes below, so
        // even a run that dies mid-way cannot leave it held.
        await client.query("SELECT pg_advisory_lock($1::bigint)", [MIGRATION_LOCK_KEY]);
        await client.query(HISTORY_TABLE);
        const recorded = (
            await client.query<Recorded>("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
        ).rows;
        const pending = pendingMigrations(migrations, recorded);
        for (const migration of pending) {
            await applyOne(client, migration);
        }
        const versions = (await client.query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version"))
            .rows.map((row) => row.version);
        const appliedNow = new Set(pending.map((m) => m.name));
        return {
            applied: pending.map((m) => m.name),
            alreadyApplied: migrations.filter((m) => !appliedNow.has(m.name)).map((m) => m.name),
            versions,
        };
    } finally {
        await client.end();
    }
}
