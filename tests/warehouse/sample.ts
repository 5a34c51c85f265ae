// The landslide catalog sample as rows of the `event` staging table, and a
// batched loader; shared by the schema tests and scripts/bench_warehouse.ts.
import { readFileSync } from "node:fs";
import { ClientBase } from "pg";

export const SAMPLE_CSV = "/work/shared/data/landslides_sample.csv";

/** The staging columns the executor's importer writes, in its order. */
export const EVENT_COLUMNS = [
    "event_id", "event_date", "event_time", "timezone", "country", "nearest_place", "continent_code",
    "latitude", "longitude", "hazard_type", "landslide_type", "landslide_size", "landslide_trigger",
    "fatalities", "injuries",
] as const;

export type EventRow = Record<(typeof EVENT_COLUMNS)[number], string | number | null>;

/** RFC 4180: quoted fields may hold commas, doubled quotes and newlines. */
export function parseCsv(text: string): string[][] {
    const rows: string[][] = [];
    let row: string[] = [];
    let field = "";
    let quoted = false;
    for (let i = 0; i < text.length; i += 1) {
        const c = text[i];
        if (quoted) {
            if (c === '"' && text[i + 1] === '"') {
                field += '"';
                i += 1;
            } else if (c === '"') {
                quoted = false;
            } else {
                field += c;
            }
        } else if (c === '"') {
            quoted = true;
        } else if (c === ",") {
            row.push(field);
            field = "";
        } else if (c === "\n" || c === "\r") {
            if (c === "\r" && text[i + 1] === "\n") {
                i += 1;
            }
            row.push(field);
            rows.push(row);
            row = [];
            field = "";
        } else {
            field += c;
        }
    }
    if (field !== "" || row.length > 0) {
        row.push(field);
        rows.push(row);
    }
    return rows;
}

export function readCsvRecords(file: string): Record<string, string>[] {
    const [header, ...rows] = parseCsv(readFileSync(file, "utf8"));
    return rows.map((row) => Object.fromEntries(header.map((name, i) => [name, row[i] ?? ""])));
}

const blankToNull = (value: string): string | null => (value.trim() === "" ? null : value);
const countOrNull = (value: string): number | null => (value.trim() === "" ? null : Math.round(Number(value)));

// "MM/DD/YYYY" in the catalog.
function isoDate(value: string): string {
    const [month, day, year] = value.split("/");
    return `${year}-${month}-${day}`;
}

// Clock times only ("2:00:00", "15:20"); words such as "night" mean unknown.
function clockTime(value: string): string | null {
    return /^\d{1,2}:\d{2}(:\d{2})?$/.test(value.trim()) ? value.trim() : null;
}

export function toEventRow(record: Record<string, string>): EventRow {
    return {
        event_id: Number(record.id),
        event_date: isoDate(record.date),
        event_time: clockTime(record.time),
        timezone: null,
        country: blankToNull(record.country),
        nearest_place: blankToNull(record.nearest_places),
        continent_code: blankToNull(record.continentcode),
        // Passed as text so NUMERIC receives the catalog's digits unchanged.
        latitude: record.latitude,
        longitude: record.longitude,
        hazard_type: blankToNull(record.hazard_type),
        landslide_type: blankToNull(record.landslide_type),
        landslide_size: blankToNull(record.landslide_size),
        landslide_trigger: blankToNull(record.trigger),
        fatalities: countOrNull(record.fatalities),
        injuries: countOrNull(record.injuries),
    };
}

export function sampleEvents(): EventRow[] {
    return readCsvRecords(SAMPLE_CSV).map(toEventRow);
}

/** Multi-row INSERT ... ON CONFLICT (event_id) DO NOTHING; returns rows inserted. */
export async function insertEvents(client: ClientBase, rows: readonly EventRow[], batchSize = 200): Promise<number> {
    let inserted = 0;
    for (let start = 0; start < rows.length; start += batchSize) {
        const batch = rows.slice(start, start + batchSize);
        const values = batch.map(
            (_, r) => `(${EVENT_COLUMNS.map((_c, c) => `$${r * EVENT_COLUMNS.length + c + 1}`).join(", ")})`,
        );
        const params = batch.flatMap((row) => EVENT_COLUMNS.map((column) => row[column]));
        const result = await client.query(
            `INSERT INTO event (${EVENT_COLUMNS.join(", ")}) VALUES ${values.join(", ")} ON CONFLICT (event_id) DO NOTHING`,
            params,
        );
        inserted += result.rowCount ?? 0;
    }
    return inserted;
}
