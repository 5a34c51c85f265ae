"""Calling the executor's PingService from DAGs: the provider's GrpcOperator for ping and
command, and a sensor that asks the executor for the files of its buffer.

The generated stubs (executor_pb2, executor_pb2_grpc) are on the Airflow image's PYTHONPATH;
tests generate them from docker/proto/executor.proto into a temporary folder.
"""

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
from airflow.providers.grpc.operators.grpc import GrpcOperator
from airflow.sdk import BaseHook, BaseSensorOperator
from executor_pb2 import BufferFileQuery, ExeResult, ExeTask, PingResponse
from executor_pb2_grpc import PingServiceStub

from vpe_dags.platform import connection_id

# Commands of the executor's task registry (docker/executor/tasks.toml) the DAGs call.
EXTRACT_CATALOG = "extract_catalog"
IMPORT_EVENTS = "import_events"
FETCH_WEATHER = "fetch_weather"
IMPORT_WEATHER = "import_weather"

# Names the Airflow run and task, so the executor's per-run log file can be traced back; the
# executor replaces characters that are unsafe in file names.
RUN_ID_TEMPLATE = "{{ dag.dag_id }}.{{ run_id }}.{{ task.task_id }}.{{ ti.try_number }}"


# The grpc connection's extras naming the stack's mutual-TLS files (components/airflow.ts).
TLS_EXTRAS = {"ca_file": "CA certificate", "cert_file": "certificate", "key_file": "private key"}


def mutual_tls_channel(connection: Any) -> grpc.Channel:
    """The provider's CUSTOM auth type: its SSL/TLS type cannot present a client certificate.

    The executor accepts only clients whose certificate its CA signed, and the channel checks the
    executor's certificate against that CA and the connection's host.
    """
    extra = connection.extra_dejson
    pem: dict[str, bytes] = {}
    for key, what in TLS_EXTRAS.items():
        path = extra.get(key)
        if not path:
            raise ValueError(
                f"connection {connection.conn_id}: extra {key!r} ({what} file) is not set"
            )
        try:
            pem[key] = Path(path).read_bytes()
        except OSError as exc:
            where = f"connection {connection.conn_id}: extra {key!r}"
            raise ValueError(f"{where}: cannot read {path}: {exc.strerror}") from exc
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pem["ca_file"],
        private_key=pem["key_file"],
        certificate_chain=pem["cert_file"],
    )
    return grpc.secure_channel(f"{connection.host}:{connection.port}", credentials)


def push_ping_reply(response: PingResponse, context: Any) -> None:
    """GrpcOperator response_callback of `ping`: the reply must echo a non-empty message."""
    if not response.message:
        raise ValueError("executor ping returned an empty message")
    context["ti"].xcom_push(key="reply", value=response.message)


def push_command_result(response: ExeResult, context: Any) -> None:
    """GrpcOperator response_callback of `command`: publishes the run's outcome to XCom.

    Failures never get here: the executor answers them with a non-OK gRPC status, which the
    provider's hook re-raises, failing the task. A zero exit code is still checked so that an
    executor breaking that contract cannot turn a failed run into a green task.
    """
    if response.exit_code != 0:
        raise RuntimeError(
            f"executor run {response.run_id} exited {response.exit_code}: {response.message}"
        )
    context["ti"].xcom_push(
        key="result",
        value={
            "message": response.message,
            "run_id": response.run_id,
            "log_path": response.log_path,
            "duration_seconds": response.duration_seconds,
        },
    )


class PingServiceOperator(GrpcOperator):
    """GrpcOperator bound to the executor's PingService on the platform's gRPC connection.

    GrpcOperator lists `stub_class` among its template fields, and Airflow 3's templater calls
    every callable template field as `value(context=..., jinja_env=...)`: a stub class would be
    instantiated with those keywords and the task would fail before any call. The stub class is
    a constant here, so it is left out of the template fields.
    """

    template_fields: Sequence[str] = tuple(
        field for field in GrpcOperator.template_fields if field != "stub_class"
    )

    def __init__(self, *, call_func: str, **kwargs: Any) -> None:
        super().__init__(
            stub_class=PingServiceStub,
            call_func=call_func,
            grpc_conn_id=connection_id("grpc"),
            custom_connection_func=mutual_tls_channel,
            **kwargs,
        )


class ExecutorCommandOperator(PingServiceOperator):
    """PingService.command running one registry command of the executor.

    GrpcOperator renders templates inside `data` only down to the dict, never inside a protobuf
    message, so the ExeTask is built at run time from the rendered `command_args` and
    `executor_run_id`.
    """

    template_fields: Sequence[str] = (
        *PingServiceOperator.template_fields,
        "command_args",
        "executor_run_id",
    )

    def __init__(
        self,
        *,
        command: str,
        command_args: Sequence[str] = (),
        executor_run_id: str = RUN_ID_TEMPLATE,
        execution_timeout: timedelta = timedelta(minutes=20),
        **kwargs: Any,
    ) -> None:
        super().__init__(
            call_func="command",
            response_callback=push_command_result,
            execution_timeout=execution_timeout,
            **kwargs,
        )
        self.command = command
        self.command_args = list(command_args)
        self.executor_run_id = executor_run_id

    def request(self) -> ExeTask:
        return ExeTask(command=self.command, args=self.command_args, run_id=self.executor_run_id)

    def execute(self, context: Any) -> None:
        self.data = {"request": self.request()}
        super().execute(context)


class ExecutorBufferSensor(BaseSensorOperator):
    """Waits until the executor reports a file of its buffer (a path bufferFiles lays out).

    The buffer is the executor's volume. Asking the executor, over the same mutual TLS as the
    commands, lets this task run on any worker, on any machine, without mounting that volume.
    """

    template_fields: Sequence[str] = ("path",)

    def __init__(self, *, path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.grpc_conn_id = connection_id("grpc")

    def request(self) -> BufferFileQuery:
        return BufferFileQuery(path=self.path)

    def poke(self, context: Any) -> bool:
        connection = BaseHook.get_connection(self.grpc_conn_id)
        with mutual_tls_channel(connection) as channel:
            state = PingServiceStub(channel).buffer_file(self.request(), timeout=30)
        if state.exists:
            self.log.info("%s is in the executor's buffer (%d bytes)", self.path, state.size_bytes)
        return bool(state.exists)
