"""The Airflow image's helper scripts (docker/airflow/bin), run as the image runs them.

job-alive.py, the DAG processor's and triggerer's health probe, against a real PostgreSQL holding
Airflow's own `job` table: healthy only for a running job of the type on this host with a recent
heartbeat, and it says why not. admin-user.py against a metadata database migrated by the real
`airflow db migrate` with the FAB auth manager: it creates the admin, resets the password on a
re-run, and the password it was given is the one that works.
"""

import os
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.security import check_password_hash

BIN = Path(__file__).resolve().parents[2] / "docker" / "airflow" / "bin"
JOB_ALIVE = BIN / "job-alive.py"
ADMIN_USER = BIN / "admin-user.py"
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"


def run(
    script: Path, *args: str, env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args],
        input=stdin, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def job_database(postgres_server) -> Iterator[str]:
    """A database with Airflow's `job` table, created from Airflow's own model."""
    from airflow.jobs.job import Job
    from sqlalchemy import create_engine

    database = f"airflow_jobs_{uuid.uuid4().hex[:8]}"
    postgres_server.psql("postgres", "-c", f'CREATE DATABASE "{database}"')
    url = postgres_server.url(database).replace("postgresql://", "postgresql+psycopg2://", 1)
    engine = create_engine(url)
    Job.__table__.create(engine)
    engine.dispose()
    try:
        yield url
    finally:
        postgres_server.psql("postgres", "-c", f'DROP DATABASE "{database}" WITH (FORCE)')


def set_jobs(url: str, *rows: tuple[str, str, str, int]) -> None:
    """Replaces the job table's rows: (job_type, hostname, state, seconds since the heartbeat)."""
    import psycopg2

    libpq_url = url.replace("+psycopg2", "", 1)
    with psycopg2.connect(libpq_url) as connection, connection.cursor() as cursor:
        cursor.execute("DELETE FROM job")
        for job_type, hostname, state, age in rows:
            cursor.execute(
                "INSERT INTO job (job_type, hostname, state, start_date, latest_heartbeat)"
                " VALUES (%s, %s, %s, now(), now() - make_interval(secs => %s))",
                (job_type, hostname, state, age),
            )


@pytest.fixture
def probe_env(job_database: str) -> dict[str, str]:
    return {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": job_database}


HOST = socket.getfqdn()


def test_a_running_job_with_a_recent_heartbeat_is_alive(job_database, probe_env) -> None:
    set_jobs(job_database, ("TriggererJob", HOST, "running", 2))
    result = run(JOB_ALIVE, "TriggererJob", "30", env=probe_env)
    assert result.returncode == 0, result.stderr
    assert f"TriggererJob on {HOST}: heartbeat" in result.stdout


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([("TriggererJob", HOST, "running", 45)], "last heartbeat 45 s ago (limit 30 s)"),
        ([("TriggererJob", HOST, "success", 1)], "no running TriggererJob"),
        ([("TriggererJob", "another-host", "running", 1)], "no running TriggererJob"),
        ([("DagProcessorJob", HOST, "running", 1)], "no running TriggererJob"),
        ([], "no running TriggererJob"),
    ],
    ids=["stale heartbeat", "job ended", "other host", "other job type", "no job"],
)
def test_a_dead_or_missing_job_is_unhealthy_and_says_why(
    job_database, probe_env, rows, reason
) -> None:
    set_jobs(job_database, *rows)
    result = run(JOB_ALIVE, "TriggererJob", "30", env=probe_env)
    assert result.returncode == 1
    assert reason in result.stdout


def test_the_newest_of_several_jobs_on_the_host_decides(job_database, probe_env) -> None:
    set_jobs(
        job_database,
        ("TriggererJob", HOST, "running", 300),
        ("TriggererJob", HOST, "running", 1),
    )
    assert run(JOB_ALIVE, "TriggererJob", "30", env=probe_env).returncode == 0


def test_an_unreachable_database_is_unhealthy(probe_env) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**probe_env, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql://x@127.0.0.1:{port}/x"}
    result = run(JOB_ALIVE, "TriggererJob", "30", env=env)
    assert result.returncode == 1
    assert "job-alive: metadata database:" in result.stderr


@pytest.mark.parametrize(
    ("args", "url", "message"),
    [
        (["TriggererJob", "soon"], None, "MAX_AGE_SECONDS: expected a number, got 'soon'"),
        (["TriggererJob", "30"], "sqlite:////tmp/airflow.db", "expected a postgresql:// URL"),
        (["TriggererJob"], None, "usage: job-alive.py JOB_TYPE MAX_AGE_SECONDS"),
    ],
    ids=["max age not a number", "not PostgreSQL", "missing argument"],
)
def test_bad_arguments_are_refused_naming_what_was_expected(probe_env, args, url, message) -> None:
    env = probe_env if url is None else {**probe_env, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url}
    result = run(JOB_ALIVE, *args, env=env)
    assert result.returncode == 2
    assert message in result.stderr


@pytest.fixture(scope="module")
def fab_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A metadata database migrated with the FAB auth manager, as the stack's init step does."""
    home = tmp_path_factory.mktemp("fab-home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    airflow = Path(sys.executable).parent / "airflow"
    migrate = subprocess.run(
        [str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=600
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    return env


def password_hash(env: dict[str, str], username: str) -> str | None:
    database = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:
        row = connection.execute("SELECT password FROM ab_user WHERE username = ?", (username,))
        found = row.fetchone()
    return None if found is None else str(found[0])


def test_admin_user_is_created_then_its_password_reset(fab_env: dict[str, str]) -> None:
    created = run(ADMIN_USER, "admin", env=fab_env, stdin="first-password\n")
    assert created.returncode == 0, created.stderr[-3000:]
    assert "admin-user: created admin user admin" in created.stdout
    assert check_password_hash(password_hash(fab_env, "admin") or "", "first-password")

    reset = run(ADMIN_USER, "admin", env=fab_env, stdin="second-password\n")
    assert reset.returncode == 0, reset.stderr[-3000:]
    assert "admin user admin exists; reset its password" in reset.stdout
    stored = password_hash(fab_env, "admin") or ""
    assert check_password_hash(stored, "second-password")
    assert not check_password_hash(stored, "first-password")
    assert "second-password" not in reset.stdout + reset.stderr


def test_admin_user_without_a_password_changes_nothing(fab_env: dict[str, str]) -> None:
    result = run(ADMIN_USER, "nobody", env=fab_env, stdin="")
    assert result.returncode == 1
    assert "expected the password as one line on stdin" in result.stderr
    assert password_hash(fab_env, "nobody") is None
