"""Runs one task process and guarantees that its whole process tree is gone afterwards.

Each task starts in a new session, so its process group holds the task and every descendant
that does not call setsid() itself. Waiting uses a pidfd: it wakes the moment the leader exits
but does not reap it, so the group id cannot be recycled while we still signal the group.
After the leader exits (or is stopped) the group gets SIGKILL, so no stray descendant survives.
"""

import contextlib
import enum
import os
import select
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


class StopReason(enum.Enum):
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stopped: StopReason | None
    duration_seconds: float


class Runner:
    def __init__(self, kill_grace_seconds: float, poll_seconds: float = 0.2) -> None:
        self._kill_grace = kill_grace_seconds
        self._poll = poll_seconds
        self._abort = threading.Event()
        self._idle = threading.Condition()
        self._active = 0

    def run(
        self,
        argv: Sequence[str],
        log_path: Path,
        timeout_seconds: float,
        cancelled: Callable[[], bool],
        cwd: Path | None = None,
    ) -> Outcome:
        start = time.monotonic()
        with self._idle:
            self._active += 1
        try:
            with log_path.open("ab", buffering=0) as log:
                log.write(f"--- {_now()} start: {shlex.join(argv)}\n".encode())
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    cwd=cwd,
                )
                stopped = self._supervise(proc, start + timeout_seconds, cancelled)
                duration = time.monotonic() - start
                log.write(f"--- {_now()} end: {_describe(proc.returncode, stopped)}\n".encode())
            return Outcome(proc.returncode, stopped, duration)
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def abort_all(self) -> None:
        """Stop every running task now (used at the end of a graceful shutdown)."""
        self._abort.set()

    def wait_idle(self, timeout_seconds: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout_seconds)

    def _supervise(
        self, proc: subprocess.Popen[bytes], deadline: float, cancelled: Callable[[], bool]
    ) -> StopReason | None:
        pidfd = os.pidfd_open(proc.pid)
        try:
            stopped = self._wait(pidfd, deadline, cancelled)
            if stopped is not None:
                _signal_group(proc.pid, signal.SIGTERM)
                _exited(pidfd, self._kill_grace)
            _signal_group(proc.pid, signal.SIGKILL)
        finally:
            os.close(pidfd)
        proc.wait()
        return stopped

    def _wait(
        self, pidfd: int, deadline: float, cancelled: Callable[[], bool]
    ) -> StopReason | None:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return StopReason.TIMEOUT
            if _exited(pidfd, min(remaining, self._poll)):
                return None
            if cancelled() or self._abort.is_set():
                return StopReason.CANCELLED


def _exited(pidfd: int, timeout_seconds: float) -> bool:
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(max(0, int(timeout_seconds * 1000))))


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _describe(returncode: int, stopped: StopReason | None) -> str:
    if stopped is not None:
        return f"stopped ({stopped.value}), exit status {returncode}"
    return f"exit code {returncode}"
