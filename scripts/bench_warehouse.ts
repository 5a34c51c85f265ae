// Bulk-load benchmark: the whole landslide sample through the `event` staging
// table (multi-row INSERT ... ON CONFLICT DO NOTHING, triggers deriving the
// star rows), on a fresh migrated database per repetition, against a
// throwaway PostgreSQL with fsync on.
//   npx tsx scripts/bench_warehouse.ts [--repetitions 7] [--batch-sizes 1,50,200,1000]
import { parseArgs } from "node:util";
import { Client } from "pg";
import { applyMigrations } from "../warehouse/migrate";
import { startPostgres } from "../tests/support/postgres";
import { insertEvents, sampleEvents } from "../tests/warehouse/sample";
import { MIGRATIONS_DIR } from "../tests/warehouse/support";

function median(values: number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    const middle = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function positiveIntegers(option: string, text: string): number[] {
    const values = text.split(",").map(Number);
    if (values.some((v) => !Number.isInteger(v) || v < 1)) {
        throw new Error(`--${option} must be positive integers separated by commas; got "${text}"`);
    }
    return values;
}

async function main(): Promise<void> {
    const { values } = parseArgs({
        options: { repetitions: { type: "string", default: "7" }, "batch-sizes": { type: "string", default: "1,50,200,1000" } },
    });
    const [repetitions] = positiveIntegers("repetitions", values.repetitions);
    const batchSizes = positiveIntegers("batch-sizes", values["batch-sizes"]);
    const rows = sampleEvents();
    const pg = await startPostgres({ durable: true });
    try {
        console.log(`rows=${rows.length} repetitions=${repetitions} (fresh database each, fsync on)`);
        for (const batchSize of batchSizes) {
            const rates: number[] = [];
            for (let i = 0; i < repetitions; i += 1) {
                const config = pg.config(await pg.createDatabase());
                await applyMigrations({ connection: config, directory: MIGRATIONS_DIR });
                const client = new Client(config);
                await client.connect();
                try {
                    const started = process.hrtime.bigint();
                    const inserted = await insertEvents(client, rows, batchSize);
                    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
                    if (inserted !== rows.length) {
                        throw new Error(`inserted ${inserted} of ${rows.length} rows`);
                    }
                    rates.push(rows.length / seconds);
                } finally {
                    await client.end();
                }
            }
            const fmt = (v: number) => v.toFixed(0);
            console.log(
                `batch=${batchSize} rows/s median=${fmt(median(rates))} min=${fmt(Math.min(...rates))} max=${fmt(Math.max(...rates))}`,
            );
        }
    } finally {
        await pg.stop();
    }
}

main().catch((error: unknown) => {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
});
