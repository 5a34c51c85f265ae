"""ingestion: catalog -> buffer -> warehouse -> Spark statistics, for one logical date.

extract_catalog (executor) writes <buffer>/<bufferFiles.events> for the date; the sensor waits
for it on the shared buffer volume; import_events (executor) loads it into the warehouse; the
Spark job recomputes events per country and year.
"""

from datetime import datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.sensors.filesystem import FileSensor
from airflow.sdk import DAG
from vpe_dags.executor import EXTRACT_CATALOG, IMPORT_EVENTS, ExecutorCommandOperator
from vpe_dags.platform import buffer_file, connection_id, value

DATE_ARGS = ["--date", "{{ ds }}"]
SPARK_JOB = "events_per_country_year.py"

with DAG(
    dag_id="ingestion",
    description="Extract the landslide catalog, import it and recompute the statistics",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1)},
    tags=["vpe", "ingestion"],
):
    extract = ExecutorCommandOperator(
        task_id="extract_catalog", command=EXTRACT_CATALOG, command_args=DATE_ARGS
    )
    wait_for_events = FileSensor(
        task_id="wait_for_events",
        fs_conn_id=connection_id("fs"),
        filepath=buffer_file("events", "{{ ds }}"),
        mode="poke",
        poke_interval=5,
        timeout=300,
    )
    load = ExecutorCommandOperator(
        task_id="import_events", command=IMPORT_EVENTS, command_args=DATE_ARGS
    )
    # Client mode: PySpark on standalone cannot run the driver in the cluster. The executor
    # sizes fit one worker of 1 core / 1 GB.
    stats = SparkSubmitOperator(
        task_id="events_per_country_year",
        conn_id=connection_id("spark"),
        application=f"{value('paths.jobs')}/{SPARK_JOB}",
        jars=f"{value('paths.jars')}/postgresql-{value('versions.postgresJdbc')}.jar",
        name="events_per_country_year",
        executor_memory="512m",
        executor_cores=1,
        total_executor_cores=1,
        driver_memory="512m",
        execution_timeout=timedelta(minutes=15),
    )
    extract >> wait_for_events >> load >> stats
