// Bulk-load benchmark, in one run against a throwaway PostgreSQL with fsync on, a fresh
// migrated database per repetition:
// - events: the whole landslide sample through the `event` staging table (multi-row
//   INSERT ... ON CONFLICT DO NOTHING, a row trigger deriving the star rows);
// - weather: the sample's weather (720 hourly rows before each of its 956 events, ~690,000
//   rows) loaded by the executor's real loader, import_weather.py (COPY into a temporary table,
//   one INSERT into `data`), first through the row trigger of migration 0003 on the first
//   --row-trigger-rows rows (it is too slow for all of them), then through the statement
//   trigger of 0005 on all of them. Rates count rows into `data` per second of the loader's own
//   load (COPY, INSERT, derivation, commit; not interpreter start-up).
//   npx tsx scripts/bench_warehouse.ts [--repetitions 7] [--batch-sizes 1,50,200,1000]
//                                      [--weather-repetitions 3] [--row-trigger-rows 50000]
import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { Client } from "pg";
import { applyMigrations, readMigrations } from "../warehouse/migrate";
import { startPostgres, type PostgresServer } from "../tests/support/postgres";
import { type EventRow, insertEvents, sampleEvents } from "../tests/warehouse/sample";
import { MIGRATIONS_DIR, tempDir } from "../tests/warehouse/support";
import { platform } from "../platform";
import { median } from "./stats";

const run = promisify(execFile);
const REPO = join(__dirname, "..");
const WEATHER_DATE = "2024-06-01";
const WINDOW_HOURS = platform.weather.windowDays * 24;
// The last migration that stages weather through the row trigger.
const ROW_TRIGGER_VERSION = 4;
/** The executor's Python, as the pipeline tests run it: the .venv with its sources on the path. */
const PYTHON = join(REPO, ".venv", "bin", "python");
const PYTHON_ENV = {
    ...process.env,
    VPE_PLATFORM_FILE: join(REPO, "docker", "platform.json"),
    PYTHONPATH: [join(REPO, "docker/executor/src"), join(REPO, "docker/executor/pipelines/ingestion")].join(":"),
};

function positiveIntegers(option: string, text: string): number[] {
    const values = text.split(",").map(Number);
    if (values.some((v) => !Number.isInteger(v) || v < 1)) {
        throw new Error(`--${option} must be positive integers separated by commas; got "${text}"`);
    }
    return values;
}

/** The weather buffer file's columns, in its order: the loader's DATA_COLUMNS. */
async function weatherColumns(): Promise<string[]> {
    const script = "from weather import DATA_COLUMNS; print(','.join(DATA_COLUMNS))";
    return (await run(PYTHON, ["-c", script], { env: PYTHON_ENV })).stdout.trim().split(",");
}

/** The weather buffer file for these events: deterministic values, 720 hours before each. */
function writeWeatherFile(columns: readonly string[], events: readonly EventRow[], limit: number): { dir: string; rows: number } {
    const dir = tempDir("vpe-bench-weather-");
    const file = join(dir, platform.bufferFiles.weather.replace("{date}", WEATHER_DATE));
    mkdirSync(dirname(file), { recursive: true });
    const lines = [columns.join(",")];
    for (const [e, event] of events.entries()) {
        const start = Date.parse(`${event.event_date}T00:00:00Z`) - WINDOW_HOURS * 3_600_000;
        for (let h = 0; h < WINDOW_HOURS && lines.length <= limit; h += 1) {
            const wave = Math.sin((e * WINDOW_HOURS + h) / 24);
            const rain = Math.max(0, wave).toFixed(2);
            const observation: Record<string, unknown> = {
                latitude: event.latitude,
                longitude: event.longitude,
                elevation: "250",
                timezone: "GMT",
                observed_at: new Date(start + h * 3_600_000).toISOString().slice(0, 16).replace("T", " "),
                temperature: (15 + 10 * wave).toFixed(1),
                precipitation: rain,
                rain,
                relative_humidity: (60 + 30 * wave).toFixed(0),
                soil_temperature_0_7cm: (14 + 8 * wave).toFixed(1),
                soil_moisture_0_7cm: (0.3 + 0.1 * wave).toFixed(3),
                soil_temperature_7_28cm: (13 + 6 * wave).toFixed(1),
                soil_moisture_7_28cm: (0.31 + 0.1 * wave).toFixed(3),
                soil_temperature_28_100cm: (12 + 3 * wave).toFixed(1),
                soil_moisture_28_100cm: (0.32 + 0.1 * wave).toFixed(3),
                soil_temperature_100_255cm: (11 + wave).toFixed(1),
                soil_moisture_100_255cm: (0.33 + 0.1 * wave).toFixed(3),
            };
            lines.push(
                columns
                    .map((column) => {
                        if (!(column in observation)) throw new Error(`the benchmark has no value for weather column ${column}`);
                        return observation[column];
                    })
                    .join(","),
            );
        }
    }
    writeFileSync(file, lines.join("\n") + "\n");
    return { dir, rows: lines.length - 1 };
}

