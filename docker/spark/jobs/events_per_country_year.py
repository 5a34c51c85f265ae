"""Spark job: landslide events per country and year, recomputed into the warehouse.

Reads landslide_event, location and the events' datetime rows over JDBC, counts events per
(country, year) - events without a country count under 'Unknown', the rule of the warehouse's
landslide_event_country_year view - and replaces the rows of event_stats_country_year.

Runs as the PySpark driver in the Airflow container (client mode), submitted with the
PostgreSQL JDBC jar; warehouse_jdbc.py (beside it) holds the connection settings.
"""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from warehouse_jdbc import read_query, read_table, recompute

UNKNOWN_COUNTRY = "Unknown"
TARGET_TABLE = "event_stats_country_year"
# datetime also holds one row per hourly weather observation: read only the events' rows.
EVENT_DAYS = "SELECT datetime_id, year FROM datetime JOIN landslide_event USING (datetime_id)"


def events_per_country_year(events: DataFrame, locations: DataFrame, days: DataFrame) -> DataFrame:
    return (
        events.join(locations, "location_id")
        .join(days, "datetime_id")
        .groupBy(
            F.coalesce(F.col("country"), F.lit(UNKNOWN_COUNTRY)).alias("country"),
            F.col("year").cast("int").alias("year"),
        )
        .agg(F.count(F.lit(1)).cast("int").alias("events"))
        .withColumn("computed_at", F.current_timestamp())
    )


def main() -> None:
    recompute(
        "events_per_country_year",
        TARGET_TABLE,
        lambda spark, warehouse: events_per_country_year(
            read_table(spark, warehouse, "landslide_event", "location_id", "datetime_id"),
            read_table(spark, warehouse, "location", "location_id", "country"),
            read_query(spark, warehouse, EVENT_DAYS),
        ),
    )


if __name__ == "__main__":
    main()
