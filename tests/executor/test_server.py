"""The executor server as a real subprocess, driven over real gRPC on loopback."""

import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from conftest import (
    ServerProcess,
    child_env,
    fixture_registry,
    make_envs_dir,
    wait_for,
    write_registry,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from vpe_executor.server import FAILED_TASK_STATUS, sanitize_run_id


def call(server: ServerProcess, wire: ModuleType, command: str, *args: str, run_id: str = ""):
    request = wire.pb2.ExeTask(command=command, args=list(args), run_id=run_id)
    return server.stubs["ping"].command(request, timeout=60)


def rpc_error(server: ServerProcess, wire: ModuleType, command: str, *args: str, **kw: Any):
    with pytest.raises(grpc.RpcError) as caught:
        call(server, wire, command, *args, **kw)
    return caught.value


def block_args(marker: Path, release: Path) -> list[str]:
    return ["--marker", str(marker), "--release", str(release)]


def assert_still_serving(server: ServerProcess, wire: ModuleType) -> None:
    reply = server.stubs["ping"].ping(wire.pb2.PingRequest(message="still there?"), timeout=10)
    assert reply.message == "still there?"
    assert server.proc.poll() is None


def trailing(error: grpc.RpcError, platform: dict[str, Any]) -> dict[str, str]:
    metadata = dict(error.trailing_metadata() or ())
    keys = platform["executorMetadata"]
    return {name: metadata[key] for name, key in keys.items()}


def process_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in {"Z", "X"}  # a zombie has released everything; only its reaper is missing


def test_ping_echoes_message(server: ServerProcess, wire: ModuleType) -> None:
    reply = server.stubs["ping"].ping(wire.pb2.PingRequest(message="hello"), timeout=10)
    assert reply.message == "hello"


def test_health_reports_serving(server: ServerProcess) -> None:
    stub = health_pb2_grpc.HealthStub(server.channel)
    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_health_cli(server: ServerProcess, generated_dir: Path) -> None:
    def run(target: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vpe_executor.health", "--plaintext", "--target", target,
             "--timeout", "2"],
            env=child_env(generated_dir), capture_output=True, text=True, check=False,
        )  # fmt: skip

    assert run(server.target).returncode == 0
    closed = run("127.0.0.1:1")
    assert closed.returncode == 1
    assert "unhealthy: 127.0.0.1:1: UNAVAILABLE" in closed.stderr


def test_success_returns_result_and_log_holds_output(
    server: ServerProcess, wire: ModuleType
) -> None:
    result = call(server, wire, "echo", "--word", "a b", "--code", "0", run_id="run-ok.1")
    assert result.exit_code == 0
    assert result.run_id == "run-ok.1"
    assert result.log_path == str(server.logs_dir / "run-ok.1.log")
    assert result.duration_seconds > 0
    log = Path(result.log_path).read_text()
    assert "stdout: fixed --word a b --code 0" in log  # registry's fixed args, then the caller's
    assert "stderr: hello" in log
    assert "exit code 0" in log
    assert re.search(r"run_id=run-ok\.1 command='echo' status=OK exit_code=0", server.stderr())


def test_unknown_command_is_invalid_argument(server: ServerProcess, wire: ModuleType) -> None:
    error = rpc_error(server, wire, "rm -rf /")
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown command 'rm -rf /'" in error.details()
    assert "echo" in error.details()
    assert_still_serving(server, wire)


def test_nonzero_exit_reports_code_and_log(
    server: ServerProcess, wire: ModuleType, platform: dict[str, Any]
) -> None:
    error = rpc_error(server, wire, "echo", "--code", "3", run_id="fails")
    assert error.code() is FAILED_TASK_STATUS
    log_path = str(server.logs_dir / "fails.log")
    assert "exit code 3" in error.details()
    assert log_path in error.details()
    assert trailing(error, platform) == {"runId": "fails", "exitCode": "3", "logPath": log_path}
    assert "exit code 3" in Path(log_path).read_text()
    assert_still_serving(server, wire)


