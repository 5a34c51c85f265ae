"""Health probe of a Celery worker container: exits 0 when this host's worker answers a ping.

It sends what `celery --app <platform.json celeryApp> inspect ping -d celery@$HOSTNAME` sends (a
broadcast ping through the broker, to this host's node) from a bare Celery app on the same broker:
the `--app` module imports Airflow, about 2.5 s of CPU per probe on a 2-core machine, where this
takes about 0.2 s, so the probe can run every few seconds and a new worker is seen healthy as soon
as it answers.

Usage: celery-alive.py TIMEOUT_SECONDS; the broker is the one AIRFLOW__CELERY__BROKER_URL names,
or the output of the command AIRFLOW__CELERY__BROKER_URL_CMD, as Airflow reads it (vpe_secrets).
"""

import socket
import sys

from celery import Celery
from vpe_secrets import SecretError, from_env_or_command

BROKER_URL_ENV = "AIRFLOW__CELERY__BROKER_URL"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: celery-alive.py TIMEOUT_SECONDS", file=sys.stderr)
        return 2
    try:
        timeout = float(argv[1])
    except ValueError:
        print(f"celery-alive: TIMEOUT_SECONDS: expected a number, got {argv[1]!r}", file=sys.stderr)
        return 2
    try:
        broker = from_env_or_command(BROKER_URL_ENV)
    except SecretError as error:
        print(f"celery-alive: {error}", file=sys.stderr)
        return 2
    # The node name the worker registers: Celery's default, celery@<host name>.
    node = f"celery@{socket.gethostname()}"
    app = Celery("vpe-probe", broker=broker)
    try:
        replies = app.control.ping(destination=[node], timeout=timeout)
    except Exception as error:  # any broker failure means unhealthy, said once
        print(f"celery-alive: broker: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    finally:
        app.close()
    if any(node in reply for reply in replies):
        print(f"{node}: pong")
        return 0
    print(f"{node}: no reply within {timeout:g} s")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
