-- Staging tables the loaders insert into, and the triggers that turn each
-- staged row into dimension and fact rows.
--
-- Both triggers are AFTER INSERT: loaders use INSERT ... ON CONFLICT DO
-- NOTHING to make re-imports idempotent, and a BEFORE trigger would already
-- have created dimension rows for a duplicate that is then skipped. An AFTER
-- ROW trigger fires only for rows really inserted, inside the same statement,
-- so a failure anywhere rolls back the staged row and everything derived from
-- it.
--
-- The trigger functions are SECURITY DEFINER so a loader needs only INSERT on
-- the staging tables; dimension and fact tables are written by the owner of
-- these functions. Their search_path is pinned (pg_temp last) so that nobody
-- can substitute a table of the same name.
--
-- Staging coordinates are unconstrained NUMERIC as the loaders send them; the
-- range CHECKs sit here too because they must run before the value is rounded
-- into location's NUMERIC(11, 9), which would otherwise fail with an anonymous
-- overflow for, say, swapped latitude and longitude.

-- One landslide report of the catalog, flat. The importer inserts exactly the
-- columns event_id .. injuries with ON CONFLICT (event_id) DO NOTHING.
CREATE TABLE event (
    event_id           BIGINT NOT NULL,
    event_date         DATE NOT NULL,
    event_time         TIME,
    timezone           TEXT,
    country            TEXT,
    nearest_place      TEXT,
    continent_code     TEXT,
    latitude           NUMERIC NOT NULL,
    longitude          NUMERIC NOT NULL,
    hazard_type        TEXT,
    landslide_type     TEXT,
    landslide_size     TEXT,
    landslide_trigger  TEXT,
    fatalities         INTEGER,
    injuries           INTEGER,
    -- Filled by the event_load trigger.
    landslide_event_id BIGINT REFERENCES landslide_event,
    CONSTRAINT event_pkey PRIMARY KEY (event_id),
    CONSTRAINT event_latitude_range CHECK (latitude BETWEEN -90 AND 90),
    CONSTRAINT event_longitude_range CHECK (longitude BETWEEN -180 AND 180)
);

-- One hourly weather observation at a point, with soil readings at the four
-- depth bands of the weather source (0-7, 7-28, 28-100, 100-255 cm).
-- Units: temperatures in degrees Celsius, precipitation and rain in mm over
-- the hour, relative_humidity in percent, soil moisture in m3/m3, elevation in
-- metres. observed_at is local wall-clock time in "timezone" (IANA name), as
-- hourly weather series are delivered.
-- (latitude, longitude, observed_at) is unique, so a loader can re-import a
-- series with ON CONFLICT (latitude, longitude, observed_at) DO NOTHING.
CREATE TABLE data (
    data_id                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    latitude                   NUMERIC NOT NULL,
    longitude                  NUMERIC NOT NULL,
    elevation                  NUMERIC,
    timezone                   TEXT,
    observed_at                TIMESTAMP NOT NULL,
    temperature                NUMERIC,
    precipitation              NUMERIC,
    rain                       NUMERIC,
    relative_humidity          NUMERIC,
    soil_temperature_0_7cm     NUMERIC,
    soil_moisture_0_7cm        NUMERIC,
    soil_temperature_7_28cm    NUMERIC,
    soil_moisture_7_28cm       NUMERIC,
    soil_temperature_28_100cm  NUMERIC,
    soil_moisture_28_100cm     NUMERIC,
    soil_temperature_100_255cm NUMERIC,
    soil_moisture_100_255cm    NUMERIC,
    -- Filled by the data_load trigger.
    weather_data_id            BIGINT REFERENCES weather_data,
    CONSTRAINT data_observation_key UNIQUE (latitude, longitude, observed_at),
    CONSTRAINT data_latitude_range CHECK (latitude BETWEEN -90 AND 90),
    CONSTRAINT data_longitude_range CHECK (longitude BETWEEN -180 AND 180)
);

-- Returns the location at these coordinates, creating it when absent. An
-- existing location keeps its attributes; only those still unknown (NULL) are
-- filled, so a weather row never overwrites a catalog country and a later
-- catalog report can name a place first seen by the weather loader. Blank text
-- counts as unknown.
CREATE FUNCTION location_find_or_create(
    p_latitude NUMERIC,
    p_longitude NUMERIC,
    p_country TEXT,
    p_nearest_place TEXT,
    p_continent_code TEXT,
    p_elevation NUMERIC
) RETURNS BIGINT
LANGUAGE plpgsql
AS $$
DECLARE
    -- Assigning to the column types rounds to the key's scale, so the
    -- fallback lookup below compares exactly what the insert would store.
    v_latitude      location.latitude%TYPE := p_latitude;
    v_longitude     location.longitude%TYPE := p_longitude;
    v_country       TEXT := NULLIF(btrim(p_country), '');
    v_nearest_place TEXT := NULLIF(btrim(p_nearest_place), '');
    v_continent     TEXT := NULLIF(btrim(p_continent_code), '');
    v_location_id   BIGINT;
