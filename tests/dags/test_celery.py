"""The Celery path the prod stack runs, on the pinned packages: the executor imports, `airflow
celery` is a command, and a worker started as the stack starts it answers the stack's health
probe through a real Redis broker, with its results in a real PostgreSQL (and stops answering
once the worker is gone). The probe also reads the broker URL as the stack passes it, through
Airflow's _CMD variant (a command printing it), and names the variable when that fails."""

import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent
CELERY_PROBE = (
    Path(__file__).resolve().parents[2] / "docker" / "airflow" / "bin" / "celery-alive.py"
)
REDIS_SERVER = Path("/usr/bin/redis-server")
BROKER_URL = "AIRFLOW__CELERY__BROKER_URL"


def _loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    import redis

    port, password = _loopback_port(), secrets.token_urlsafe(16)
    server = subprocess.Popen(
        [str(REDIS_SERVER), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path), "--requirepass", password],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        client = redis.Redis(host="127.0.0.1", port=port, password=password)
        deadline = time.monotonic() + 30
        while True:
            try:
                assert client.ping()
                break
            except redis.ConnectionError:
                assert server.poll() is None, "redis-server exited"
                assert time.monotonic() < deadline, "redis-server did not answer within 30 s"
                time.sleep(0.2)
        yield f"redis://:{password}@127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def celery_env(redis_url: str, postgres_server: Any) -> dict[str, str]:
    """The worker's settings as the stack provisions them: Redis broker, database result backend."""
    database = f"celery_{uuid.uuid4().hex[:12]}"
    postgres_server.psql("postgres", "-c", f'CREATE DATABASE "{database}"')
    backend = postgres_server.url(database).replace("postgresql://", "db+postgresql+psycopg2://")
    return {
        **os.environ,
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        BROKER_URL: redis_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": backend,
    }


def cmd_env(env: dict[str, str], command: str) -> dict[str, str]:
    """`env` with the broker URL only through Airflow's _CMD variant, as the stack sets it."""
    return {**{k: v for k, v in env.items() if k != BROKER_URL}, f"{BROKER_URL}_CMD": command}


def health_probe(env: dict[str, str], timeout: str = "5") -> subprocess.CompletedProcess[str]:
    """The stack's worker healthcheck: docker/airflow/bin/celery-alive.py TIMEOUT_SECONDS."""
    return subprocess.run(
        [sys.executable, str(CELERY_PROBE), timeout],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_celery_executor_imports_with_the_pinned_packages(platform: dict[str, Any]) -> None:
    import importlib

    from airflow.executors.base_executor import BaseExecutor
    from airflow.providers.celery.executors.celery_executor import CeleryExecutor

    assert issubclass(CeleryExecutor, BaseExecutor)
    module, _, attribute = platform["celeryApp"].rpartition(".")
    assert getattr(importlib.import_module(module), attribute).main is not None


def test_airflow_celery_is_a_command_with_the_celery_executor(celery_env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(BIN / "airflow"), "celery", "worker", "--help"],
        env=celery_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--concurrency" in result.stdout


def test_a_worker_started_like_the_stack_answers_its_health_probe(
    celery_env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [str(BIN / "airflow"), "celery", "worker", "--concurrency", "1", "--skip-serve-logs"],
            env=celery_env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while (probe := health_probe(celery_env)).returncode != 0:
            tail = log.read_text()[-3000:]
            assert worker.poll() is None, f"the worker exited {worker.returncode}:\n{tail}"
            assert time.monotonic() < deadline, (
                f"no pong in 180 s:\n{probe.stdout}{probe.stderr}\n{tail}"
            )
            time.sleep(2)
        assert probe.stdout.strip() == f"celery@{socket.gethostname()}: pong"
        # The same broker URL from a file, through the command the stack sets.
        broker_file = tmp_path / "airflow-broker-url"
        broker_file.write_text(celery_env[BROKER_URL])
        from_command = health_probe(cmd_env(celery_env, f"cat {broker_file}"))
        assert from_command.returncode == 0, from_command.stderr
        assert from_command.stdout.strip() == f"celery@{socket.gethostname()}: pong"
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    gone = health_probe(celery_env, "2")
    assert gone.returncode == 1, "the probe still passes with no worker"
    assert "no reply within 2 s" in gone.stdout


def test_the_worker_probe_fails_without_a_broker_and_refuses_bad_arguments(
    celery_env: dict[str, str],
) -> None:
    unreachable = {
        **celery_env,
        BROKER_URL: f"redis://127.0.0.1:{_loopback_port()}/0",
    }
    result = health_probe(unreachable, "2")
    assert result.returncode == 1
    assert "celery-alive: broker:" in result.stderr
    assert health_probe(celery_env, "soon").returncode == 2
    no_broker = {k: v for k, v in celery_env.items() if k != BROKER_URL}
    unset = health_probe(no_broker)
    assert unset.returncode == 2
    assert f"celery-alive: {BROKER_URL} is not set: expected it or {BROKER_URL}_CMD" in unset.stderr


def test_the_worker_probe_names_the_variable_when_its_command_fails(
    celery_env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-file"
    failed = health_probe(cmd_env(celery_env, f"cat {missing}"))
    assert failed.returncode == 2
    expected = f"celery-alive: {BROKER_URL}_CMD: cat exited with code 1: cat: {missing}"
    assert expected in failed.stderr
    # The command's output is the secret: even a failing command's output is never shown.
    leaky = "sh -c 'echo redis://:sentinel-secret@redis:6379/0; exit 4'"
    leaked = health_probe(cmd_env(celery_env, leaky))
    assert leaked.returncode == 2
    assert "exited with code 4" in leaked.stderr
    assert "sentinel-secret" not in leaked.stdout + leaked.stderr
    # Through the command, an unreachable broker is reported like a plain one.
    unreachable = tmp_path / "unreachable-broker-url"
    unreachable.write_text(f"redis://127.0.0.1:{_loopback_port()}/0")
    down = health_probe(cmd_env(celery_env, f"cat {unreachable}"), "2")
    assert down.returncode == 1
    assert "celery-alive: broker:" in down.stderr
