"""Health probe of an Airflow job container (scheduler, DAG processor, triggerer).

Exits 0 when a job of the given type is running on this host and sent a heartbeat within the
given number of seconds, 1 otherwise, saying why. It asks what `airflow jobs check --job-type
TYPE --local` asks (the same `job` table, host name and state), without importing Airflow: that
command costs about 2.4 s of CPU per run on a 2-core machine, this one about 0.05 s, so the probe
can run every few seconds and a new container is seen healthy as soon as its job beats.

With RESTART_AFTER_SECONDS, it is also a liveness probe. Docker restarts a container only when
its process exits, and a job can hang instead: the scheduler did, once PostgreSQL was replaced
under it. Once the job's heartbeat is that old, and the container has run that long, the probe
kills the container's main process (the children of PID 1), and Docker's restart policy starts
a fresh one, as a Kubernetes liveness probe would.

Usage: job-alive.py JOB_TYPE MAX_AGE_SECONDS [RESTART_AFTER_SECONDS]
The metadata database is the one AIRFLOW__DATABASE__SQL_ALCHEMY_CONN names, or the output of the
command AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD, as Airflow reads it (vpe_secrets).
"""

import os
import signal
import socket
import sys
from pathlib import Path

import psycopg2
from vpe_secrets import SecretError, from_env_or_command

DATABASE_URL_ENV = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
LATEST_HEARTBEAT_AGE = """
SELECT extract(epoch FROM now() - latest_heartbeat)
FROM job
WHERE job_type = %s AND hostname = %s AND state = 'running'
ORDER BY latest_heartbeat DESC
LIMIT 1
"""


def libpq_url(sqlalchemy_url: str) -> str:
    """postgresql+psycopg2://... -> postgresql://... (libpq does not know the driver suffix)."""
    scheme, separator, rest = sqlalchemy_url.partition("://")
    if not separator or scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise ValueError(f"{DATABASE_URL_ENV}: expected a postgresql:// URL")
    return f"postgresql://{rest}"


def heartbeat_age(url: str, job_type: str, hostname: str) -> float | None:
    """Seconds since the latest heartbeat of a running job of this type on this host, if any."""
    with psycopg2.connect(url, connect_timeout=5) as connection, connection.cursor() as cursor:
        cursor.execute(LATEST_HEARTBEAT_AGE, (job_type, hostname))
        row = cursor.fetchone()
    return None if row is None else float(row[0])


def verdict(job_type: str, max_age: float, age: float | None, hostname: str) -> tuple[bool, str]:
    """Whether a job whose latest heartbeat is `age` seconds old (None: no running job) is alive."""
    if age is None:
        return False, f"no running {job_type} on {hostname}"
    if age >= max_age:
        limit = f"limit {max_age:g} s"
        return False, f"{job_type} on {hostname}: last heartbeat {age:.0f} s ago ({limit})"
    return True, f"{job_type} on {hostname}: heartbeat {age:.1f} s ago"


def should_restart(age: float | None, restart_after: float | None, uptime: float) -> bool:
    """A job silent for restart_after seconds, in a container up at least that long (so a fresh
    one, whose job has yet to beat, is never ended)."""
    return (
        restart_after is not None
        and age is not None
        and age >= restart_after
        and uptime >= restart_after
    )


def uptime_of_pid_1(proc: Path = Path("/proc")) -> float:
    """Seconds since the container's PID 1 started (field 22 of its stat, in clock ticks)."""
    started = int((proc / "1" / "stat").read_text().rsplit(")", 1)[1].split()[19])
    return float((proc / "uptime").read_text().split()[0]) - started / os.sysconf("SC_CLK_TCK")


def pid_1_is_dumb_init(proc: Path = Path("/proc")) -> bool:
    """The image's init: the probe never ends anything outside such a container."""
    return Path((proc / "1" / "cmdline").read_bytes().split(b"\0")[0].decode()).name == "dumb-init"


def children_of_pid_1(proc: Path = Path("/proc")) -> list[int]:
    """The container's main process: what PID 1 (dumb-init) runs. Probes are not among them."""
    children = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            if fields[1] == "1":
                children.append(int(entry.name))
    return children


def number(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {text!r}") from None


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(
            "usage: job-alive.py JOB_TYPE MAX_AGE_SECONDS [RESTART_AFTER_SECONDS]", file=sys.stderr
        )
        return 2
    job_type = argv[1]
    try:
        max_age = number("MAX_AGE_SECONDS", argv[2])
        restart_after = number("RESTART_AFTER_SECONDS", argv[3]) if len(argv) == 4 else None
    except ValueError as error:
        print(f"job-alive: {error}", file=sys.stderr)
        return 2
    try:
        url = libpq_url(from_env_or_command(DATABASE_URL_ENV))
    except (SecretError, ValueError) as error:  # unset, its command failed, or not PostgreSQL
        print(f"job-alive: {error}", file=sys.stderr)
        return 2
    # What Airflow records as a job's host (its default hostname_callable).
    hostname = socket.getfqdn()
    try:
        age = heartbeat_age(url, job_type, hostname)
    except psycopg2.Error as error:
        print(f"job-alive: metadata database: {error}".strip(), file=sys.stderr)
        return 1
    alive, message = verdict(job_type, max_age, age, hostname)
    print(message)
    if not alive and should_restart(age, restart_after, uptime_of_pid_1()) and pid_1_is_dumb_init():
        children = children_of_pid_1()
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        silent = f"{job_type} silent for {restart_after:g} s or more"
        print(f"{silent}: ended {children} for Docker to restart the container")
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