BEGIN
    INSERT INTO location AS l (country, nearest_place, continent_code, elevation, latitude, longitude)
    VALUES (v_country, v_nearest_place, v_continent, p_elevation, v_latitude, v_longitude)
    ON CONFLICT ON CONSTRAINT location_coordinates_key DO UPDATE
        SET country        = COALESCE(l.country, EXCLUDED.country),
            nearest_place  = COALESCE(l.nearest_place, EXCLUDED.nearest_place),
            continent_code = COALESCE(l.continent_code, EXCLUDED.continent_code),
            elevation      = COALESCE(l.elevation, EXCLUDED.elevation)
        -- Skip the write (and its dead tuple) when there is nothing to fill.
        WHERE (l.country IS NULL AND EXCLUDED.country IS NOT NULL)
           OR (l.nearest_place IS NULL AND EXCLUDED.nearest_place IS NOT NULL)
           OR (l.continent_code IS NULL AND EXCLUDED.continent_code IS NOT NULL)
           OR (l.elevation IS NULL AND EXCLUDED.elevation IS NOT NULL)
    RETURNING location_id INTO v_location_id;

    IF v_location_id IS NULL THEN
        SELECT location_id INTO STRICT v_location_id
          FROM location
         WHERE latitude = v_latitude AND longitude = v_longitude;
    END IF;
    RETURN v_location_id;
END
$$;

CREATE FUNCTION datetime_create(p_day DATE, p_time TIME, p_timezone TEXT)
RETURNS BIGINT
LANGUAGE sql
AS $$
    INSERT INTO datetime (day, time, timezone, month, year)
    VALUES (p_day, p_time, NULLIF(btrim(p_timezone), ''),
            EXTRACT(MONTH FROM p_day), EXTRACT(YEAR FROM p_day))
    RETURNING datetime_id;
$$;

-- Internal helpers of the triggers below, not an API for clients.
REVOKE EXECUTE ON FUNCTION location_find_or_create(NUMERIC, NUMERIC, TEXT, TEXT, TEXT, NUMERIC) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION datetime_create(DATE, TIME, TEXT) FROM PUBLIC;

CREATE FUNCTION event_load() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_landslide_event_id BIGINT;
BEGIN
    INSERT INTO landslide_event (
        event_id, location_id, datetime_id, hazard_type, landslide_type,
        landslide_size, landslide_trigger, fatalities, injuries)
    VALUES (
        NEW.event_id,
        location_find_or_create(NEW.latitude, NEW.longitude, NEW.country,
                                NEW.nearest_place, NEW.continent_code, NULL),
        datetime_create(NEW.event_date, NEW.event_time, NEW.timezone),
        NULLIF(btrim(NEW.hazard_type), ''),
        NULLIF(btrim(NEW.landslide_type), ''),
        NULLIF(btrim(NEW.landslide_size), ''),
        NULLIF(btrim(NEW.landslide_trigger), ''),
        NEW.fatalities,
        NEW.injuries)
    RETURNING landslide_event_id INTO v_landslide_event_id;

    UPDATE event SET landslide_event_id = v_landslide_event_id WHERE event_id = NEW.event_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER event_load
    AFTER INSERT ON event
    FOR EACH ROW EXECUTE FUNCTION event_load();

CREATE FUNCTION data_load() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_weather_data_id BIGINT;
BEGIN
    INSERT INTO weather_data (
        location_id, datetime_id, temperature, precipitation, rain, relative_humidity)
    VALUES (
        location_find_or_create(NEW.latitude, NEW.longitude, NULL, NULL, NULL, NEW.elevation),
        datetime_create(NEW.observed_at::date, NEW.observed_at::time, NEW.timezone),
        NEW.temperature,
        NEW.precipitation,
        NEW.rain,
        NEW.relative_humidity)
    RETURNING weather_data_id INTO v_weather_data_id;

    INSERT INTO soil (weather_data_id, depth_top_cm, depth_bottom_cm, temperature, moisture)
    VALUES (v_weather_data_id, 0, 7, NEW.soil_temperature_0_7cm, NEW.soil_moisture_0_7cm),
           (v_weather_data_id, 7, 28, NEW.soil_temperature_7_28cm, NEW.soil_moisture_7_28cm),
           (v_weather_data_id, 28, 100, NEW.soil_temperature_28_100cm, NEW.soil_moisture_28_100cm),
           (v_weather_data_id, 100, 255, NEW.soil_temperature_100_255cm, NEW.soil_moisture_100_255cm);

    UPDATE data SET weather_data_id = v_weather_data_id WHERE data_id = NEW.data_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER data_load
    AFTER INSERT ON data
    FOR EACH ROW EXECUTE FUNCTION data_load();
