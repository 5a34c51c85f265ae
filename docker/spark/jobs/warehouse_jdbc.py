"""The warehouse over JDBC, for the Spark jobs beside this file (imported by their drivers).

Connection settings come from the environment variables that platform.json
env.warehouseJdbcUrl / warehouseUser / warehousePassword name; the password, from the file
<warehousePassword>_FILE names when set (the stack keeps secrets out of the environment, where
`docker inspect` shows them), is handed to the JDBC driver only, never printed.
"""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

PLATFORM_FILE_ENV = "VPE_PLATFORM_FILE"
# Settings that are secrets: read from NAME_FILE when it is set (stdlib only: this module runs in
# the Spark driver, without the executor's or the Airflow image's helpers).
SECRET_KEYS = frozenset({"warehousePassword"})


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


def secret_from_env(name: str, what: str) -> str:
    """NAME's value: the content of the file NAME_FILE names (one trailing newline stripped),
    else NAME itself (the tests set it); both set is an error. Messages never hold the value."""
    file_variable = f"{name}_FILE"
    path, plain = os.environ.get(file_variable, ""), os.environ.get(name, "")
    if path and plain:
        raise SystemExit(f"both {name} and {file_variable} ({what}) are set: expected only one")
    if not path:
        return plain
    try:
        value = Path(path).read_text(encoding="utf-8").removesuffix("\n")
    except OSError as error:
        reason = f"cannot read the file ({error.strerror})"
        raise SystemExit(f"{file_variable}={path} ({what}): {reason}") from None
    except UnicodeDecodeError:
        raise SystemExit(f"{file_variable}={path} ({what}): expected UTF-8 text") from None
    if not value:
        raise SystemExit(f"{file_variable}={path} ({what}): the file is empty")
    return value


def warehouse_from_env() -> Warehouse:
    platform_file = os.environ.get(PLATFORM_FILE_ENV)
    if not platform_file:
        raise SystemExit(f"{PLATFORM_FILE_ENV} is not set: it must name platform.json")
    names = json.loads(Path(platform_file).read_text(encoding="utf-8"))["env"]
    values = {}
    for key in ("warehouseJdbcUrl", "warehouseUser", "warehousePassword"):
        variable = names[key]
        if key in SECRET_KEYS:
            values[key] = secret_from_env(variable, f"platform.json env.{key}")
        else:
            values[key] = os.environ.get(variable, "")
        if not values[key]:
            hint = f", nor is {variable}_FILE set" if key in SECRET_KEYS else ""
            raise SystemExit(
                f"environment variable {variable} (platform.json env.{key}) is empty{hint}"
            )
    return Warehouse(
        values["warehouseJdbcUrl"], values["warehouseUser"], values["warehousePassword"]
    )


def read_table(spark: SparkSession, warehouse: Warehouse, table: str, *columns: str) -> DataFrame:
    # Selecting right away lets Spark prune the JDBC query to these columns.
    return spark.read.format("jdbc").options(**warehouse.options(table)).load().select(*columns)


def read_query(spark: SparkSession, warehouse: Warehouse, query: str) -> DataFrame:
    """Rows of a SELECT run by PostgreSQL: to filter rows before they cross JDBC."""
    return spark.read.format("jdbc").options(**warehouse.options(f"({query}) AS rows")).load()


def replace_table(warehouse: Warehouse, table: str, rows: DataFrame) -> None:
    # truncate=true keeps the table (its key, CHECKs and grants); plain overwrite drops it.
    (
        rows.write.format("jdbc")
        .options(**warehouse.options(table))
        .option("truncate", "true")
        .mode("overwrite")
        .save()
    )


def recompute(
    app_name: str, table: str, compute: Callable[[SparkSession, Warehouse], DataFrame]
) -> None:
    """Runs `compute` and replaces the rows of `table` (a statistics table) with its result."""
    warehouse = warehouse_from_env()
    # A few thousand rows out: the default 200 shuffle partitions would cost more in task
    # scheduling on a 1-core worker than the aggregation itself.
    spark = (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    try:
        rows = compute(spark, warehouse).cache()
        count = rows.count()
        replace_table(warehouse, table, rows)
        print(f"{table}: wrote {count} (country, year) rows")
    finally:
        spark.stop()