def test_timeout_kills_whole_tree(
    server: ServerProcess, wire: ModuleType, platform: dict[str, Any], tmp_path: Path
) -> None:
    pidfile = tmp_path / "pids"
    error = rpc_error(server, wire, "tree", "--pidfile", str(pidfile), run_id="slow")
    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert "exceeded 1.5s" in error.details()
    assert trailing(error, platform)["logPath"] == str(server.logs_dir / "slow.log")
    child, grandchild = map(int, pidfile.read_text().split())
    wait_for(lambda: process_gone(child) and process_gone(grandchild), "SIGKILL to land")
    assert_still_serving(server, wire)


def test_leftover_descendants_die_when_task_exits(
    server: ServerProcess, wire: ModuleType, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pids"
    assert call(server, wire, "tree", "--pidfile", str(pidfile), "--exit", "now").exit_code == 0
    child, grandchild = map(int, pidfile.read_text().split())
    wait_for(lambda: process_gone(child) and process_gone(grandchild), "SIGKILL to land")


def occupy_slots(server: ServerProcess, wire: ModuleType, tmp_path: Path) -> tuple[list[Any], Path]:
    """Both task slots running `block` until the returned file is touched."""
    release = tmp_path / "release"
    markers = [tmp_path / f"started{i}" for i in range(2)]
    stub = server.stubs["ping"]
    running = [
        stub.command.future(wire.pb2.ExeTask(command="block", args=block_args(m, release)))
        for m in markers
    ]
    wait_for(lambda: all(m.exists() for m in markers), "both slots to be busy")
    return running, release


def test_concurrency_limit(server: ServerProcess, wire: ModuleType, tmp_path: Path) -> None:
    running, release = occupy_slots(server, wire, tmp_path)
    error = rpc_error(server, wire, "echo")
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "all 2 task slots are busy" in error.details()
    assert_still_serving(server, wire)
    release.touch()
    assert [f.result(timeout=60).exit_code for f in running] == [0, 0]
    assert call(server, wire, "echo").exit_code == 0  # slots are given back


def test_run_id_sanitised(server: ServerProcess, wire: ModuleType) -> None:
    result = call(server, wire, "echo", run_id="../../etc/dag:run+00")
    assert result.run_id == "_.._etc_dag_run_00"
    assert Path(result.log_path).parent == server.logs_dir
    assert Path(result.log_path).is_file()


def test_run_id_generated_when_empty(server: ServerProcess, wire: ModuleType) -> None:
    result = call(server, wire, "echo")
    assert re.fullmatch(r"[0-9a-f]{32}", result.run_id)
    assert Path(result.log_path).name == f"{result.run_id}.log"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("manual__2024-01-01T00:00:00+00:00", "manual__2024-01-01T00_00_00_00_00"),
        ("a/b\\c d", "a_b_c_d"),
        ("..", None),
        ("x" * 300, "x" * 128),
    ],
)
def test_sanitize_run_id(raw: str, expected: str | None) -> None:
    cleaned = sanitize_run_id(raw)
    if expected is None:
        assert re.fullmatch(r"[0-9a-f]{32}", cleaned)
    else:
        assert cleaned == expected


def test_client_cancel_kills_task(server: ServerProcess, wire: ModuleType, tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    future = server.stubs["ping"].command.future(
        wire.pb2.ExeTask(command="tree", args=["--pidfile", str(pidfile)], run_id="cancelled")
    )
    wait_for(pidfile.exists, "the task to start its tree")
    future.cancel()
    child, grandchild = map(int, pidfile.read_text().split())
    wait_for(lambda: process_gone(child) and process_gone(grandchild), "the tree to be killed")
    assert_still_serving(server, wire)


def test_sigterm_lets_inflight_task_finish(
    server_factory: Any, wire: ModuleType, tmp_path: Path
) -> None:
    server = server_factory()
    marker, release = tmp_path / "started", tmp_path / "release"
    future = server.stubs["ping"].command.future(
        wire.pb2.ExeTask(command="block", args=block_args(marker, release))
    )
    wait_for(marker.exists, "the task to start")
    server.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "shutting down" in server.stderr(), "the server to begin shutdown")
    with pytest.raises(grpc.RpcError) as refused:
        call(server, wire, "echo")
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    release.touch()
    assert future.result(timeout=60).exit_code == 0
    assert server.proc.wait(timeout=30) == 0


