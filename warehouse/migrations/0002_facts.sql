-- Facts: landslide reports, hourly weather and the soil readings of each
-- weather row. Rows arrive through the staging tables' triggers (0003).

CREATE TABLE landslide_event (
    landslide_event_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The catalog's own event id.
    event_id           BIGINT NOT NULL,
    location_id        BIGINT NOT NULL REFERENCES location,
    datetime_id        BIGINT NOT NULL REFERENCES datetime,
    -- Categories stay TEXT rather than enums or lookup tables: the full
    -- catalog has more values than the sample (7 landslide types, 5 sizes,
    -- 14 triggers), and a new category must not make an import fail.
    hazard_type        TEXT,
    landslide_type     TEXT,
    landslide_size     TEXT,
    landslide_trigger  TEXT,
    fatalities         INTEGER,
    injuries           INTEGER,
    CONSTRAINT landslide_event_event_id_key UNIQUE (event_id),
    CONSTRAINT landslide_event_datetime_id_key UNIQUE (datetime_id),
    CONSTRAINT landslide_event_fatalities_nonnegative CHECK (fatalities >= 0),
    CONSTRAINT landslide_event_injuries_nonnegative CHECK (injuries >= 0)
);

CREATE INDEX landslide_event_location_id_idx ON landslide_event (location_id);

CREATE TABLE weather_data (
    weather_data_id   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    location_id       BIGINT NOT NULL REFERENCES location,
    datetime_id       BIGINT NOT NULL REFERENCES datetime,
    -- Air temperature at 2 m, degrees Celsius.
    temperature       NUMERIC,
    -- Total precipitation and its liquid part over the hour, millimetres.
    precipitation     NUMERIC,
    rain              NUMERIC,
    -- Relative humidity at 2 m, percent.
    relative_humidity NUMERIC,
    CONSTRAINT weather_data_datetime_id_key UNIQUE (datetime_id),
    -- Beyond the recorded extremes of -89.2 and 56.7 degrees Celsius.
    CONSTRAINT weather_data_temperature_range CHECK (temperature BETWEEN -100 AND 70),
    CONSTRAINT weather_data_precipitation_nonnegative CHECK (precipitation >= 0),
    CONSTRAINT weather_data_rain_nonnegative CHECK (rain >= 0),
    CONSTRAINT weather_data_relative_humidity_range CHECK (relative_humidity BETWEEN 0 AND 100)
);

CREATE INDEX weather_data_location_id_idx ON weather_data (location_id);

CREATE TABLE soil (
    soil_id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    weather_data_id BIGINT NOT NULL REFERENCES weather_data,
    -- Depth band in centimetres below the surface, e.g. 0-7 or 100-255.
    depth_top_cm    SMALLINT NOT NULL,
    depth_bottom_cm SMALLINT NOT NULL,
    -- Degrees Celsius.
    temperature     NUMERIC,
    -- Volumetric water content, cubic metre of water per cubic metre of soil.
    moisture        NUMERIC,
    CONSTRAINT soil_band_key UNIQUE (weather_data_id, depth_top_cm),
    CONSTRAINT soil_depth_band_valid CHECK (depth_top_cm >= 0 AND depth_bottom_cm > depth_top_cm),
    CONSTRAINT soil_temperature_range CHECK (temperature BETWEEN -100 AND 70),
    CONSTRAINT soil_moisture_range CHECK (moisture BETWEEN 0 AND 1)
);
