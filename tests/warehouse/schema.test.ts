import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Client, ClientConfig } from "pg";
import { applyMigrations } from "../../warehouse/migrate";
import { PostgresServer, startPostgres } from "../support/postgres";
import { EventRow, insertEvents, readCsvRecords, SAMPLE_CSV, sampleEvents } from "./sample";
import { MIGRATIONS_DIR, count, withClient } from "./support";

const DERIVED = ["location", "datetime", "landslide_event", "weather_data", "soil"] as const;

let pg: PostgresServer;
before(async () => {
    pg = await startPostgres();
});
after(async () => {
    await pg?.stop();
});

async function migratedDatabase(): Promise<ClientConfig> {
    const connection = pg.config(await pg.createDatabase());
    await applyMigrations({ connection, directory: MIGRATIONS_DIR });
    return connection;
}

async function counts(client: Client, tables: readonly string[] = [...DERIVED, "event", "data"]) {
    return Object.fromEntries(await Promise.all(tables.map(async (t) => [t, await count(client, t)] as const)));
}

const OBSERVATION_COLUMNS = [
    "latitude", "longitude", "elevation", "timezone", "observed_at", "temperature", "precipitation", "rain",
    "relative_humidity", "soil_temperature_0_7cm", "soil_moisture_0_7cm", "soil_temperature_7_28cm",
    "soil_moisture_7_28cm", "soil_temperature_28_100cm", "soil_moisture_28_100cm", "soil_temperature_100_255cm",
    "soil_moisture_100_255cm",
];

function observation(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return {
        latitude: "10.5", longitude: "20.25", elevation: "312.0", timezone: "Africa/Ndjamena",
        observed_at: "2010-05-05 14:00", temperature: "31.4", precipitation: "1.2", rain: "1.1",
        relative_humidity: "64", soil_temperature_0_7cm: "33.0", soil_moisture_0_7cm: "0.121",
        soil_temperature_7_28cm: "31.5", soil_moisture_7_28cm: "0.134", soil_temperature_28_100cm: "29.9",
        soil_moisture_28_100cm: "0.150", soil_temperature_100_255cm: "28.2", soil_moisture_100_255cm: "0.166",
        ...overrides,
    };
}

async function insertObservation(client: Client, values: Record<string, unknown>, onConflict = "") {
    const placeholders = OBSERVATION_COLUMNS.map((_, i) => `$${i + 1}`).join(", ");
    return client.query(
        `INSERT INTO data (${OBSERVATION_COLUMNS.join(", ")}) VALUES (${placeholders}) ${onConflict}`,
        OBSERVATION_COLUMNS.map((c) => values[c]),
    );
}

