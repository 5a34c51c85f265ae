// Applies the warehouse migrations:
//   npx tsx warehouse/cli.ts --database-url <url> [--dir warehouse/migrations]
// The URL may come from DATABASE_URL instead. Exit code 1 on any failure.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { applyMigrations } from "./migrate";

const USAGE = "usage: cli.ts --database-url <postgresql://...> [--dir <migrations directory>] (or set DATABASE_URL)";

// Both spellings: as typed (percent-encoded) and as the driver decodes it.
function passwordsIn(text: string): string[] {
    const raw = /:\/\/[^:/@\s]*:([^@\s]+)@/.exec(text)?.[1];
    if (!raw) {
        return [];
    }
    try {
        return [raw, decodeURIComponent(raw)];
    } catch {
        return [raw];
    }
}

// Driver and argument-parser messages can echo a URL back (parseArgs quotes
// an unexpected positional argument); no password reaches a terminal or log.
function redact(message: string, sources: readonly (string | undefined)[]): string {
    return sources
        .flatMap((source) => (source ? passwordsIn(source) : []))
        .reduce((text, password) => text.split(password).join("***"), message);
}

function messageOf(error: unknown): string {
    return error instanceof Error ? error.message : String(error);
}

async function main(argv: string[]): Promise<number> {
    const { values } = parseArgs({
        args: argv,
        options: { "database-url": { type: "string" }, dir: { type: "string" } },
    });
    const url = values["database-url"] ?? process.env.DATABASE_URL;
    if (!url) {
        console.error(`error: no database URL given\n${USAGE}`);
        return 1;
    }
    const directory = values.dir ?? join(__dirname, "migrations");
    try {
        const result = await applyMigrations({ connection: url, directory });
        for (const name of result.applied) {
            console.log(`applied ${name}`);
        }
        console.log(
            `${result.applied.length} applied, ${result.alreadyApplied.length} already applied ` +
                `(latest version ${result.versions.at(-1) ?? "none"})`,
        );
        return 0;
    } catch (error) {
        console.error(`error: ${redact(messageOf(error), [url])}`);
        return 1;
    }
}

const argv = process.argv.slice(2);
main(argv).then(
    (code) => {
        process.exitCode = code;
    },
    (error: unknown) => {
        // Only parseArgs gets here: a bad option, before any URL is known.
        console.error(`error: ${redact(messageOf(error), [...argv, process.env.DATABASE_URL])}\n${USAGE}`);
        process.exitCode = 1;
    },
);
