-- Landslide events per country and year: the rule in one view, and the table
-- the Spark job fills from it (or from the same join).
--
-- Events whose location has no country are counted under 'Unknown': the
-- primary key cannot hold NULL, and 1 of the 956 sample rows has no country.

CREATE VIEW landslide_event_country_year AS
SELECT COALESCE(l.country, 'Unknown') AS country,
       d.year::INTEGER                AS year,
       count(*)::INTEGER              AS events
  FROM landslide_event e
  JOIN location l USING (location_id)
  JOIN datetime d USING (datetime_id)
 GROUP BY 1, 2;

-- Derived data, recomputed by the job. Writers must keep the table: with
-- Spark's JDBC writer use mode "overwrite" together with option
-- truncate=true (or upsert); a plain overwrite DROPs and recreates it, losing
-- the primary key, the CHECKs and the grants.
CREATE TABLE event_stats_country_year (
    country     TEXT NOT NULL,
    year        INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT event_stats_country_year_pkey PRIMARY KEY (country, year),
    CONSTRAINT event_stats_country_year_country_not_blank CHECK (btrim(country) <> ''),
    CONSTRAINT event_stats_country_year_events_positive CHECK (events > 0)
);
