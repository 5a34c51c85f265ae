-- Rain before landslides: for each event, the precipitation at its location
-- in the 3, 7 and 30 days before its (local) date, summarised per country and
-- year. The rule lives in one view; the Spark job
-- (docker/spark/jobs/precipitation_before_events.py) fills the table with the
-- same numbers, the way event_stats_country_year mirrors its view (0004).
--
-- Windows: the N whole local days before the event day, the event day itself
-- excluded (N = 3, 7, 30; the weather loader fetches exactly the 30). Hours
-- without a precipitation value (gaps of the weather source) add nothing; an
-- event counts only when its 30-day window has at least one value. Events
-- without a country count under 'Unknown', as in 0004.
--
-- Units: millimetres of precipitation (rain, showers and snowfall as water),
-- summed over the window's hours, then averaged over the events (mean_*) or
-- the largest event's (max_precipitation_30d_mm); rounded to 0.001 mm.

CREATE VIEW landslide_precipitation_country_year AS
WITH event_window AS (
    SELECT e.landslide_event_id,
           COALESCE(l.country, 'Unknown') AS country,
           event_day.year::INTEGER AS year,
           sum(w.precipitation) FILTER (WHERE hour.day >= event_day.day - 3) AS precipitation_3d,
           sum(w.precipitation) FILTER (WHERE hour.day >= event_day.day - 7) AS precipitation_7d,
           sum(w.precipitation) AS precipitation_30d
      FROM landslide_event e
      JOIN location l USING (location_id)
      JOIN datetime event_day ON event_day.datetime_id = e.datetime_id
      JOIN weather_data w ON w.location_id = e.location_id
      JOIN datetime hour ON hour.datetime_id = w.datetime_id
     WHERE hour.day >= event_day.day - 30
       AND hour.day < event_day.day
       AND w.precipitation IS NOT NULL
     GROUP BY e.landslide_event_id, l.country, event_day.year
)
SELECT country,
       year,
       count(*)::INTEGER AS events,
       round(avg(COALESCE(precipitation_3d, 0)), 3) AS mean_precipitation_3d_mm,
       round(avg(COALESCE(precipitation_7d, 0)), 3) AS mean_precipitation_7d_mm,
       round(avg(precipitation_30d), 3) AS mean_precipitation_30d_mm,
       round(max(precipitation_30d), 3) AS max_precipitation_30d_mm
  FROM event_window
 GROUP BY country, year;

-- Derived data, recomputed by the job with TRUNCATE + INSERT (see 0004).
CREATE TABLE precipitation_stats_country_year (
    country                   TEXT NOT NULL,
    year                      INTEGER NOT NULL,
    -- Events of this country and year with weather in their 30-day window.
    events                    INTEGER NOT NULL,
    mean_precipitation_3d_mm  NUMERIC NOT NULL,
    mean_precipitation_7d_mm  NUMERIC NOT NULL,
    mean_precipitation_30d_mm NUMERIC NOT NULL,
    max_precipitation_30d_mm  NUMERIC NOT NULL,
    computed_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT precipitation_stats_country_year_pkey PRIMARY KEY (country, year),
    CONSTRAINT precipitation_stats_country_year_country_not_blank CHECK (btrim(country) <> ''),
    CONSTRAINT precipitation_stats_country_year_events_positive CHECK (events > 0),
    CONSTRAINT precipitation_stats_country_year_nonnegative CHECK (
        mean_precipitation_3d_mm >= 0 AND mean_precipitation_7d_mm >= 0
        AND mean_precipitation_30d_mm >= 0 AND max_precipitation_30d_mm >= 0)
);

COMMENT ON TABLE precipitation_stats_country_year IS
    'Per country and year: events with weather, and the mean (and largest) precipitation in mm '
    'at their location in the 3, 7 and 30 days before the event. Filled by the Spark job '
    'precipitation_before_events; same rule as the view landslide_precipitation_country_year.';
