"""ping_grpc: checks that Airflow reaches the executor's gRPC service (PingService.ping)."""

from datetime import datetime, timedelta

from airflow.providers.grpc.operators.grpc import GrpcOperator
from airflow.sdk import DAG
from executor_pb2 import PingRequest
from executor_pb2_grpc import PingServiceStub

from vpe_dags.executor import push_ping_reply
from vpe_dags.platform import connection_id

with DAG(
    dag_id="ping_grpc",
    description="Round trip to the executor's PingService.ping",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["vpe", "executor"],
):
    GrpcOperator(
        task_id="ping",
        stub_class=PingServiceStub,
        call_func="ping",
        grpc_conn_id=connection_id("grpc"),
        data={"request": PingRequest(message="ping from Airflow")},
        response_callback=push_ping_reply,
        execution_timeout=timedelta(minutes=2),
    )
