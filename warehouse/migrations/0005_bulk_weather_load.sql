-- Weather arrives in bulk (720 hourly rows per event, ~690,000 for the sample
-- catalog), so the data staging table derives its star rows once per
-- statement instead of once per row.
--
-- Measured on the sample's volume (scripts/bench_warehouse.ts): the row
-- trigger of 0003 calls two helper functions, five INSERTs and an UPDATE per
-- staged row, about 9,000 rows/s. This statement trigger does the same work
-- as five set-based INSERTs over the statement's transition table, and the
-- staged row gets its weather_data_id at insert time (a column default drawn
-- from weather_data's identity sequence) instead of being updated afterwards.
--
-- Loaders keep the interface of 0003: INSERT INTO data (...) ... ON CONFLICT
-- (latitude, longitude, observed_at) DO NOTHING. The transition table holds
-- only the rows really inserted, so a re-import derives nothing twice; a
-- failure anywhere rolls back the whole statement.

DROP TRIGGER data_load ON data;
DROP FUNCTION data_load();

-- Drawn when the row is staged; the statement trigger creates the weather row
-- with this id. Loaders need USAGE on the sequence (no other privilege on
-- weather_data): a loader can burn ids, not write weather rows.
ALTER TABLE data
    ALTER COLUMN weather_data_id SET DEFAULT nextval(pg_get_serial_sequence('weather_data', 'weather_data_id'));

-- The staged row exists before its weather row, which the statement trigger
-- creates at the end of the same statement: check the reference at commit.
ALTER TABLE data ALTER CONSTRAINT data_weather_data_id_fkey DEFERRABLE INITIALLY DEFERRED;

CREATE FUNCTION data_load_statement() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
    -- Locations first, one per distinct rounded point: a weather source only
    -- knows the elevation, which fills an existing location's unknown one
    -- (location_find_or_create's rule, set-based).
    INSERT INTO location AS l (latitude, longitude, elevation)
    SELECT latitude, longitude, max(elevation)
      FROM (SELECT latitude::NUMERIC(11, 9) AS latitude,
                   longitude::NUMERIC(12, 9) AS longitude,
                   elevation
              FROM staged) AS points
     GROUP BY latitude, longitude
    ON CONFLICT ON CONSTRAINT location_coordinates_key DO UPDATE
        SET elevation = EXCLUDED.elevation
        WHERE l.elevation IS NULL AND EXCLUDED.elevation IS NOT NULL;

    WITH observation AS MATERIALIZED (
        SELECT s.*,
               l.location_id,
               nextval(pg_get_serial_sequence('datetime', 'datetime_id')) AS datetime_id
          FROM staged s
          JOIN location l
            ON l.latitude = s.latitude::NUMERIC(11, 9)
           AND l.longitude = s.longitude::NUMERIC(12, 9)
    ), moments AS (
        INSERT INTO datetime (datetime_id, day, time, timezone, month, year)
        OVERRIDING SYSTEM VALUE
        SELECT datetime_id, observed_at::date, observed_at::time, NULLIF(btrim(timezone), ''),
               EXTRACT(MONTH FROM observed_at), EXTRACT(YEAR FROM observed_at)
          FROM observation
    ), weather AS (
        INSERT INTO weather_data (
            weather_data_id, location_id, datetime_id, temperature, precipitation, rain,
            relative_humidity)
        OVERRIDING SYSTEM VALUE
        SELECT weather_data_id, location_id, datetime_id, temperature, precipitation, rain,
               relative_humidity
          FROM observation
    )
    INSERT INTO soil (weather_data_id, depth_top_cm, depth_bottom_cm, temperature, moisture)
    SELECT o.weather_data_id, band.top_cm, band.bottom_cm, band.temperature, band.moisture
      FROM observation o
     CROSS JOIN LATERAL (VALUES
           (0, 7, o.soil_temperature_0_7cm, o.soil_moisture_0_7cm),
           (7, 28, o.soil_temperature_7_28cm, o.soil_moisture_7_28cm),
           (28, 100, o.soil_temperature_28_100cm, o.soil_moisture_28_100cm),
           (100, 255, o.soil_temperature_100_255cm, o.soil_moisture_100_255cm)
         ) AS band (top_cm, bottom_cm, temperature, moisture);
    RETURN NULL;
END
$$;

CREATE TRIGGER data_load
    AFTER INSERT ON data
    REFERENCING NEW TABLE AS staged
    FOR EACH STATEMENT EXECUTE FUNCTION data_load_statement();
