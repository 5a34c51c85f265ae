"""ping_grpc: checks that Airflow reaches the executor's gRPC service (PingService.ping)."""

from datetime import datetime, timedelta

from airflow.sdk import DAG
from executor_pb2 import PingRequest
from vpe_dags.executor import PingServiceOperator, push_ping_reply

with DAG(
    dag_id="ping_grpc",
    description="Round trip to the executor's PingService.ping",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["vpe", "executor"],
):
    PingServiceOperator(
        task_id="ping",
        call_func="ping",
        data={"request": PingRequest(message="ping from Airflow")},
        response_callback=push_ping_reply,
        execution_timeout=timedelta(minutes=2),
    )
