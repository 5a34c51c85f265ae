"""ingestion: both catalog formats -> warehouse, their weather -> warehouse, Spark statistics.

For one logical date: extract_<format> (executor) writes the catalog's events for each format
of platform catalogSources (CSV and XLSX, in parallel); a sensor asks the executor for each
buffer file; import_<format> loads it (re-imported events are skipped). Then
fetch_weather (executor) fetches the hourly weather and soil series before every event not yet
enriched, import_weather loads them, and two Spark jobs recompute the statistics.
"""

from datetime import datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG
from vpe_dags.executor import (
    EXTRACT_CATALOG,
    FETCH_WEATHER,
    IMPORT_EVENTS,
    IMPORT_WEATHER,
    ExecutorBufferSensor,
    ExecutorCommandOperator,
)
from vpe_dags.platform import buffer_file, connection_id, value

DATE = "{{ ds }}"
DATE_ARGS = ["--date", DATE]
FORMATS = tuple(value("catalogSources"))


def wait_for(task_id: str, path: str) -> ExecutorBufferSensor:
    return ExecutorBufferSensor(
        task_id=task_id,
        path=path,
        mode="poke",
        poke_interval=5,
        timeout=300,
    )


def spark_job(name: str) -> SparkSubmitOperator:
    # Client mode: PySpark on standalone cannot run the driver in the cluster. The executor
    # sizes fit one worker of 1 core / 1 GB.
    return SparkSubmitOperator(
        task_id=name,
        conn_id=connection_id("spark"),
        application=f"{value('paths.jobs')}/{name}.py",
        jars=f"{value('paths.jars')}/postgresql-{value('versions.postgresJdbc')}.jar",
        name=name,
        executor_memory="512m",
        executor_cores=1,
        total_executor_cores=1,
        driver_memory="512m",
        execution_timeout=timedelta(minutes=15),
    )


with DAG(
    dag_id="ingestion",
    description="Import the landslide catalog (CSV and XLSX) and its weather, then statistics",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1)},
    tags=["vpe", "ingestion"],
):
    imports = []
    for source_format in FORMATS:
        format_args = [*DATE_ARGS, "--format", source_format]
        extract = ExecutorCommandOperator(
            task_id=f"extract_{source_format}", command=EXTRACT_CATALOG, command_args=format_args
        )
        load = ExecutorCommandOperator(
            task_id=f"import_{source_format}", command=IMPORT_EVENTS, command_args=format_args
        )
        events_file = buffer_file("events", DATE, format=source_format)
        extract >> wait_for(f"wait_for_events_{source_format}", events_file) >> load
        imports.append(load)

    fetch_weather = ExecutorCommandOperator(
        task_id="fetch_weather",
        command=FETCH_WEATHER,
        command_args=DATE_ARGS,
        execution_timeout=timedelta(hours=1),
    )
    wait_for_weather = wait_for("wait_for_weather", buffer_file("weather", DATE))
    import_weather = ExecutorCommandOperator(
        task_id="import_weather", command=IMPORT_WEATHER, command_args=DATE_ARGS
    )
    event_stats = spark_job("events_per_country_year")
    precipitation_stats = spark_job("precipitation_before_events")

    imports >> fetch_weather >> wait_for_weather >> import_weather
    imports >> event_stats
    [event_stats, import_weather] >> precipitation_stats
