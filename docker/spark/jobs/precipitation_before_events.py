"""Spark job: precipitation before landslides, per country and year, into the warehouse.

For each landslide event, sums the hourly precipitation at its location over the 3, 7 and 30
whole days before its (local) date, the event day excluded; then, per (country, year), counts
the events that have weather in their 30-day window and averages those sums (and takes the
largest 30-day sum), rounded to 0.001 mm. Events without a country count under 'Unknown'.
The rule and units are the warehouse's (migration 0006, view
landslide_precipitation_country_year); the job replaces the rows of
precipitation_stats_country_year with the same numbers.

PostgreSQL joins each hourly value to its day before it crosses JDBC; Spark sums the days,
joins them with the event windows and aggregates. Runs like events_per_country_year.py.
"""

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from warehouse_jdbc import read_query, recompute

UNKNOWN_COUNTRY = "Unknown"
TARGET_TABLE = "precipitation_stats_country_year"
WINDOW_DAYS = (3, 7, 30)
EVENTS = """
SELECT e.landslide_event_id, e.location_id, l.country, d.day, d.year
  FROM landslide_event e
  JOIN location l USING (location_id)
  JOIN datetime d USING (datetime_id)
"""
HOURLY_PRECIPITATION = """
SELECT w.location_id, d.day, w.precipitation
  FROM weather_data w
  JOIN datetime d USING (datetime_id)
 WHERE w.precipitation IS NOT NULL
"""


def window_sum(days: int) -> Column:
    inside = F.col("w.day") >= F.date_sub(F.col("e.day"), days)
    return F.sum(F.when(inside, F.col("w.precipitation"))).alias(f"precipitation_{days}d")


def precipitation_stats(events: DataFrame, hourly: DataFrame) -> DataFrame:
    daily = hourly.groupBy("location_id", "day").agg(F.sum("precipitation").alias("precipitation"))
    longest = max(WINDOW_DAYS)
    in_window = (
        (F.col("e.location_id") == F.col("w.location_id"))
        & (F.col("w.day") >= F.date_sub(F.col("e.day"), longest))
        & (F.col("w.day") < F.col("e.day"))
    )
    per_event = (
        events.alias("e")
        .join(daily.alias("w"), in_window)
        .groupBy(
            F.col("e.landslide_event_id"),
            F.coalesce(F.col("e.country"), F.lit(UNKNOWN_COUNTRY)).alias("country"),
            F.col("e.year").cast("int").alias("year"),
        )
        .agg(*(window_sum(days) for days in WINDOW_DAYS))
    )
    means = [
        F.round(F.avg(F.coalesce(F.col(f"precipitation_{days}d"), F.lit(0))), 3).alias(
            f"mean_precipitation_{days}d_mm"
        )
        for days in WINDOW_DAYS
    ]
    largest = F.round(F.max(f"precipitation_{longest}d"), 3)
    return (
        per_event.groupBy("country", "year")
        .agg(
            F.count(F.lit(1)).cast("int").alias("events"),
            *means,
            largest.alias(f"max_precipitation_{longest}d_mm"),
        )
        .withColumn("computed_at", F.current_timestamp())
    )


def main() -> None:
    recompute(
        "precipitation_before_events",
        TARGET_TABLE,
        lambda spark, warehouse: precipitation_stats(
            read_query(spark, warehouse, EVENTS),
            read_query(spark, warehouse, HOURLY_PRECIPITATION),
        ),
    )


if __name__ == "__main__":
    main()