/** Runs the executor's weather loader; returns rows inserted per second of its load. */
async function importWeather(pg: PostgresServer, database: string, bufferDir: string, expected: number): Promise<number> {
    const { stdout } = await run(
        PYTHON,
        [join(REPO, "docker/executor/pipelines/ingestion/import_weather.py"), "--date", WEATHER_DATE, "--buffer-dir", bufferDir],
        { env: { ...PYTHON_ENV, [platform.env.warehouseUrl]: pg.url(database) }, maxBuffer: 1 << 20 },
    );
    const match = /inserted=(\d+) .*seconds=([\d.]+)/.exec(stdout);
    if (!match || Number(match[1]) !== expected) {
        throw new Error(`import_weather inserted ${match?.[1] ?? "?"} of ${expected} rows: ${stdout}`);
    }
    return Number(match[1]) / Number(match[2]);
}

async function weatherRates(pg: PostgresServer, events: readonly EventRow[], rows: number, maxVersion: number, repetitions: number) {
    const weather = writeWeatherFile(await weatherColumns(), events, rows);
    const files = readMigrations(MIGRATIONS_DIR).filter((m) => m.version <= maxVersion);
    const rates: number[] = [];
    for (let i = 0; i < repetitions; i += 1) {
        const database = await pg.createDatabase();
        await applyMigrations({ connection: pg.config(database), files });
        rates.push(await importWeather(pg, database, weather.dir, weather.rows));
    }
    return { rows: weather.rows, rates };
}

async function main(): Promise<void> {
    const { values } = parseArgs({
        options: {
            repetitions: { type: "string", default: "7" },
            "batch-sizes": { type: "string", default: "1,50,200,1000" },
            "weather-repetitions": { type: "string", default: "3" },
            "row-trigger-rows": { type: "string", default: "50000" },
        },
    });
    const [repetitions] = positiveIntegers("repetitions", values.repetitions);
    const batchSizes = positiveIntegers("batch-sizes", values["batch-sizes"]);
    const [weatherRepetitions] = positiveIntegers("weather-repetitions", values["weather-repetitions"]);
    const [rowTriggerRows] = positiveIntegers("row-trigger-rows", values["row-trigger-rows"]);
    const rows = sampleEvents();
    const pg = await startPostgres({ durable: true });
    const fmt = (v: number) => v.toFixed(0);
    try {
        console.log(`events: rows=${rows.length} repetitions=${repetitions} (fresh database each, fsync on)`);
        let eventRate = 0;
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
            eventRate = Math.max(eventRate, median(rates));
            console.log(
                `batch=${batchSize} rows/s median=${fmt(median(rates))} min=${fmt(Math.min(...rates))} max=${fmt(Math.max(...rates))}`,
            );
        }
        const rowTrigger = await weatherRates(pg, rows, rowTriggerRows, ROW_TRIGGER_VERSION, weatherRepetitions);
        const statement = await weatherRates(pg, rows, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, weatherRepetitions);
        for (const [name, result] of [["row trigger (0003)", rowTrigger], ["statement trigger (0005)", statement]] as const) {
            console.log(
                `weather ${name}: rows=${result.rows} repetitions=${weatherRepetitions} rows/s median=${fmt(median(result.rates))} ` +
                    `min=${fmt(Math.min(...result.rates))} max=${fmt(Math.max(...result.rates))}`,
            );
        }
        const weatherRate = median(statement.rates);
        console.log(
            `weather statement/row trigger ratio=${(weatherRate / median(rowTrigger.rates)).toFixed(2)} ` +
                `weather/best event path ratio=${(weatherRate / eventRate).toFixed(2)}`,
        );
    } finally {
        await pg.stop();
    }
}

main().catch((error: unknown) => {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
});
