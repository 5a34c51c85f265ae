"""gRPC server: PingService (ping, command) plus the standard grpc.health.v1 service.

Status mapping for `command`:
  OK                  task exited 0; ExeResult in the response
  INVALID_ARGUMENT    command not in the registry, or args its registry entry does not declare
                      or accept (the detail names the argument); nothing ran, no log file
  RESOURCE_EXHAUSTED  all task slots busy (limit: env var platform env.executorMaxConcurrent)
  DEADLINE_EXCEEDED   task outlived the registry's timeout_seconds; its process group was killed
  ABORTED             task ran and exited non-zero (the caller decides whether to retry)
  CANCELLED           caller went away or the server shut down; process group was killed
Failures carry run id, exit code and log path in trailing metadata (keys: platform
executorMetadata) and in the status message.

`buffer_file` answers whether a file of the buffer (platform paths.buffer) exists: OK with its
state, or INVALID_ARGUMENT for a path that is not a plain relative path inside the buffer.
"""

import argparse
import logging
import os
import re
import signal
import sys
import threading
import time
import uuid
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from vpe_executor.metrics import UNREGISTERED, Failure, Refusal, TaskMetrics
from vpe_executor.platform_config import PlatformError, load_platform, lookup
from vpe_executor.registry import RegistryError, TaskArgumentError, TaskSpec, load_registry
from vpe_executor.runner import Outcome, Runner, StopReason
from vpe_executor.tls import TlsError, TlsFiles, server_credentials
from vpe_executor.wire import pb2, pb2_grpc

LOG = logging.getLogger("vpe_executor")
FAILED_TASK_STATUS = grpc.StatusCode.ABORTED
_RUN_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_RUN_ID_MAX = 128
_DEFAULT_REGISTRY = Path(__file__).resolve().parents[2] / "tasks.toml"


def sanitize_run_id(raw: str) -> str:
    """Make a caller's run id safe as a file name; empty input yields a fresh uuid4 hex."""
    cleaned = _RUN_ID_UNSAFE.sub("_", raw)[:_RUN_ID_MAX].lstrip(".")
    return cleaned or uuid.uuid4().hex


@dataclass(frozen=True)
class Reply:
    status: grpc.StatusCode
    detail: str
    result: Any  # pb2.ExeResult


def buffer_path(root: Path, relative: str) -> Path:
    """The file `relative` names inside the buffer `root`; ValueError unless it stays inside."""
    parts = Path(relative).parts
    if not relative or Path(relative).is_absolute() or ".." in parts or "\0" in relative:
        raise ValueError(f"buffer path {relative!r}: expected a relative path without '..'")
    path = root / relative
    if not path.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"buffer path {relative!r}: leads out of the buffer")
    return path


