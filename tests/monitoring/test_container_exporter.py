"""The container exporter (docker/container-exporter): what it reports for each container the
engine shows it (a fake engine answering as Docker's API does), its probe, and how it drops
root. The e2e suite runs it against the real engine.
"""

import importlib.util
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker.errors import NotFound
from prometheus_client.parser import text_string_to_metric_families

SCRIPT = (
    Path(__file__).resolve().parents[2]
    / "docker"
    / "container-exporter"
    / "vpe_container_exporter.py"
)
spec = importlib.util.spec_from_file_location("vpe_container_exporter", SCRIPT)
assert spec and spec.loader
exporter = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = exporter
spec.loader.exec_module(exporter)

MiB = 1024 * 1024


def inspected(
    running: bool, restarts: int, health: str | None = None, limit: int = 0
) -> dict[str, Any]:
    state: dict[str, Any] = {"Running": running, "OOMKilled": False}
    if health:
        state["Health"] = {"Status": health}
    return {"State": state, "RestartCount": restarts, "HostConfig": {"Memory": limit}}


class FakeEngine:
    """Docker's answers for a running, a stopped and (by omission) a removed container."""

    def __init__(self) -> None:
        self.containers = {
            "vpe-executor": inspected(True, 3, "healthy", 512 * MiB),
            "vpe-maintenance": inspected(False, 0, "unhealthy"),
        }
        self.stats_calls: list[tuple[str, bool, bool | None]] = []
        self.pings = 0

    def ping(self) -> bool:
        self.pings += 1
        return True

    def inspect_container(self, container: str) -> dict[str, Any]:
        if container not in self.containers:
            raise NotFound(f"No such container: {container}")
        return self.containers[container]

    def stats(
        self,
        container: str,
        decode: bool | None = None,
        stream: bool = True,
        one_shot: bool | None = None,
    ) -> dict[str, Any]:
        self.stats_calls.append((container, stream, one_shot))
        return {
            "memory_stats": {"usage": 100 * MiB, "stats": {"total_inactive_file": 30 * MiB}},
            "cpu_stats": {"cpu_usage": {"total_usage": 2_500_000_000}},
        }


def scrape(app: Any, path: str = "/metrics") -> tuple[str, str]:
    status: list[str] = []
    body = b"".join(
        app(
            {"PATH_INFO": path, "REQUEST_METHOD": "GET", "QUERY_STRING": ""},
            lambda s, _h: status.append(s),
        )
    )
    return status[0], body.decode()


def samples(text: str) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels["name"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if "name" in s.labels
    }


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


def test_reports_restarts_state_health_memory_and_cpu_of_each_named_container(
    engine: FakeEngine,
) -> None:
    status, text = scrape(
        exporter.exporter_app(engine, ["vpe-executor", "vpe-maintenance", "vpe-gone"])
    )
    assert status == "200 OK"
    assert samples(text) == {
        ("vpe_container_running", "vpe-executor"): 1,
        ("vpe_container_running", "vpe-maintenance"): 0,
        ("vpe_container_running", "vpe-gone"): 0,
        ("vpe_container_healthy", "vpe-executor"): 1,
        ("vpe_container_healthy", "vpe-maintenance"): 0,
        ("vpe_container_oom_killed", "vpe-executor"): 0,
        ("vpe_container_oom_killed", "vpe-maintenance"): 0,
        ("vpe_container_memory_bytes", "vpe-executor"): 70 * MiB,
        ("vpe_container_memory_limit_bytes", "vpe-executor"): 512 * MiB,
        ("vpe_container_restarts_total", "vpe-executor"): 3,
        ("vpe_container_restarts_total", "vpe-maintenance"): 0,
        ("vpe_container_cpu_seconds_total", "vpe-executor"): 2.5,
    }
    assert engine.stats_calls == [("vpe-executor", False, True)], (
        "one-shot stats, of running containers only"
    )


def test_a_container_removed_between_inspect_and_stats_counts_as_not_running(
    engine: FakeEngine,
) -> None:
    def removed(container: str, **_: Any) -> dict[str, Any]:
        raise NotFound(f"No such container: {container}")

    engine.stats = removed  # type: ignore[method-assign]
    _, text = scrape(exporter.exporter_app(engine, ["vpe-executor"]))
    assert samples(text) == {("vpe_container_running", "vpe-executor"): 0}


def test_an_engine_that_fails_fails_the_scrape_rather_than_reporting_nothing(
    engine: FakeEngine,
) -> None:
    def down(container: str) -> dict[str, Any]:
        raise ConnectionError("engine socket refused")

    engine.inspect_container = down  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        scrape(exporter.exporter_app(engine, ["vpe-executor"]))


def test_the_probe_asks_the_engine_and_collects_nothing(engine: FakeEngine) -> None:
    status, body = scrape(exporter.exporter_app(engine, ["vpe-executor"]), exporter.HEALTH_PATH)
    assert (status, body, engine.pings, engine.stats_calls) == ("200 OK", "ok\n", 1, [])


@pytest.mark.parametrize(
    ("memory_stats", "expected"),
    [
        ({"usage": 50 * MiB, "stats": {"total_inactive_file": 20 * MiB}}, 30 * MiB),  # cgroup v1
        ({"usage": 50 * MiB, "stats": {"inactive_file": 10 * MiB}}, 40 * MiB),  # cgroup v2
        ({"usage": 5 * MiB, "stats": {"inactive_file": 10 * MiB}}, 0),
        ({}, None),
    ],
)
def test_memory_in_use_leaves_out_the_reclaimable_page_cache(
    memory_stats: dict[str, Any], expected: int | None
) -> None:
    assert exporter.working_set_bytes(memory_stats) == expected


@pytest.fixture
def engine_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "docker.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    yield path
    listener.close()


def test_as_root_it_becomes_the_given_user_with_the_sockets_group_alone(
    engine_socket: Path,
) -> None:
    if os.getuid() != 0:
        exporter.drop_privileges(str(engine_socket), 65534, 65534)
        assert os.getuid() != 0, "not root: nothing to drop, nothing changed"
        return
    socket_group = 4321
    os.chown(engine_socket, 0, socket_group)
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child drops, the test process stays root
        exporter.drop_privileges(str(engine_socket), 65534, 65534)
        os.write(writer, repr((os.getuid(), os.getgid(), os.getgroups())).encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    assert os.read(reader, 200).decode() == repr((65534, 65534, [socket_group]))