describe("the sample catalog through the event staging table", () => {
    const records = readCsvRecords(SAMPLE_CSV);
    const rows = sampleEvents();
    let connection: ClientConfig;

    before(async () => {
        connection = await migratedDatabase();
        const inserted = await withClient(connection, (client) => insertEvents(client, rows));
        assert.equal(inserted, rows.length);
    });

    it("reads all 956 rows of the sample", () => {
        assert.equal(records.length, 956);
    });

    it("derives one landslide event, datetime and location per row and links each staged row", async () => {
        // No two sample rows share coordinates, so every row has its own location.
        assert.equal(new Set(records.map((r) => `${r.latitude},${r.longitude}`)).size, 956);
        await withClient(connection, async (client) => {
            assert.deepEqual(await counts(client), {
                location: 956, datetime: 956, landslide_event: 956, weather_data: 0, soil: 0, event: 956, data: 0,
            });
            const mismatched = await client.query(
                `SELECT e.event_id FROM event e
                   LEFT JOIN landslide_event l ON l.landslide_event_id = e.landslide_event_id
                  WHERE l.event_id IS DISTINCT FROM e.event_id`,
            );
            assert.deepEqual(mismatched.rows, []);
        });
    });

    it("stores every country name intact, long ones included", async () => {
        const stored = await withClient(connection, async (client) =>
            (
                await client.query<{ event_id: string; country: string | null }>(
                    `SELECT e.event_id, l.country FROM landslide_event e JOIN location l USING (location_id)`,
                )
            ).rows,
        );
        const byId = new Map(stored.map((r) => [Number(r.event_id), r.country]));
        const long = records.filter((r) => r.country.length > 12);
        assert.ok(long.length > 150, "the sample has many long country names");
        for (const record of records) {
            assert.equal(byId.get(Number(record.id)), record.country === "" ? null : record.country, record.id);
        }
    });

    it("keeps dates, clock times, month and year consistent", async () => {
        await withClient(connection, async (client) => {
            const row = (
                await client.query(
                    `SELECT d.day::text, d.time::text, d.month, d.year FROM landslide_event e
                       JOIN datetime d USING (datetime_id) WHERE e.event_id = 1`,
                )
            ).rows[0];
            assert.deepEqual(row, { day: "2007-01-02", time: null, month: 1, year: 2007 });
            const timed = await count(client, "datetime WHERE time IS NOT NULL");
            assert.equal(timed, rows.filter((r) => r.event_time !== null).length);
        });
    });

    it("adds nothing when the same rows are inserted again with ON CONFLICT DO NOTHING", async () => {
        await withClient(connection, async (client) => {
            const before = await counts(client);
            assert.equal(await insertEvents(client, rows), 0);
            assert.deepEqual(await counts(client), before);
        });
    });

    it("reuses one location for repeated coordinates, however the decimals are written", async () => {
        // Sample event 2 lies at -10.3838, -75.42669999999998 (a float artefact).
        const extra = (id: number, country: string): EventRow => ({
            ...rows[1], event_id: id, country, latitude: "-10.38380", longitude: "-75.4267",
        });
        await withClient(connection, async (client) => {
            const locations = await count(client, "location");
            assert.equal(await insertEvents(client, [extra(900001, "Peru"), extra(900002, "Somewhere Else")]), 2);
            assert.equal(await count(client, "location"), locations);
            const shared = await client.query(
                `SELECT DISTINCT l.location_id, l.country FROM landslide_event e JOIN location l USING (location_id)
                  WHERE e.event_id IN (2, 900001, 900002)`,
            );
            assert.deepEqual(shared.rows.map((r) => r.country), ["Peru"], "first known country is kept");
        });
    });

    it("counts events per country and year with 'Unknown' for a missing country", async () => {
        await withClient(connection, async (client) => {
            const total = await client.query("SELECT sum(events)::int AS n FROM landslide_event_country_year");
            assert.equal(total.rows[0].n, await count(client, "landslide_event"));
            const unknown = await client.query("SELECT year, events FROM landslide_event_country_year WHERE country = 'Unknown'");
            assert.equal(unknown.rows.reduce((sum, r) => sum + r.events, 0), records.filter((r) => r.country === "").length);
        });
    });

    it("rejects a batch holding one bad row with a named constraint and writes none of it", async () => {
        await withClient(connection, async (client) => {
            const before = await counts(client);
            const good = { ...rows[0], event_id: 910001 };
            const swapped = { ...rows[0], event_id: 910002, latitude: "120.5", longitude: "30.1" };
            await assert.rejects(insertEvents(client, [good, swapped]), /violates check constraint "event_latitude_range"/);
            assert.deepEqual(await counts(client), before);
        });
    });
});