class ExecutorServicer(pb2_grpc.PingServiceServicer):
    def __init__(
        self,
        registry: dict[str, TaskSpec],
        runner: Runner,
        logs_dir: Path,
        buffer_dir: Path,
        max_concurrent: int,
        metadata_keys: dict[str, str],
        metrics: TaskMetrics,
    ) -> None:
        self._registry = registry
        self._runner = runner
        self._logs_dir = logs_dir
        self._buffer_dir = buffer_dir
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._max_concurrent = max_concurrent
        self._keys = metadata_keys
        self._metrics = metrics

    def ping(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pb2.PingResponse(message=request.message)

    def buffer_file(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            path = buffer_path(self._buffer_dir, request.path)
        except ValueError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise AssertionError("unreachable: context.abort raises") from exc
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return pb2.BufferFileState(exists=False)
        if not S_ISREG(stat.st_mode):
            return pb2.BufferFileState(exists=False)
        return pb2.BufferFileState(exists=True, size_bytes=stat.st_size)

    def command(self, request: Any, context: grpc.ServicerContext) -> Any:
        start = time.monotonic()
        run_id = sanitize_run_id(request.run_id)
        reply = self._execute(request, run_id, context)
        LOG.info(
            "run_id=%s command=%r status=%s exit_code=%d duration=%.3fs",
            run_id,
            request.command,
            reply.status.name,
            reply.result.exit_code,
            time.monotonic() - start,
        )
        if reply.status is grpc.StatusCode.OK:
            return reply.result
        context.set_trailing_metadata(
            (
                (self._keys["runId"], reply.result.run_id),
                (self._keys["exitCode"], str(reply.result.exit_code)),
                (self._keys["logPath"], reply.result.log_path),
            )
        )
        context.abort(reply.status, reply.detail)
        raise AssertionError("unreachable: context.abort raises")

    def _execute(self, request: Any, run_id: str, context: grpc.ServicerContext) -> Reply:
        spec = self._registry.get(request.command)
        if spec is None:
            known = ", ".join(sorted(self._registry))
            detail = f"unknown command {request.command!r}; registered commands: {known}"
            self._metrics.refused(UNREGISTERED, Refusal.INVALID)
            return Reply(grpc.StatusCode.INVALID_ARGUMENT, detail, _result(detail, run_id))
        try:
            args = spec.validated_args(list(request.args))
        except TaskArgumentError as exc:
            self._metrics.refused(spec.name, Refusal.INVALID)
            return Reply(grpc.StatusCode.INVALID_ARGUMENT, str(exc), _result(str(exc), run_id))
        if not self._slots.acquire(blocking=False):
            detail = f"all {self._max_concurrent} task slots are busy; retry later"
            self._metrics.refused(spec.name, Refusal.BUSY)
            return Reply(grpc.StatusCode.RESOURCE_EXHAUSTED, detail, _result(detail, run_id))
        self._metrics.started(spec.name)
        log_path = self._logs_dir / f"{run_id}.log"
        outcome: Outcome | None = None
        try:
            outcome = self._runner.run(
                spec.argv(args),
                log_path,
                spec.timeout_seconds,
                cancelled=lambda: not context.is_active(),
                cwd=spec.script.parent,
            )
        finally:
            self._slots.release()
            self._metrics.finished(spec.name, _duration(outcome), _failure(outcome))
        return _reply(spec, run_id, log_path, outcome)


def _duration(outcome: Outcome | None) -> float:
    return 0.0 if outcome is None else outcome.duration_seconds


def _failure(outcome: Outcome | None) -> Failure | None:
    if outcome is None:
        return Failure.ERROR
    if outcome.stopped is StopReason.TIMEOUT:
        return Failure.TIMEOUT
    if outcome.stopped is StopReason.CANCELLED:
        return Failure.CANCELLED
    return Failure.EXIT if outcome.exit_code != 0 else None


def _result(message: str, run_id: str, log_path: Path | None = None, **fields: Any) -> Any:
    return pb2.ExeResult(message=message, run_id=run_id, log_path=str(log_path or ""), **fields)


def _reply(spec: TaskSpec, run_id: str, log_path: Path, outcome: Outcome) -> Reply:
    where = f"log: {log_path}"
    if outcome.stopped is StopReason.TIMEOUT:
        status = grpc.StatusCode.DEADLINE_EXCEEDED
        detail = f"task {spec.name!r} exceeded {spec.timeout_seconds:g}s and was killed; {where}"
    elif outcome.stopped is StopReason.CANCELLED:
        status = grpc.StatusCode.CANCELLED
        detail = f"task {spec.name!r} was cancelled and killed; {where}"
    elif outcome.exit_code != 0:
        status = FAILED_TASK_STATUS
        detail = f"task {spec.name!r} failed with exit code {outcome.exit_code}; {where}"
    else:
        status = grpc.StatusCode.OK
        detail = f"task {spec.name!r} succeeded in {outcome.duration_seconds:.3f}s; {where}"
    result = _result(
        detail,
        run_id,
        log_path,
        exit_code=outcome.exit_code,
        duration_seconds=outcome.duration_seconds,
    )
    return Reply(status, detail, result)


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    metrics_port: int
    logs_dir: Path
    buffer_dir: Path
    max_concurrent: int
    shutdown_grace: float
    kill_grace: float
    registry: dict[str, TaskSpec]
    metadata_keys: dict[str, str]
    # None only with --plaintext, which the stack never passes.
    tls: grpc.ServerCredentials | None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vpe_executor", description=__doc__.splitlines()[0])
    parser.add_argument("--platform-file", help="platform.json (default: $VPE_PLATFORM_FILE)")
    parser.add_argument("--registry", type=Path, default=_DEFAULT_REGISTRY)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, help="default: platform ports.executorGrpc; 0 = any")
    parser.add_argument(
        "--metrics-port", type=int, help="default: platform ports.executorMetrics; 0 = any"
    )
    parser.add_argument("--logs-dir", type=Path, help="default: platform paths.logs")
    parser.add_argument("--buffer-dir", type=Path, help="default: platform paths.buffer")
    parser.add_argument("--envs-dir", type=Path, help="default: platform paths.envs")
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=4,
        help="task slots when the env var platform env.executorMaxConcurrent is unset",
    )
    parser.add_argument("--shutdown-grace", type=float, default=30.0, metavar="SECONDS")
    parser.add_argument("--kill-grace", type=float, default=5.0, metavar="SECONDS")
    parser.add_argument(
        "--tls-dir",
        type=Path,
        help="folder with the CA, certificate and key (default: platform tls.dir)",
    )
    parser.add_argument(
        "--plaintext",
        action="store_true",
        help="serve without TLS or client authentication (tests only)",
    )
    return parser.parse_args(argv)