def test_sigterm_kills_task_after_grace(
    server_factory: Any, wire: ModuleType, tmp_path: Path
) -> None:
    server = server_factory()
    marker = tmp_path / "started"
    # No release file ever appears, so only the shutdown can end the task.
    future = server.stubs["ping"].command.future(
        wire.pb2.ExeTask(command="block", args=block_args(marker, tmp_path / "never"))
    )
    task_pid = int(wait_for(lambda: marker.exists() and marker.read_text(), "the task to start"))
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0
    with pytest.raises(grpc.RpcError) as ended:
        future.result(timeout=30)
    assert ended.value.code() in {grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE}
    wait_for(lambda: process_gone(task_pid), "the task to be killed")
    assert (
        "stopped (cancelled)"
        in Path(server.logs_dir)
        .joinpath(next(p.name for p in server.logs_dir.iterdir()))
        .read_text()
    )


def test_max_concurrent_env_var_overrides_flag(server_factory: Any, platform: dict) -> None:
    server = server_factory(**{platform["env"]["executorMaxConcurrent"]: "5"})
    assert "slots: 5" in server.stderr()


@pytest.mark.parametrize("value", ["0", "many"])
def test_bad_max_concurrent_env_var_is_named(
    tmp_path: Path, generated_dir: Path, platform: dict, value: str
) -> None:
    name = platform["env"]["executorMaxConcurrent"]
    proc = subprocess.run(
        [sys.executable, "-m", "vpe_executor", "--port", "0", "--logs-dir", str(tmp_path)],
        env=child_env(generated_dir, **{name: value}), capture_output=True, text=True,
        check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert f"environment variable {name} must be a positive integer" in proc.stderr


def test_log_files_are_group_writable(server: ServerProcess, wire: ModuleType) -> None:
    result = call(server, wire, "echo", run_id="perm")
    assert os.stat(result.log_path).st_mode & 0o020


def test_concurrent_pings_while_tasks_run(
    server: ServerProcess, wire: ModuleType, tmp_path: Path
) -> None:
    release, marker = tmp_path / "release", tmp_path / "m"
    future = server.stubs["ping"].command.future(
        wire.pb2.ExeTask(command="block", args=block_args(marker, release))
    )
    wait_for(marker.exists, "the task to start")
    errors: list[BaseException] = []

    def pinger() -> None:
        try:
            for _ in range(20):
                assert_still_serving(server, wire)
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=pinger) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    release.touch()
    assert future.result(timeout=60).exit_code == 0
    assert errors == []


# Request arguments: only what the registry declares reaches a task; the rest is refused
# before a slot is taken or a log file exists.


def written_files(server: ServerProcess) -> set[Path]:
    """Everything a task or the server wrote: logs, ping_env's stamps, buffer files."""
    return {p for folder in (server.logs_dir, server.buffer_dir) for p in folder.rglob("*")}


def assert_refused(
    server: ServerProcess, wire: ModuleType, command: str, args: list[str], *named: str
) -> str:
    """The call is INVALID_ARGUMENT, its detail names `named`, and nothing ran."""
    before = written_files(server)
    run_id = f"refused-{uuid.uuid4().hex}"
    error = rpc_error(server, wire, command, *args, run_id=run_id)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    detail = error.details()
    assert detail.startswith(f"task {command!r}: ")
    for part in named:
        assert part in detail
    assert not (server.logs_dir / f"{run_id}.log").exists()
    assert written_files(server) == before, "a refused call must leave no trace"
    line = rf"run_id={run_id} command='{command}' status=INVALID_ARGUMENT exit_code=0"
    assert re.search(line, server.stderr())
    assert_still_serving(server, wire)
    return detail