describe("the data staging table", () => {
    it("creates one weather row, four soil rows and a new location with its elevation", async () => {
        const connection = await migratedDatabase();
        await withClient(connection, async (client) => {
            await insertObservation(client, observation());
            assert.deepEqual(await counts(client), {
                location: 1, datetime: 1, landslide_event: 0, weather_data: 1, soil: 4, event: 0, data: 1,
            });
            const location = (await client.query("SELECT country, elevation::text, latitude::text, longitude::text FROM location")).rows[0];
            assert.deepEqual(location, { country: null, elevation: "312.0", latitude: "10.500000000", longitude: "20.250000000" });
            const weather = (
                await client.query(
                    `SELECT w.temperature::text, w.relative_humidity::text, d.day::text, d.time::text, d.timezone, d.month, d.year
                       FROM data s JOIN weather_data w USING (weather_data_id) JOIN datetime d USING (datetime_id)`,
                )
            ).rows[0];
            assert.deepEqual(weather, {
                temperature: "31.4", relative_humidity: "64", day: "2010-05-05", time: "14:00:00",
                timezone: "Africa/Ndjamena", month: 5, year: 2010,
            });
            const soil = await client.query(
                "SELECT depth_top_cm, depth_bottom_cm, temperature::text, moisture::text FROM soil ORDER BY depth_top_cm",
            );
            assert.deepEqual(soil.rows, [
                { depth_top_cm: 0, depth_bottom_cm: 7, temperature: "33.0", moisture: "0.121" },
                { depth_top_cm: 7, depth_bottom_cm: 28, temperature: "31.5", moisture: "0.134" },
                { depth_top_cm: 28, depth_bottom_cm: 100, temperature: "29.9", moisture: "0.150" },
                { depth_top_cm: 100, depth_bottom_cm: 255, temperature: "28.2", moisture: "0.166" },
            ]);
        });
    });

    it("reuses an existing location, filling only what it lacked", async () => {
        const connection = await migratedDatabase();
        await withClient(connection, async (client) => {
            const [peru] = sampleEvents().filter((r) => r.event_id === 2);
            await insertEvents(client, [peru]);
            await insertObservation(client, observation({ latitude: "-10.3838", longitude: "-75.4267", elevation: "1850" }));
            const locations = await client.query("SELECT country, continent_code, elevation::text FROM location");
            assert.deepEqual(locations.rows, [{ country: "Peru", continent_code: "SA", elevation: "1850" }]);
            const linked = await client.query(
                "SELECT count(DISTINCT location_id)::int AS n FROM (SELECT location_id FROM weather_data UNION ALL SELECT location_id FROM landslide_event) x",
            );
            assert.equal(linked.rows[0].n, 1);
        });
    });

    it("adds nothing for a repeated observation inserted with ON CONFLICT DO NOTHING", async () => {
        const connection = await migratedDatabase();
        await withClient(connection, async (client) => {
            const conflict = "ON CONFLICT (latitude, longitude, observed_at) DO NOTHING";
            assert.equal((await insertObservation(client, observation(), conflict)).rowCount, 1);
            const before = await counts(client);
            assert.equal((await insertObservation(client, observation({ temperature: "12" }), conflict)).rowCount, 0);
            assert.deepEqual(await counts(client), before);
        });
    });
});

describe("bulk weather loads", () => {
    it("derive every observation of one statement, once, linking each staged row to its weather row", async () => {
        const connection = await migratedDatabase();
        await withClient(connection, async (client) => {
            const load = `INSERT INTO data (latitude, longitude, elevation, timezone, observed_at, precipitation,
                                  soil_temperature_0_7cm, soil_moisture_100_255cm)
                          SELECT point.lat, point.lon, 800, 'Asia/Kathmandu', hour, 0.2, 11.5, 0.3
                            FROM (VALUES (27.7, 85.3), (-12.0, -77.0)) AS point (lat, lon),
                                 generate_series('2015-02-01'::timestamp, '2015-02-02 23:00', '1 hour') AS hour
                          ON CONFLICT (latitude, longitude, observed_at) DO NOTHING`;
            assert.equal((await client.query(load)).rowCount, 96);
            const once = await counts(client);
            assert.deepEqual(once, { location: 2, datetime: 96, landslide_event: 0, weather_data: 96, soil: 384, event: 0, data: 96 });
            assert.equal((await client.query(load)).rowCount, 0);
            assert.deepEqual(await counts(client), once, "a re-run derives nothing");
            const linked = await client.query(
                `SELECT count(*)::int AS n FROM data s JOIN weather_data w USING (weather_data_id)
                   JOIN datetime d USING (datetime_id) JOIN location l ON l.location_id = w.location_id
                  WHERE d.day = s.observed_at::date AND d.time = s.observed_at::time
                    AND l.latitude = s.latitude AND l.longitude = s.longitude AND l.elevation = 800`,
            );
            assert.equal(linked.rows[0].n, 96);
            const bands = await client.query("SELECT count(DISTINCT weather_data_id)::int AS n FROM soil WHERE depth_top_cm = 100 AND moisture = 0.3");
            assert.equal(bands.rows[0].n, 96);
        });
    });
});

