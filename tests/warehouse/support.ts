// Helpers shared by the warehouse tests.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "pg";

export const MIGRATIONS_DIR = join(__dirname, "..", "..", "warehouse", "migrations");

/** A temp directory, removed when the test process exits. */
export function tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    return dir;
}

/** A temp directory holding the given migration files. */
export function migrationDir(files: Record<string, string>): string {
    const dir = tempDir("vpe-migrations-");
    for (const [name, sql] of Object.entries(files)) {
        writeFileSync(join(dir, name), sql);
    }
    return dir;
}

export { withClient } from "../../warehouse/access";

export async function count(client: Client, table: string): Promise<number> {
    const result = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
    return Number(result.rows[0].n);
}

export async function tableExists(client: Client, table: string): Promise<boolean> {
    const result = await client.query("SELECT to_regclass($1) IS NOT NULL AS present", [table]);
    return result.rows[0].present as boolean;
}