@pytest.mark.parametrize(
    ("args", "named"),
    [
        # The attacks: redirect extract_catalog's output, or make it read any file.
        (["--date", "2024-01-01", "--buffer-dir", "/opt/vpe/logs/executor"], ["'--buffer-dir'"]),
        (["--date", "2024-01-01", "--format", "csv", "--source", "/etc/passwd"], ["'--source'"]),
        (["--date", "2024-01-01", "--format", "csv", "--source=/etc/passwd"], ["'--source'"]),
        (["--date", "2024-01-01", "--format"], ["'--format' needs a value", "'csv', 'xlsx'"]),
        (["--date", "2024-01-01"], ["'--format' is required", "one of 'csv', 'xlsx'"]),
        (["--format", "csv"], ["'--date' is required", "YYYY-MM-DD"]),
        (["--date", "2024-02-30", "--format", "csv"], ["'--date'", "'2024-02-30'", "YYYY-MM-DD"]),
        (["--date", "20240101", "--format", "csv"], ["'--date'", "YYYY-MM-DD"]),
        (["--date", "2024-01-01", "--format", "json"], ["'--format'", "one of 'csv', 'xlsx'"]),
        (["--date", "2024-01-01", "--date", "2024-01-02", "--format", "csv"],
         ["'--date'", "more than once"]),
        (["--date", "2024-01-01", "--format", "csv", "extra"], ["'extra'", "--name value pairs"]),
        (["--date", "--format", "csv"], ["'--date'", "'--format' starts with '-'"]),
    ],
)  # fmt: skip
def test_extract_catalog_refuses_what_the_registry_does_not_declare(
    server: ServerProcess, wire: ModuleType, args: list[str], named: list[str]
) -> None:
    assert_refused(server, wire, "extract_catalog", args, *named)


def test_extract_catalog_cannot_be_pointed_at_another_folder(
    server: ServerProcess, wire: ModuleType, tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere"
    args = ["--date", "2024-01-01", "--format", "csv", "--buffer-dir", str(target)]
    detail = assert_refused(server, wire, "extract_catalog", args, "'--buffer-dir'")
    assert "accepted arguments: '--date', '--format'" in detail
    assert not target.exists()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--stamp", "a1", "--stamp-file", "/tmp/x"], ["'--stamp-file' is not accepted"]),
        (["--stamp", "../../buffer/x"], ["'--stamp'", "'../../buffer/x'"]),
        (["--stamp", "a2/b"], ["'--stamp'", "[A-Za-z0-9_-]{1,64}"]),
        (["--stamp=/etc/x"], ["'--stamp'", "'/etc/x'"]),
        (["--stamp", "a3", "--exit-code"], ["'--exit-code' needs a value", "0..255"]),
        (["--stamp", "a4", "--exit-code", "256"], ["'--exit-code'", "'256'", "0..255"]),
        (["--stamp", "a5", "--exit-code", "x"], ["'--exit-code'", "an integer"]),
        (["--stamp", "a6", "--exit-code", "-1"], ["'--exit-code'", "'-1' starts with '-'"]),
        (["--stamp", "-a7"], ["'--stamp'", "starts with '-'"]),
        (["--stamp", "a8\x00"], ["'--stamp'", "NUL, CR or LF"]),
        (["--stamp", "a9\nb"], ["'--stamp'", "NUL, CR or LF"]),
        (["--stamp", "b1", "--stamp", "b2"], ["'--stamp' is given more than once"]),
        (["--stamp=b3", "--stamp", "b4"], ["'--stamp' is given more than once"]),
        (["b5"], ["'b5'", "--name value pairs"]),
        (["--stamp", "b6", "b7"], ["'b7'"]),
    ],
)
def test_ping_env_refuses_what_the_registry_does_not_declare(
    server: ServerProcess, wire: ModuleType, args: list[str], named: list[str]
) -> None:
    assert_refused(server, wire, "ping_env", args, *named)


def test_an_argument_another_task_declares_is_refused(
    server: ServerProcess, wire: ModuleType, tmp_path: Path
) -> None:
    # block declares --marker; echo does not, so a request cannot hand it to echo.
    detail = assert_refused(server, wire, "echo", ["--marker", str(tmp_path / "m")], "'--marker'")
    assert "accepted arguments: '--word', '--code'" in detail


