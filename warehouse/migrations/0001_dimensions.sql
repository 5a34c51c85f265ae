-- Dimensions shared by the landslide facts and the weather facts.
--
-- Rule used for every numeric type in this warehouse: only the coordinates get
-- a fixed scale, because they are a lookup key and must compare equal when
-- they denote the same point. Measures are unconstrained NUMERIC (stored
-- exactly as the source gave them) with named range CHECKs, so an out-of-range
-- value fails with a constraint name instead of an anonymous
-- "numeric field overflow".

CREATE TABLE location (
    location_id    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- TEXT, not VARCHAR(12): 193 of the 956 sample rows have country names
    -- longer than 12 characters ("Democratic Republic of Congo" has 28).
    country        TEXT,
    -- Free text of up to 343 characters in the sample.
    nearest_place  TEXT,
    -- Two-letter continent code; NULL for 235 of the 956 sample rows.
    continent_code TEXT,
    -- Metres above sea level, known only when a weather source reports it.
    elevation      NUMERIC,
    -- The catalog has up to 9 real decimals (-8.626481143) plus binary-float
    -- artefacts (-75.42669999999998). Scale 9 (~0.1 mm) keeps every real digit
    -- and rounds the artefacts away, so one place maps to one key; a float
    -- type would make the equality lookup on (latitude, longitude) unreliable.
    latitude       NUMERIC(11, 9) NOT NULL,
    longitude      NUMERIC(12, 9) NOT NULL,
    -- Also the index behind the find-or-create lookup of the loaders.
    CONSTRAINT location_coordinates_key UNIQUE (latitude, longitude),
    CONSTRAINT location_latitude_range CHECK (latitude BETWEEN -90 AND 90),
    CONSTRAINT location_longitude_range CHECK (longitude BETWEEN -180 AND 180),
    CONSTRAINT location_continent_code_valid
        CHECK (continent_code IN ('AF', 'AN', 'AS', 'EU', 'NA', 'OC', 'SA')),
    -- Dead Sea shore to Everest summit.
    CONSTRAINT location_elevation_range CHECK (elevation BETWEEN -500 AND 9000)
);

COMMENT ON TABLE location IS
    'One row per distinct point (latitude, longitude rounded to 9 decimals). '
    'Attributes are filled by the first source that knows them.';

CREATE TABLE datetime (
    datetime_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Local calendar day of the report or observation.
    day         DATE NOT NULL,
    -- Local time of day; NULL when unknown (916 of the 956 catalog rows, whose
    -- "time" is empty or words such as "night").
    time        TIME,
    -- IANA zone name (e.g. Asia/Kathmandu) when the source gives one.
    timezone    TEXT,
    -- Kept as columns, like the original schema, so reports and the Spark job
    -- can group by them without date functions; they must agree with "day".
    month       SMALLINT NOT NULL,
    year        SMALLINT NOT NULL,
    CONSTRAINT datetime_month_range CHECK (month BETWEEN 1 AND 12),
    CONSTRAINT datetime_parts_match_day
        CHECK (month = EXTRACT(MONTH FROM day) AND year = EXTRACT(YEAR FROM day))
);

COMMENT ON TABLE datetime IS
    'When a landslide was reported or a weather observation was taken; one row per fact row.';
