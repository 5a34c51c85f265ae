"""The executor's /metrics endpoint, read over HTTP from a real server process."""

from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
from conftest import ServerProcess
from test_server import call, occupy_slots, rpc_error


def test_a_fresh_server_reports_its_slots_and_no_task(server_factory: Any) -> None:
    samples = server_factory().metrics()
    assert samples["vpe_executor_task_slots{}"] == 2
    assert not [name for name in samples if "task=" in name]


def test_started_failed_refused_and_durations_are_counted_per_task(
    server_factory: Any, wire: ModuleType, tmp_path: Path
) -> None:
    server: ServerProcess = server_factory()
    assert call(server, wire, "echo", "--word", "ok").exit_code == 0
    assert call(server, wire, "echo").exit_code == 0
    assert rpc_error(server, wire, "echo", "--code", "3").code() is grpc.StatusCode.ABORTED
    rejected = rpc_error(server, wire, "echo", "--word", "NOT LOWER")
    assert rejected.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert rpc_error(server, wire, "rm -rf /").code() is grpc.StatusCode.INVALID_ARGUMENT
    timed_out = rpc_error(server, wire, "tree", "--pidfile", str(tmp_path / "pids"))
    assert timed_out.code() is grpc.StatusCode.DEADLINE_EXCEEDED

    samples = server.metrics()
    assert samples['vpe_executor_tasks_started_total{task="echo"}'] == 3
    assert samples['vpe_executor_tasks_failed_total{reason="exit",task="echo"}'] == 1
    assert samples['vpe_executor_tasks_failed_total{reason="timeout",task="tree"}'] == 1
    assert samples['vpe_executor_tasks_refused_total{reason="invalid",task="echo"}'] == 1
    # A caller's unknown command name never becomes a label value of its own.
    assert samples['vpe_executor_tasks_refused_total{reason="invalid",task="unregistered"}'] == 1
    assert not [name for name in samples if "rm -rf" in name]
    assert samples['vpe_executor_task_duration_seconds_count{task="echo"}'] == 3
    assert samples['vpe_executor_task_duration_seconds_sum{task="tree"}'] >= 1.5  # its timeout
    assert samples['vpe_executor_tasks_running{task="echo"}'] == 0


def test_busy_slots_show_as_running_then_as_refusals(
    server_factory: Any, wire: ModuleType, tmp_path: Path
) -> None:
    server: ServerProcess = server_factory()
    running, release = occupy_slots(server, wire, tmp_path)
    assert server.metrics()['vpe_executor_tasks_running{task="block"}'] == 2
    for _ in range(3):
        assert rpc_error(server, wire, "echo").code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    release.touch()
    assert [f.result(timeout=60).exit_code for f in running] == [0, 0]

    samples = server.metrics()
    assert samples['vpe_executor_tasks_refused_total{reason="busy",task="echo"}'] == 3
    assert samples['vpe_executor_tasks_running{task="block"}'] == 0
    assert samples['vpe_executor_tasks_started_total{task="block"}'] == 2
    assert 'vpe_executor_tasks_started_total{task="echo"}' not in samples
