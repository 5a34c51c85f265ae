"""Executor fixtures: generated proto modules and a real server subprocess on a free port."""

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest

REPO = Path(__file__).resolve().parents[2]
EXECUTOR = REPO / "docker" / "executor"
SRC = EXECUTOR / "src"
PIPELINES = EXECUTOR / "pipelines" / "ingestion"
PLATFORM_FILE = REPO / "docker" / "platform.json"
SHIPPED_REGISTRY = EXECUTOR / "tasks.toml"
SAMPLE_DATA = REPO / "data" / "fixtures"
TASKS = Path(__file__).resolve().parent / "tasks"
TEST_ENV = "testenv"
_LISTENING = re.compile(r"listening on [^:]+:(\d+)")
_METRICS = re.compile(r"serving metrics on http://[^:]+:(\d+)/metrics")

sys.path[:0] = [str(SRC), str(PIPELINES)]


def _generate_proto() -> Path:
    """Compile the proto at collection time: test modules import the server at module level."""
    from vpe_executor.protogen import compile_proto

    out = Path(tempfile.mkdtemp(prefix="vpe-proto-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    compile_proto(REPO / "docker" / "proto" / "executor.proto", out)
    sys.path.insert(0, str(out))
    return out


GENERATED = _generate_proto()


@pytest.fixture(scope="session")
def generated_dir() -> Path:
    return GENERATED


@pytest.fixture(scope="session")
def wire(generated_dir: Path) -> ModuleType:
    from vpe_executor import wire

    return wire


def child_env(generated_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(generated_dir)])
    env["VPE_PLATFORM_FILE"] = str(PLATFORM_FILE)
    env.update(extra)
    return env


def make_envs_dir(root: Path) -> Path:
    """An envs dir whose `testenv` interpreter is the interpreter running the tests."""
    bin_dir = root / "envs" / TEST_ENV / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    return root / "envs"


def write_registry(root: Path, tasks: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for name, body in tasks.items():
        lines.append(f"[tasks.{name}]")
        lines.extend(f"{key} = {_toml(value)}" for key, value in body.items())
    path = root / "tasks.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string of BMP characters is a TOML basic string
    return repr(value)


def shipped_arguments(task: str) -> dict[str, Any]:
    """docker/executor/tasks.toml's declaration of a task's request arguments."""
    tasks = tomllib.loads(SHIPPED_REGISTRY.read_text())["tasks"]
    arguments: dict[str, Any] = tasks[task].get("arguments", {})
    return arguments


def write_platform(root: Path) -> Path:
    """platform.json with the folders tasks write (paths.logs, paths.buffer) under `root` and
    the sample catalogs as paths.data, for the server and the tasks it runs."""
    values = json.loads(PLATFORM_FILE.read_text())
    values["paths"].update(
        logs=str(root / "logs"), buffer=str(root / "buffer"), data=str(SAMPLE_DATA)
    )
    path = root / "platform.json"
    path.write_text(json.dumps(values, indent=2))
    return path


def fixture_registry(root: Path) -> dict[str, dict[str, Any]]:
    def task(
        script: str,
        timeout: float = 30,
        args: list[str] | None = None,
        arguments: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "env": TEST_ENV,
            "script": str(TASKS / script),
            "args": args or [],
            "timeout_seconds": timeout,
            "arguments": arguments or {},
        }

    def shipped(name: str) -> dict[str, Any]:
        """A pipeline script with the arguments docker/executor/tasks.toml declares for it."""
        script = str(PIPELINES / f"{name}.py")
        return {**task("echo.py"), "script": script, "arguments": shipped_arguments(name)}

    # The test tasks' marker and pid files live in each test's tmp_path, so only these
    # test-only declarations take paths; the shipped registry never does.
    path = {"pattern": "/.+", "required": True}
    return {
        "echo": task(
            "echo.py",
            args=["fixed"],
            arguments={
                "--word": {"pattern": "[a-z]+( [a-z]+)*"},
                "--code": {"type": "integer", "min": 0, "max": 255},
            },
        ),
        "block": task("block.py", arguments={"--marker": path, "--release": path}),
        "tree": task(
            "tree.py",
            timeout=1.5,
            arguments={"--pidfile": path, "--exit": {"choices": ["now"]}},
        ),
        "ping_env": shipped("ping_env"),
        "extract_catalog": shipped("extract_catalog"),
    }


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    logs_dir: Path
    stderr_path: Path
    channel: grpc.Channel
    root: Path
    stubs: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def buffer_dir(self) -> Path:
        """paths.buffer of the server's platform file."""
        return self.root / "buffer"

    @property
    def stamps_dir(self) -> Path:
        """Where ping_env's --stamp NAME lands: <paths.logs>/executor/stamps."""
        return self.logs_dir / "stamps"

    def metrics(self) -> dict[str, float]:
        """The /metrics samples, keyed as Prometheus prints them: `name{label="value",...}`."""
        from prometheus_client.parser import text_string_to_metric_families

        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
        return samples

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.channel.close()


def wait_for(predicate: Callable[[], Any], what: str, limit: float = 30.0) -> Any:
    """Poll until predicate() is truthy; the limit only bounds a hung test, it asserts nothing."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


def start_server(
    root: Path, generated_dir: Path, wire: ModuleType, *args: str, **env: str
) -> ServerProcess:
    registry = write_registry(root, fixture_registry(root))
    platform_file = write_platform(root)
    envs_dir = make_envs_dir(root)
    logs_root = root / "logs"
    stderr_path = root / "server.stderr"
    command = [
        sys.executable, "-m", "vpe_executor", "--registry", str(registry),
        "--envs-dir", str(envs_dir), "--logs-dir", str(logs_root), "--host", "127.0.0.1",
        "--port", "0", "--metrics-port", "0", "--max-concurrent", "2", "--shutdown-grace", "2",
        "--kill-grace", "1",
        # Plaintext unless the test brings its own TLS material (tests/security does).
        *args, *(() if "--tls-dir" in args else ("--plaintext",)),
    ]  # fmt: skip
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            command,
            env=child_env(generated_dir, **{"VPE_PLATFORM_FILE": str(platform_file), **env}),
            stderr=stderr,
            stdout=stderr,
        )

    def port() -> int | None:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}: {stderr_path.read_text()}")
        match = _LISTENING.search(stderr_path.read_text())
        return int(match.group(1)) if match else None

    bound = wait_for(port, "the server to listen")
    metrics_match = _METRICS.search(stderr_path.read_text())
    assert metrics_match, f"no metrics endpoint logged: {stderr_path.read_text()}"
    channel = grpc.insecure_channel(f"127.0.0.1:{bound}")
    server = ServerProcess(
        proc, bound, int(metrics_match.group(1)), logs_root / "executor", stderr_path, channel, root
    )
    server.stubs["ping"] = wire.pb2_grpc.PingServiceStub(channel)
    return server


@pytest.fixture
def server_factory(
    tmp_path: Path, generated_dir: Path, wire: ModuleType
) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def factory(*args: str, **env: str) -> ServerProcess:
        root = tmp_path / f"server{len(started)}"
        root.mkdir()
        server = start_server(root, generated_dir, wire, *args, **env)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, generated_dir: Path, wire: ModuleType
) -> Iterator[ServerProcess]:
    running = start_server(tmp_path_factory.mktemp("server"), generated_dir, wire)
    yield running
    running.stop()
