"""Prometheus metrics of the executor's task calls, served over HTTP on the stack network.

The `task` label is a registered task name, or `unregistered` for a command the registry does
not hold: a caller's arbitrary command names never become series of their own.
"""

from dataclasses import dataclass
from enum import Enum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

UNREGISTERED = "unregistered"

# Pipeline tasks take from a second (ping_env) to tens of minutes (a full weather fetch).
DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class Refusal(Enum):
    BUSY = "busy"  # every task slot was taken: RESOURCE_EXHAUSTED
    INVALID = "invalid"  # unknown command or undeclared argument: INVALID_ARGUMENT


class Failure(Enum):
    EXIT = "exit"  # ran and exited non-zero
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    ERROR = "error"  # the executor could not run it (for example, its log file not writable)


@dataclass(frozen=True)
class MetricsServer:
    host: str
    port: int


class TaskMetrics:
    def __init__(self, slots: int) -> None:
        self.registry = CollectorRegistry()
        self._started = Counter(
            "vpe_executor_tasks_started",
            "Task calls that got a slot and started a process.",
            ["task"],
            registry=self.registry,
        )
        self._refused = Counter(
            "vpe_executor_tasks_refused",
            "Task calls refused before anything ran, by reason (busy slots, invalid request).",
            ["task", "reason"],
            registry=self.registry,
        )
        self._failed = Counter(
            "vpe_executor_tasks_failed",
            "Started tasks that did not succeed, by reason (non-zero exit, timeout, cancelled).",
            ["task", "reason"],
            registry=self.registry,
        )
        self._running = Gauge(
            "vpe_executor_tasks_running",
            "Tasks running now.",
            ["task"],
            registry=self.registry,
        )
        self._duration = Histogram(
            "vpe_executor_task_duration_seconds",
            "Wall time of each started task, whatever its outcome.",
            ["task"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        slots_gauge = Gauge(
            "vpe_executor_task_slots", "Tasks the executor runs at once.", registry=self.registry
        )
        slots_gauge.set(slots)

    def refused(self, task: str, reason: Refusal) -> None:
        self._refused.labels(task, reason.value).inc()

    def started(self, task: str) -> None:
        self._started.labels(task).inc()
        self._running.labels(task).inc()

    def finished(self, task: str, seconds: float, failure: Failure | None) -> None:
        self._running.labels(task).dec()
        self._duration.labels(task).observe(seconds)
        if failure is not None:
            self._failed.labels(task, failure.value).inc()

    def serve(self, host: str, port: int) -> MetricsServer:
        """Serves /metrics in a daemon thread; port 0 picks a free one."""
        http_server, _ = start_http_server(port, addr=host, registry=self.registry)
        return MetricsServer(host, http_server.server_port)