def resolve_settings(args: argparse.Namespace) -> Settings:
    platform = load_platform(args.platform_file)
    envs_dir = args.envs_dir or Path(lookup(platform, "paths.envs"))
    logs_root = args.logs_dir or Path(lookup(platform, "paths.logs"))
    return Settings(
        host=args.host,
        port=lookup(platform, "ports.executorGrpc") if args.port is None else args.port,
        metrics_port=lookup(platform, "ports.executorMetrics")
        if args.metrics_port is None
        else args.metrics_port,
        logs_dir=logs_root / "executor",
        buffer_dir=args.buffer_dir or Path(lookup(platform, "paths.buffer")),
        max_concurrent=_max_concurrent(lookup(platform, "env.executorMaxConcurrent"), args),
        shutdown_grace=args.shutdown_grace,
        kill_grace=args.kill_grace,
        registry=load_registry(args.registry, envs_dir),
        metadata_keys=lookup(platform, "executorMetadata"),
        # Read here: a missing or empty file is a configuration error at start, not per call.
        tls=None
        if args.plaintext
        else server_credentials(TlsFiles.for_platform(platform, args.tls_dir)),
    )


def _max_concurrent(env_name: str, args: argparse.Namespace) -> int:
    raw = os.environ.get(env_name)
    source = f"environment variable {env_name}" if raw is not None else "--max-concurrent"
    try:
        value = int(raw) if raw is not None else args.max_concurrent
    except ValueError:
        raise ValueError(f"{source} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{source} must be a positive integer, got {value}")
    return value


def serve(settings: Settings, stop: threading.Event) -> None:
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    runner = Runner(kill_grace_seconds=settings.kill_grace)
    # Extra threads beyond the task slots keep ping, health and fast rejections answering
    # while every slot runs a long task.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=settings.max_concurrent + 8))
    metrics = TaskMetrics(settings.max_concurrent)
    servicer = ExecutorServicer(
        settings.registry,
        runner,
        settings.logs_dir,
        settings.buffer_dir,
        settings.max_concurrent,
        settings.metadata_keys,
        metrics,
    )
    pb2_grpc.add_PingServiceServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    address = f"{settings.host}:{settings.port}"
    if settings.tls is None:
        port = server.add_insecure_port(address)
    else:
        # gRPC core logs each refused handshake (plaintext, no or foreign certificate) to stderr.
        port = server.add_secure_port(address, settings.tls)
    server.start()
    endpoint = metrics.serve(settings.host, settings.metrics_port)
    LOG.info("serving metrics on http://%s:%d/metrics", endpoint.host, endpoint.port)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    LOG.info(
        "listening on %s:%d with %s (tasks: %s; slots: %d)",
        settings.host,
        port,
        "plaintext" if settings.tls is None else "mutual TLS",
        ", ".join(sorted(settings.registry)),
        settings.max_concurrent,
    )
    stop.wait()
    LOG.info("shutting down: %.1fs grace for in-flight tasks", settings.shutdown_grace)
    health_servicer.enter_graceful_shutdown()
    server.stop(settings.shutdown_grace).wait()
    runner.abort_all()
    runner.wait_idle(settings.kill_grace + 1.0)
    LOG.info("stopped")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # Group-writable files: the logs sit on a group-0 volume shared with Airflow (and the buffer
    # on a group-0 volume prepared like it).
    os.umask(0o002)
    try:
        settings = resolve_settings(parse_args(argv))
    except (PlatformError, RegistryError, TlsError, ValueError) as exc:
        LOG.error("configuration error: %s", exc)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    serve(settings, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
