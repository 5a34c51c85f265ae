"""The DAGs really run in Airflow (dag.test) against an in-process gRPC PingService.

The fake executor speaks the real proto over a real gRPC channel, records every ExeTask, writes
the buffer files extract_catalog and fetch_weather would write (the sensors ask it for them, as
they ask the real executor), and answers chosen commands with
the non-OK status the real executor uses for a failed run. Only the Spark tasks are marked
successful instead of run (test_spark_job.py runs the jobs themselves).
"""

import json
import os
import re
from collections.abc import Iterator
from concurrent import futures
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import executor_pb2
import executor_pb2_grpc
import grpc
import pytest
from conftest import DAGS, ExecutorTls, provision_connections, server_credentials
from pki import foreign_client_identity, tls_file_names, write_tls_dir
from vpe_dags.executor import EXTRACT_CATALOG, FETCH_WEATHER, IMPORT_EVENTS, IMPORT_WEATHER

LOGICAL_DATE = datetime(2024, 5, 1, tzinfo=UTC)
DS = "2024-05-01"
SPARK_TASKS = "^(events_per_country_year|precipitation_before_events)$"


class FakeExecutor(executor_pb2_grpc.PingServiceServicer):
    def __init__(self, buffer: Path, buffer_files: dict[str, str], failing: set[str]) -> None:
        self.buffer = buffer
        self.buffer_files = buffer_files
        self.failing = failing
        self.pings: list[str] = []
        self.commands: list[Any] = []
        self.buffer_queries: list[str] = []

    def ping(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.pings.append(request.message)
        return executor_pb2.PingResponse(message=request.message)

    def buffer_file(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.buffer_queries.append(request.path)
        path = self.buffer / request.path
        if not path.is_file():
            return executor_pb2.BufferFileState(exists=False)
        return executor_pb2.BufferFileState(exists=True, size_bytes=path.stat().st_size)

    def command(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.commands.append(request)
        if request.command in self.failing:
            context.abort(
                grpc.StatusCode.ABORTED, f"task {request.command!r} failed with exit code 3"
            )
        args = list(request.args)
        date = args[args.index("--date") + 1]
        written = {
            EXTRACT_CATALOG: lambda: self.buffer_files["events"].format(
                date=date, format=args[args.index("--format") + 1]
            ),
            FETCH_WEATHER: lambda: self.buffer_files["weather"].format(date=date),
        }
        if request.command in written:
            path = self.buffer / written[request.command]()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("header\n")
        return executor_pb2.ExeResult(message="done", run_id=request.run_id, exit_code=0)


@pytest.fixture
def executor_factory(
    airflow_db: Path,
    platform: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    executor_tls: ExecutorTls,
) -> Iterator[Any]:
    servers: list[grpc.Server] = []

    def start(failing: set[str] = frozenset()) -> FakeExecutor:  # type: ignore[assignment]
        fake = FakeExecutor(tmp_path, platform["bufferFiles"], set(failing))
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        executor_pb2_grpc.add_PingServiceServicer_to_server(fake, server)
        # Mutual TLS as the executor serves it: the DAGs' channel presents Airflow's certificate.
        port = server.add_secure_port("127.0.0.1:0", server_credentials(executor_tls.server_dir))
        server.start()
        servers.append(server)
        provision_connections(
            monkeypatch,
            platform,
            grpc_address=("localhost", port),
            tls_dir=executor_tls.client_dir,
        )
        return fake

    yield start
    for server in servers:
        server.stop(grace=None)


def fresh_dag(dag_id: str) -> Any:
    from airflow.models.dagbag import BundleDagBag

    dag = BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS).dags[dag_id]
    for task in dag.tasks:
        task.retries = 0  # dag.test would otherwise wait out the retry delay
    return dag


def states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def test_ping_round_trip_pushes_the_reply(executor_factory: Any) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    fake = executor_factory()
    run = fresh_dag("ping_grpc").test(logical_date=LOGICAL_DATE)
    assert states(run) == {"ping": "success"}
    assert fake.pings == ["ping from Airflow"]
    with create_session() as session:
        reply = session.query(XComModel).filter_by(run_id=run.run_id, key="reply").one()
    assert XComModel.deserialize_value(reply) == "ping from Airflow"


def test_ingestion_calls_the_executor_in_order(
    executor_factory: Any, platform: dict[str, Any]
) -> None:
    fake = executor_factory()
    run = fresh_dag("ingestion").test(logical_date=LOGICAL_DATE, mark_success_pattern=SPARK_TASKS)
    assert set(states(run).values()) == {"success"}
    assert len(states(run)) == 11
    calls = [(c.command, list(c.args)) for c in fake.commands]
    # Both formats before the weather; each import after its own extraction.
    assert sorted(calls[:4]) == sorted(
        (command, ["--date", DS, "--format", f])
        for command in (EXTRACT_CATALOG, IMPORT_EVENTS)
        for f in ("csv", "xlsx")
    )
    for f in ("csv", "xlsx"):
        args = ["--date", DS, "--format", f]
        assert calls.index((EXTRACT_CATALOG, args)) < calls.index((IMPORT_EVENTS, args))
    assert calls[4:] == [(FETCH_WEATHER, ["--date", DS]), (IMPORT_WEATHER, ["--date", DS])]
    for call in fake.commands:
        assert call.run_id.startswith(f"ingestion.{run.run_id}.")
    files = platform["bufferFiles"]
    assert sorted(set(fake.buffer_queries)) == sorted(
        [files["events"].format(date=DS, format=f) for f in ("csv", "xlsx")]
        + [files["weather"].format(date=DS)]
    )


def test_a_failed_executor_run_fails_the_task(executor_factory: Any) -> None:
    fake = executor_factory(failing={IMPORT_EVENTS})
    run = fresh_dag("ingestion").test(logical_date=LOGICAL_DATE, mark_success_pattern=SPARK_TASKS)
    assert states(run) == {
        "extract_csv": "success",
        "extract_xlsx": "success",
        "wait_for_events_csv": "success",
        "wait_for_events_xlsx": "success",
        "import_csv": "failed",
        "import_xlsx": "failed",
        "fetch_weather": "upstream_failed",
        "wait_for_weather": "upstream_failed",
        "import_weather": "upstream_failed",
        "events_per_country_year": "upstream_failed",
        "precipitation_before_events": "upstream_failed",
    }
    assert str(run.state) == "failed"
    assert FETCH_WEATHER not in [c.command for c in fake.commands]


def test_a_task_presenting_a_foreign_certificate_fails(
    executor_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    platform: dict[str, Any],
    tmp_path: Path,
) -> None:
    """The ping round trip above, with a client certificate from another CA: refused."""
    executor_factory()
    foreign_ca, intruder = foreign_client_identity()
    foreign = write_tls_dir(tmp_path / "foreign", foreign_ca, intruder)
    _, cert_file, key_file = tls_file_names()
    variable = f"AIRFLOW_CONN_{platform['connections']['grpc'].upper()}"
    value = json.loads(os.environ[variable])
    value["extra"].update(cert_file=str(foreign / cert_file), key_file=str(foreign / key_file))
    monkeypatch.setenv(variable, json.dumps(value))
    run = fresh_dag("ping_grpc").test(logical_date=LOGICAL_DATE)
    assert states(run) == {"ping": "failed"}


@pytest.mark.parametrize("broken", ["key_file", "unreadable"])
def test_the_channel_names_a_missing_extra_or_an_unreadable_file(
    tmp_path: Path, broken: str
) -> None:
    from airflow.models.connection import Connection
    from vpe_dags.executor import TLS_EXTRAS, mutual_tls_channel

    extra = {key: str(tmp_path / key) for key in TLS_EXTRAS}
    for path in extra.values():
        Path(path).write_text("pem\n")
    if broken == "key_file":
        del extra["key_file"]
        expected = "connection grpc_default: extra 'key_file' (private key file) is not set"
    else:
        Path(extra["cert_file"]).unlink()
        expected = f"connection grpc_default: extra 'cert_file': cannot read {extra['cert_file']}"
    connection = Connection(
        conn_id="grpc_default", conn_type="grpc", host="executor", port=1, extra=json.dumps(extra)
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        mutual_tls_channel(connection)