describe("constraints", () => {
    async function rejectsCleanly(client: Client, attempt: () => Promise<unknown>, constraint: string) {
        const before = await counts(client);
        await assert.rejects(attempt(), new RegExp(`violates check constraint "${constraint}"`));
        assert.deepEqual(await counts(client), before, `${constraint}: nothing half-written`);
    }

    it("rejects out-of-range values by constraint name and leaves no partial rows", async () => {
        const connection = await migratedDatabase();
        await withClient(connection, async (client) => {
            await insertObservation(client, observation());
            const elsewhere = { latitude: "-33.9", longitude: "151.2", observed_at: "2011-02-01 03:00" };
            await rejectsCleanly(client, () => insertObservation(client, observation({ ...elsewhere, relative_humidity: "101" })), "weather_data_relative_humidity_range");
            // Fails after its weather row was written, inside the same statement.
            await rejectsCleanly(client, () => insertObservation(client, observation({ ...elsewhere, soil_moisture_100_255cm: "1.5" })), "soil_moisture_range");
            await rejectsCleanly(client, () => insertObservation(client, observation({ ...elsewhere, longitude: "181" })), "data_longitude_range");
            await rejectsCleanly(
                client,
                () => client.query("INSERT INTO datetime (day, month, year) VALUES ('2020-01-15', 13, 2020)"),
                "datetime_month_range",
            );
            await rejectsCleanly(
                client,
                () => client.query("INSERT INTO datetime (day, month, year) VALUES ('2020-01-15', 2, 2020)"),
                "datetime_parts_match_day",
            );
            const [first] = sampleEvents();
            await rejectsCleanly(client, () => insertEvents(client, [{ ...first, fatalities: -1 }]), "landslide_event_fatalities_nonnegative");
            await rejectsCleanly(client, () => insertEvents(client, [{ ...first, continent_code: "XX" }]), "location_continent_code_valid");
        });
    });
});

describe("least privilege", () => {
    it("lets a role with only INSERT on the staging tables (and weather ids) load through the triggers", async () => {
        const connection = await migratedDatabase();
        const password = "loader-test-password";
        await withClient(connection, async (admin) => {
            await admin.query(`CREATE ROLE test_loader LOGIN PASSWORD '${password}'`);
            await admin.query("GRANT INSERT ON event, data TO test_loader");
            // A staged observation draws its weather row's id (migration 0005).
            await admin.query("GRANT USAGE ON SEQUENCE weather_data_weather_data_id_seq TO test_loader");
            // ON CONFLICT (event_id) reads the arbiter column.
            await admin.query("GRANT SELECT (event_id) ON event TO test_loader");
        });
        await withClient({ ...connection, user: "test_loader", password }, async (loader) => {
            assert.equal(await insertEvents(loader, sampleEvents().slice(0, 3)), 3);
            await insertObservation(loader, observation());
            await assert.rejects(loader.query("SELECT * FROM location"), /permission denied for table location/);
        });
        await withClient(connection, async (admin) => {
            assert.deepEqual(await counts(admin, ["landslide_event", "weather_data", "soil"]), {
                landslide_event: 3, weather_data: 1, soil: 4,
            });
        });
    });
});
