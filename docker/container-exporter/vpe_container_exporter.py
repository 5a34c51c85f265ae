"""The stack's containers as Prometheus metrics: restarts, state, health, memory and CPU, read from
the Docker engine on every scrape (so a scrape shows the engine as it is, never a cached view).

Usage: vpe_container_exporter.py --port P --socket PATH --uid U --gid G NAME [NAME ...]

Started as root only to learn the engine socket's group; it then runs as U:G with that group alone.
Reading the socket is root-equivalent on the engine's host, whoever reads it: this process only
ever sends GET requests (inspect and one-shot stats of the containers it was given).
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import docker
from docker.errors import NotFound
from prometheus_client import make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

HEALTH_PATH = "/-/healthy"


class Engine(Protocol):
    """The calls of docker's low-level APIClient the exporter makes."""

    def ping(self) -> bool: ...

    def inspect_container(self, container: str) -> dict[str, Any]: ...

    def stats(
        self,
        container: str,
        decode: bool | None = None,
        stream: bool = True,
        one_shot: bool | None = None,
    ) -> dict[str, Any]: ...


def working_set_bytes(memory_stats: dict[str, Any]) -> int | None:
    """Memory in use as `docker stats` shows it: usage less the page cache the kernel may drop."""
    usage = memory_stats.get("usage")
    if usage is None:
        return None
    stats = memory_stats.get("stats", {})
    inactive = stats.get("total_inactive_file", stats.get("inactive_file", 0))  # cgroup v1, v2
    return max(usage - inactive, 0)


class StackContainers(Collector):
    """A sample per named container and metric; one the engine does not know is not running."""

    def __init__(self, engine: Engine, names: Sequence[str]) -> None:
        self.engine = engine
        self.names = list(names)
        # A stats call takes most of a second even one-shot: all at once, or a scrape of twenty
        # containers outlasts Prometheus' timeout. One pool for every scrape.
        self.pool = ThreadPoolExecutor(max_workers=len(self.names))

    def collect(self) -> Iterator[Metric]:
        def gauge(name: str, doc: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"vpe_container_{name}", doc, labels=["name"])

        running = gauge("running", "1 while the container runs, 0 when it is stopped or missing")
        healthy = gauge("healthy", "1 while its healthcheck passes (containers with one)")
        oom_killed = gauge("oom_killed", "1 when its last exit was the kernel's out-of-memory kill")
        memory = gauge("memory_bytes", "Memory in use, reclaimable page cache excluded")
        memory_limit = gauge("memory_limit_bytes", "Its memory limit (containers with one)")
        restarts = CounterMetricFamily(
            "vpe_container_restarts",
            "Times the engine restarted it by its restart policy",
            labels=["name"],
        )
        cpu = CounterMetricFamily("vpe_container_cpu_seconds", "CPU time it used", labels=["name"])
        readings = list(self.pool.map(self.read, self.names))
        for name, reading in zip(self.names, readings, strict=True):
            if reading is None:
                running.add_metric([name], 0)
                continue
            info, stats = reading
            state = info["State"]
            running.add_metric([name], 1 if state["Running"] else 0)
            restarts.add_metric([name], info["RestartCount"])
            oom_killed.add_metric([name], 1 if state.get("OOMKilled") else 0)
            if health := state.get("Health"):
                healthy.add_metric([name], 1 if health["Status"] == "healthy" else 0)
            if limit := info["HostConfig"].get("Memory"):
                memory_limit.add_metric([name], limit)
            if (in_use := working_set_bytes(stats.get("memory_stats", {}))) is not None:
                memory.add_metric([name], in_use)
            if (
                nanoseconds := stats.get("cpu_stats", {}).get("cpu_usage", {}).get("total_usage")
            ) is not None:
                cpu.add_metric([name], nanoseconds / 1e9)
        yield from (running, healthy, oom_killed, memory, memory_limit, restarts, cpu)

    def read(self, name: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Its inspection and, while it runs, its stats; None once the engine does not know it."""
        try:
            info = self.engine.inspect_container(name)
            running = info["State"]["Running"]
            return info, self.engine.stats(name, stream=False, one_shot=True) if running else {}
        except NotFound:
            return None


StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def exporter_app(engine: Engine, names: Sequence[str]) -> WsgiApp:
    """Metrics on every path but the probe's, which only asks whether the engine answers."""
    registry = CollectorRegistry()
    registry.register(StackContainers(engine, names))
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != HEALTH_PATH:
            return metrics(environ, start_response)
        engine.ping()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok\n"]

    return app


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """A line per probe and scrape is noise in the container's log."""


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def drop_privileges(socket_path: str, uid: int, gid: int) -> None:
    """As root: become uid:gid with the socket's group as the one supplementary group."""
    if os.getuid() != 0:
        return
    os.setgroups([os.stat(socket_path).st_gid])
    os.setgid(gid)
    os.setuid(uid)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--socket", required=True, help="the Docker engine's socket")
    parser.add_argument("--uid", type=int, required=True)
    parser.add_argument("--gid", type=int, required=True)
    parser.add_argument("names", nargs="+", help="the containers to report")
    args = parser.parse_args(argv)

    drop_privileges(args.socket, args.uid, args.gid)
    # A connection per container, for the scrape's parallel stats calls.
    engine = docker.APIClient(
        base_url=f"unix://{args.socket}", version="auto", max_pool_size=len(args.names)
    )
    server = make_server(
        "", args.port, exporter_app(engine, args.names), ThreadingServer, QuietHandler
    )
    # Blocked here, the stop signals reach only sigwait below, never the server's threads.
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    signal.sigwait(stop)
    server.shutdown()


if __name__ == "__main__":
    main()
