"""DAG files import cleanly and declare the designed graph, connections and gRPC calls."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import executor_pb2
import executor_pb2_grpc
import pytest
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.grpc.operators.grpc import GrpcOperator
from conftest import DAGS, REPO, STUBS, provision_connections
from vpe_dags.executor import (
    EXTRACT_CATALOG,
    FETCH_WEATHER,
    IMPORT_EVENTS,
    IMPORT_WEATHER,
    ExecutorBufferSensor,
    ExecutorCommandOperator,
)
from vpe_dags.platform import PlatformError, buffer_file

SERVICE = executor_pb2.DESCRIPTOR.services_by_name["PingService"]
FORMATS = ("csv", "xlsx")
# Each catalog format on its own branch; weather after both imports; the precipitation
# statistic after the weather and after the other Spark job (one small worker runs one at a time).
INGESTION_EDGES = {
    *(
        edge
        for f in FORMATS
        for edge in (
            (f"extract_{f}", f"wait_for_events_{f}"),
            (f"wait_for_events_{f}", f"import_{f}"),
            (f"import_{f}", "fetch_weather"),
            (f"import_{f}", "events_per_country_year"),
        )
    ),
    ("fetch_weather", "wait_for_weather"),
    ("wait_for_weather", "import_weather"),
    ("import_weather", "precipitation_before_events"),
    ("events_per_country_year", "precipitation_before_events"),
}
# task id -> (registry command, its arguments after --date)
COMMANDS = {
    "extract_csv": (EXTRACT_CATALOG, ["--format", "csv"]),
    "extract_xlsx": (EXTRACT_CATALOG, ["--format", "xlsx"]),
    "import_csv": (IMPORT_EVENTS, ["--format", "csv"]),
    "import_xlsx": (IMPORT_EVENTS, ["--format", "xlsx"]),
    "fetch_weather": (FETCH_WEATHER, []),
    "import_weather": (IMPORT_WEATHER, []),
}


def edges(dag: Any) -> set[tuple[str, str]]:
    return {(task.task_id, down) for task in dag.tasks for down in task.downstream_task_ids}


def test_every_dag_file_imports_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"ping_grpc", "ingestion"}


def test_dag_folder_parses_in_a_fresh_interpreter() -> None:
    # The conftest puts dags/ on this process's sys.path for the tests' own imports; the
    # dag-processor has only what BundleDagBag adds, so check that in a clean interpreter.
    script = (
        "import sys; from pathlib import Path; from airflow.models.dagbag import BundleDagBag\n"
        "assert sys.argv[1] not in sys.path\n"
        "bag = BundleDagBag(dag_folder=sys.argv[1], bundle_path=Path(sys.argv[1]))\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "print(sorted(bag.dag_ids))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(STUBS)}
    result = subprocess.run(
        [sys.executable, "-c", script, str(DAGS)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "['ingestion', 'ping_grpc']"


def test_helper_package_is_not_parsed_as_dags(dagbag: Any) -> None:
    parsed = {Path(stat.file).name for stat in dagbag.dagbag_stats}
    assert parsed == {"ping_grpc.py", "ingestion.py"}


def test_ingestion_graph(dagbag: Any) -> None:
    dag = dagbag.dags["ingestion"]
    assert {task.task_id for task in dag.tasks} == {a for edge in INGESTION_EDGES for a in edge}
    assert edges(dag) == INGESTION_EDGES
    for sensor in ("wait_for_events_csv", "wait_for_events_xlsx", "wait_for_weather"):
        assert isinstance(dag.get_task(sensor), ExecutorBufferSensor)
    for job in ("events_per_country_year", "precipitation_before_events"):
        assert isinstance(dag.get_task(job), SparkSubmitOperator)
    assert dag.max_active_runs == 1


def test_ping_graph(dagbag: Any) -> None:
    dag = dagbag.dags["ping_grpc"]
    assert [task.task_id for task in dag.tasks] == ["ping"]
    assert isinstance(dag.get_task("ping"), GrpcOperator)


def used_connection_ids(task: Any) -> dict[str, str]:
    # SparkSubmitOperator keeps its connection id in a private attribute.
    kinds = {"grpc_conn_id": "grpc", "_conn_id": "spark"}
    return {kind: getattr(task, attr) for attr, kind in kinds.items() if hasattr(task, attr)}


def test_connections_are_the_provisioned_ones(dagbag: Any, platform: dict[str, Any]) -> None:
    seen = set()
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            for kind, conn_id in used_connection_ids(task).items():
                assert conn_id == platform["connections"][kind], (dag.dag_id, task.task_id)
                seen.add(kind)
    assert seen == set(platform["connections"])


def grpc_tasks(dagbag: Any) -> list[Any]:
    return [t for d in dagbag.dags.values() for t in d.tasks if isinstance(t, GrpcOperator)]


def test_grpc_calls_use_the_proto_methods_and_messages(dagbag: Any) -> None:
    tasks = grpc_tasks(dagbag)
    assert {t.task_id for t in tasks} == {"ping", *COMMANDS}
    for task in tasks:
        assert task.stub_class is executor_pb2_grpc.PingServiceStub
        method = SERVICE.methods_by_name[task.call_func]
        request = (
            task.request() if isinstance(task, ExecutorCommandOperator) else task.data["request"]
        )
        assert request.DESCRIPTOR is method.input_type, task.task_id
        assert task.response_callback is not None, task.task_id


def render(task: Any, ds: str) -> None:
    context = {
        "ds": ds,
        "run_id": f"scheduled__{ds}",
        "dag": task.dag,
        "task": task,
        "ti": SimpleNamespace(try_number=1),
    }
    task.render_template_fields(context)


@pytest.mark.parametrize("task_id", sorted(COMMANDS))
def test_commands_carry_the_logical_date_and_a_traceable_run_id(dagbag: Any, task_id: str) -> None:
    command, extra_args = COMMANDS[task_id]
    task = dagbag.dags["ingestion"].get_task(task_id)
    render(task, "2024-05-01")
    request = task.request()
    assert request.command == command
    assert list(request.args) == ["--date", "2024-05-01", *extra_args]
    assert request.run_id == f"ingestion.scheduled__2024-05-01.{task_id}.1"


def test_registry_knows_the_commands() -> None:
    # The executor's registry is the authority on command names.
    registry = (REPO / "docker" / "executor" / "tasks.toml").read_text()
    for command, _ in COMMANDS.values():
        assert f"[tasks.{command}]" in registry


@pytest.mark.parametrize(
    ("sensor_id", "kind", "parts"),
    [
        ("wait_for_events_csv", "events", {"format": "csv"}),
        ("wait_for_events_xlsx", "events", {"format": "xlsx"}),
        ("wait_for_weather", "weather", {}),
    ],
)
def test_sensors_wait_for_the_files_their_tasks_write(
    dagbag: Any, platform: dict[str, Any], sensor_id: str, kind: str, parts: dict[str, str]
) -> None:
    sensor = dagbag.dags["ingestion"].get_task(sensor_id)
    render(sensor, "2024-05-01")
    assert sensor.path == platform["bufferFiles"][kind].format(date="2024-05-01", **parts)
    assert sensor.request().DESCRIPTOR is SERVICE.methods_by_name["buffer_file"].input_type
    assert sensor.mode == "poke"
    assert 0 < sensor.poke_interval <= 30
    assert 0 < sensor.timeout <= 3600


@pytest.mark.parametrize("job", ["events_per_country_year", "precipitation_before_events"])
def test_spark_submit_command_fits_one_small_worker(
    dagbag: Any,
    platform: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    job: str,
) -> None:
    provision_connections(monkeypatch, platform, grpc_address=("executor", 1), tls_dir=tmp_path)
    task = dagbag.dags["ingestion"].get_task(job)
    jobs, jars = platform["paths"]["jobs"], platform["paths"]["jars"]
    assert task.application == f"{jobs}/{job}.py"
    assert (REPO / "docker" / "spark" / "jobs" / Path(task.application).name).is_file()
    command = task._get_hook()._build_spark_submit_command(task.application)
    options = dict(zip(command[1:-1:2], command[2:-1:2], strict=True))
    assert command[0] == "spark-submit"
    assert command[-1] == task.application
    master = f"spark://{platform['aliases']['sparkMaster']}:{platform['ports']['sparkMaster']}"
    assert options["--master"] == master
    assert options["--jars"] == f"{jars}/postgresql-{platform['versions']['postgresJdbc']}.jar"
    assert options["--executor-memory"] == "512m"
    assert options["--executor-cores"] == "1"
    assert options["--total-executor-cores"] == "1"
    # Client mode: PySpark cannot run its driver in the cluster on a standalone master.
    assert "--deploy-mode" not in options


def test_dags_folder_is_the_tested_one() -> None:
    assert Path(DAGS, "ingestion.py").is_file()


def test_buffer_file_fills_the_layout_or_names_the_placeholder_left(
    platform: dict[str, Any],
) -> None:
    layout = platform["bufferFiles"]["events"]
    assert buffer_file("events", "{{ ds }}", format="xlsx") == layout.format(
        date="{{ ds }}", format="xlsx"
    )
    with pytest.raises(PlatformError, match=r"bufferFiles\.events = .*\{format\}.*not filled"):
        buffer_file("events", "{{ ds }}")
