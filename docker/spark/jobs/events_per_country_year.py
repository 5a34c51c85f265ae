"""Spark job: landslide events per country and year, recomputed into the warehouse.

Reads landslide_event, location and datetime over JDBC, counts events per (country, year) -
events without a country count under 'Unknown', the rule of the warehouse's
landslide_event_country_year view - and replaces the rows of event_stats_country_year.

Runs as the PySpark driver in the Airflow container (client mode), submitted with the
PostgreSQL JDBC jar. Connection settings come from the environment variables that
platform.json env.warehouseJdbcUrl / warehouseUser / warehousePassword name; the password is
handed to the JDBC driver only, never printed.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

PLATFORM_FILE_ENV = "VPE_PLATFORM_FILE"
UNKNOWN_COUNTRY = "Unknown"
TARGET_TABLE = "event_stats_country_year"


@dataclass(frozen=True)
class Warehouse:
    url: str
    user: str
    password: str

    def __repr__(self) -> str:
        return f"Warehouse(url={self.url!r}, user={self.user!r}, password=<hidden>)"

    def options(self, table: str) -> dict[str, str]:
        return {
            "url": self.url,
            "user": self.user,
            "password": self.password,
            "driver": "org.postgresql.Driver",
            "dbtable": table,
        }


def warehouse_from_env() -> Warehouse:
    platform_file = os.environ.get(PLATFORM_FILE_ENV)
    if not platform_file:
        raise SystemExit(f"{PLATFORM_FILE_ENV} is not set: it must name platform.json")
    names = json.loads(Path(platform_file).read_text(encoding="utf-8"))["env"]
    values = {}
    for key in ("warehouseJdbcUrl", "warehouseUser", "warehousePassword"):
        variable = names[key]
        values[key] = os.environ.get(variable, "")
        if not values[key]:
            raise SystemExit(f"environment variable {variable} (platform.json env.{key}) is empty")
    return Warehouse(
        values["warehouseJdbcUrl"], values["warehouseUser"], values["warehousePassword"]
    )


def read_table(spark: SparkSession, warehouse: Warehouse, table: str, *columns: str) -> DataFrame:
    # Selecting right away lets Spark prune the JDBC query to these columns.
    return spark.read.format("jdbc").options(**warehouse.options(table)).load().select(*columns)


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
    warehouse = warehouse_from_env()
    # A few thousand rows at most: the default 200 shuffle partitions would cost more in task
    # scheduling on a 1-core worker than the aggregation itself.
    spark = (
        SparkSession.builder.appName("events_per_country_year")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    try:
        stats = events_per_country_year(
            read_table(spark, warehouse, "landslide_event", "location_id", "datetime_id"),
            read_table(spark, warehouse, "location", "location_id", "country"),
            read_table(spark, warehouse, "datetime", "datetime_id", "year"),
        ).cache()
        rows = stats.count()
        # truncate=true keeps the table (its key, CHECKs and grants); plain overwrite drops it.
        (
            stats.write.format("jdbc")
            .options(**warehouse.options(TARGET_TABLE))
            .option("truncate", "true")
            .mode("overwrite")
            .save()
        )
        print(f"{TARGET_TABLE}: wrote {rows} (country, year) rows")
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