def test_declared_arguments_reach_the_task_in_the_requests_order(
    server: ServerProcess, wire: ModuleType
) -> None:
    result = call(server, wire, "ping_env", "--exit-code", "0", "--stamp=legit-1", run_id="legit")
    assert result.exit_code == 0
    stamp = server.stamps_dir / "legit-1"
    assert int(stamp.read_text()) > 0
    log = Path(result.log_path).read_text()
    assert "ping_env.py --exit-code 0 --stamp legit-1\n" in log
    assert "ping_env: python" in log


def test_a_declared_integer_reaches_the_task(server: ServerProcess, wire: ModuleType) -> None:
    error = rpc_error(server, wire, "ping_env", "--exit-code", "7", run_id="seven")
    assert error.code() is FAILED_TASK_STATUS
    assert "exit code 7" in error.details()


@pytest.mark.parametrize("broken", ["missing", "not PEM"])
def test_unusable_tls_files_stop_the_server_at_start_naming_the_file(
    tmp_path: Path, generated_dir: Path, platform: dict, broken: str
) -> None:
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir()
    ca = tls_dir / platform["tls"]["caFile"]
    if broken == "not PEM":
        for name in (platform["tls"][k] for k in ("caFile", "certFile", "keyFile")):
            (tls_dir / name).write_text("not a certificate\n")
    registry = write_registry(tmp_path, fixture_registry(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "vpe_executor", "--registry", str(registry),
         "--envs-dir", str(make_envs_dir(tmp_path)), "--port", "0", "--logs-dir", str(tmp_path),
         "--tls-dir", str(tls_dir)],
        env=child_env(generated_dir), capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    reason = "cannot read" if broken == "missing" else "expected a PEM file"
    assert f"configuration error: TLS CA certificate {ca}: {reason}" in proc.stderr


def test_health_probe_without_tls_files_is_unhealthy_naming_the_file(
    tmp_path: Path, generated_dir: Path, platform: dict
) -> None:
    probe = subprocess.run(
        [sys.executable, "-m", "vpe_executor.health", "--target", "127.0.0.1:1",
         "--tls-dir", str(tmp_path)],
        env=child_env(generated_dir), capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert probe.returncode == 1
    ca = tmp_path / platform["tls"]["caFile"]
    assert f"unhealthy: TLS CA certificate {ca}: cannot read" in probe.stderr


def buffer_state(server: ServerProcess, wire: ModuleType, path: str) -> Any:
    return server.stubs["ping"].buffer_file(wire.pb2.BufferFileQuery(path=path), timeout=10)


def test_buffer_file_reports_what_the_buffer_holds(server: ServerProcess, wire: ModuleType) -> None:
    assert not buffer_state(server, wire, "events/2024-05-01.csv").exists
    target = server.buffer_dir / "events" / "2024-05-01.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("event_id\n1\n")
    state = buffer_state(server, wire, "events/2024-05-01.csv")
    assert (state.exists, state.size_bytes) == (True, len("event_id\n1\n"))
    # A folder is not a file a task wrote, nor is anything below a file.
    assert not buffer_state(server, wire, "events").exists
    assert not buffer_state(server, wire, "events/2024-05-01.csv/more").exists


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("", "expected a relative path"),
        ("/etc/passwd", "expected a relative path"),
        ("../logs/executor/x.log", "expected a relative path without '..'"),
        ("events/../../x", "expected a relative path without '..'"),
        ("escape/passwd", "leads out of the buffer"),
    ],
)
def test_buffer_file_refuses_paths_outside_the_buffer(
    server: ServerProcess, wire: ModuleType, path: str, why: str
) -> None:
    server.buffer_dir.mkdir(parents=True, exist_ok=True)
    escape = server.buffer_dir / "escape"
    if not escape.exists():
        escape.symlink_to("/etc")
    with pytest.raises(grpc.RpcError) as caught:
        buffer_state(server, wire, path)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert why in caught.value.details()
    assert_still_serving(server, wire)
