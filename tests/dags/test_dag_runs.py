"""The DAGs really run in Airflow (dag.test) against an in-process gRPC PingService.

The fake executor speaks the real proto over a real gRPC channel, records every ExeTask, writes
the buffer file extract_catalog would write, and answers chosen commands with the non-OK
status the real executor uses for a failed run. Only the Spark task is marked successful
instead of run (test_spark_job.py runs the job itself).
"""

from collections.abc import Iterator
from concurrent import futures
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import executor_pb2
import executor_pb2_grpc
import grpc
import pytest
from conftest import DAGS, provision_connections
from vpe_dags.executor import EXTRACT_CATALOG, IMPORT_EVENTS

LOGICAL_DATE = datetime(2024, 5, 1, tzinfo=UTC)
DS = "2024-05-01"


class FakeExecutor(executor_pb2_grpc.PingServiceServicer):
    def __init__(self, buffer: Path, events_file: str, failing: set[str]) -> None:
        self.buffer = buffer
        self.events_file = events_file
        self.failing = failing
        self.pings: list[str] = []
        self.commands: list[Any] = []

    def ping(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.pings.append(request.message)
        return executor_pb2.PingResponse(message=request.message)

    def command(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.commands.append(request)
        if request.command in self.failing:
            context.abort(
                grpc.StatusCode.ABORTED, f"task {request.command!r} failed with exit code 3"
            )
        if request.command == EXTRACT_CATALOG:
            date = request.args[list(request.args).index("--date") + 1]
            events = self.buffer / self.events_file.format(date=date)
            events.parent.mkdir(parents=True, exist_ok=True)
            events.write_text("event_id\n1\n")
        return executor_pb2.ExeResult(message="done", run_id=request.run_id, exit_code=0)


@pytest.fixture
def executor_factory(
    airflow_db: Path, platform: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Any]:
    servers: list[grpc.Server] = []

    def start(failing: set[str] = frozenset()) -> FakeExecutor:  # type: ignore[assignment]
        fake = FakeExecutor(tmp_path, platform["bufferFiles"]["events"], set(failing))
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        executor_pb2_grpc.add_PingServiceServicer_to_server(fake, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        provision_connections(
            monkeypatch, platform, grpc_address=("127.0.0.1", port), buffer=tmp_path
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


def test_ingestion_calls_the_executor_in_order(executor_factory: Any, tmp_path: Path) -> None:
    fake = executor_factory()
    run = fresh_dag("ingestion").test(
        logical_date=LOGICAL_DATE, mark_success_pattern="^events_per_country_year$"
    )
    assert states(run) == dict.fromkeys(
        ["extract_catalog", "wait_for_events", "import_events", "events_per_country_year"],
        "success",
    )
    assert [c.command for c in fake.commands] == [EXTRACT_CATALOG, IMPORT_EVENTS]
    for call in fake.commands:
        assert list(call.args) == ["--date", DS]
        assert call.run_id.startswith(f"ingestion.{run.run_id}.{call.command}.")


def test_a_failed_executor_run_fails_the_task(executor_factory: Any) -> None:
    fake = executor_factory(failing={IMPORT_EVENTS})
    run = fresh_dag("ingestion").test(
        logical_date=LOGICAL_DATE, mark_success_pattern="^events_per_country_year$"
    )
    assert states(run) == {
        "extract_catalog": "success",
        "wait_for_events": "success",
        "import_events": "failed",
        "events_per_country_year": "upstream_failed",
    }
    assert str(run.state) == "failed"
    assert [c.command for c in fake.commands] == [EXTRACT_CATALOG, IMPORT_EVENTS]
