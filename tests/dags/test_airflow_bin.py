"""The Airflow image's helper scripts (docker/airflow/bin), run as the image runs them.

job-alive.py, the DAG processor's and triggerer's health probe, against a real PostgreSQL holding
Airflow's own `job` table: healthy only for a running job of the type on this host with a recent
heartbeat, and it says why not; its database URL may come from Airflow's _CMD variant, which
the stack uses to keep secrets out of the environment (vpe_secrets.py). admin-user.py against a
metadata database migrated by the real `airflow db migrate` with the FAB auth manager: it creates
the admin, resets the password on a re-run, and the password it was given is the one that works;
airflow-init.sh, installed as the image installs it, does the same with its secrets in files.
"""

import importlib.util
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from werkzeug.security import check_password_hash

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / "docker" / "airflow" / "bin"
JOB_ALIVE = BIN / "job-alive.py"
ADMIN_USER = BIN / "admin-user.py"
SECRETS = BIN / "vpe_secrets.py"
DATABASE_URL = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
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
        (
            ["TriggererJob"],
            None,
            "usage: job-alive.py JOB_TYPE MAX_AGE_SECONDS [RESTART_AFTER_SECONDS]",
        ),
        (
            ["SchedulerJob", "30", "later"],
            None,
            "RESTART_AFTER_SECONDS: expected a number, got 'later'",
        ),
    ],
    ids=[
        "max age not a number",
        "not PostgreSQL",
        "missing argument",
        "restart after not a number",
    ],
)
def test_bad_arguments_are_refused_naming_what_was_expected(probe_env, args, url, message) -> None:
    env = probe_env if url is None else {**probe_env, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url}
    result = run(JOB_ALIVE, *args, env=env)
    assert result.returncode == 2
    assert message in result.stderr


def job_alive_module() -> Any:
    sys.path.insert(0, str(BIN))
    spec = importlib.util.spec_from_file_location("job_alive", JOB_ALIVE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("age", "restart_after", "uptime", "restart"),
    [
        (130.0, 120.0, 600.0, True),
        (60.0, 120.0, 600.0, False),
        (130.0, 120.0, 30.0, False),
        (None, 120.0, 600.0, False),
        (130.0, None, 600.0, False),
    ],
    ids=[
        "silent long enough",
        "beating recently",
        "container just restarted",
        "no job",
        "no liveness",
    ],
)
def test_only_a_job_silent_long_enough_in_a_container_up_long_enough_is_ended(
    age, restart_after, uptime, restart
) -> None:
    assert job_alive_module().should_restart(age, restart_after, uptime) is restart


def test_reads_pid_1s_uptime_children_and_init_from_proc(tmp_path: Path) -> None:
    probe = job_alive_module()
    ticks = os.sysconf("SC_CLK_TCK")
    stat = "{pid} (a (b) c) S {ppid} " + " ".join(["0"] * 17) + " {start} 0 0\n"
    for pid, ppid in ((1, 0), (42, 1), (43, 42)):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(
            stat.format(pid=pid, ppid=ppid, start=100 * ticks)
        )
    (tmp_path / "uptime").write_text("350.50 20.00\n")
    (tmp_path / "1" / "cmdline").write_bytes(b"/usr/bin/dumb-init\0--\0/entrypoint\0")
    assert probe.uptime_of_pid_1(tmp_path) == pytest.approx(250.5)
    assert probe.children_of_pid_1(tmp_path) == [42]
    assert probe.pid_1_is_dumb_init(tmp_path)
    (tmp_path / "1" / "cmdline").write_bytes(b"/sbin/init\0")
    assert not probe.pid_1_is_dumb_init(tmp_path)


def cmd_env(probe_env: dict[str, str], command: str) -> dict[str, str]:
    """The probe's environment as the stack sets it: the URL only through Airflow's _CMD."""
    env = {k: v for k, v in probe_env.items() if k != DATABASE_URL}
    return {**env, f"{DATABASE_URL}_CMD": command}


def test_the_probe_reads_the_database_url_from_the_cmd_variant(
    job_database, probe_env, tmp_path: Path
) -> None:
    set_jobs(job_database, ("TriggererJob", HOST, "running", 2))
    secret = tmp_path / "airflow-metadata-url"
    # No trailing newline: Airflow keeps the command's output as it is, newline included.
    secret.write_text(job_database)
    result = run(JOB_ALIVE, "TriggererJob", "30", env=cmd_env(probe_env, f"cat {secret}"))
    assert result.returncode == 0, result.stderr
    assert f"TriggererJob on {HOST}: heartbeat" in result.stdout
    # A plain variable wins over its _CMD, as in Airflow: the command is not even run.
    plain_wins = {**cmd_env(probe_env, "false"), DATABASE_URL: job_database}
    assert run(JOB_ALIVE, "TriggererJob", "30", env=plain_wins).returncode == 0


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (None, f"{DATABASE_URL} is not set: expected it or {DATABASE_URL}_CMD"),
        ("cat /nonexistent/url", f"{DATABASE_URL}_CMD: cat exited with code 1: cat: /nonexist"),
        ("no-such-command-vpe", f"{DATABASE_URL}_CMD: cannot run no-such-command-vpe"),
        ("true", f"{DATABASE_URL}_CMD: true printed nothing"),
        ("cat 'unbalanced", f"{DATABASE_URL}_CMD: cannot parse the command"),
    ],
    ids=["unset", "command fails", "no such command", "no output", "bad quoting"],
)
def test_a_missing_url_or_failing_command_is_refused_naming_the_variable(
    probe_env, command, message
) -> None:
    env = {k: v for k, v in probe_env.items() if k != DATABASE_URL}
    if command is not None:
        env[f"{DATABASE_URL}_CMD"] = command
    result = run(JOB_ALIVE, "TriggererJob", "30", env=env)
    assert result.returncode == 2
    assert f"job-alive: {message}" in result.stderr


def test_a_failing_command_shows_its_stderr_never_its_output_or_arguments(probe_env) -> None:
    leaky = "sh -c 'echo postgresql://u:sentinel-secret@db/x; echo denied >&2; exit 3'"
    result = run(JOB_ALIVE, "TriggererJob", "30", env=cmd_env(probe_env, leaky))
    assert result.returncode == 2
    assert f"job-alive: {DATABASE_URL}_CMD: sh exited with code 3: denied" in result.stderr
    assert "sentinel-secret" not in result.stdout + result.stderr


def secret(kind: str, name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """vpe_secrets.py as airflow-init.sh runs it: the value on stdout."""
    return run(SECRETS, kind, name, env={"PATH": os.environ["PATH"], **env})


def test_our_variables_come_from_the_file_their_file_variant_names(tmp_path: Path) -> None:
    password = tmp_path / "admin-password"
    password.write_text("s3cret\n")
    from_file = secret("file", "VPE_ADMIN_PASSWORD", {"VPE_ADMIN_PASSWORD_FILE": str(password)})
    assert (from_file.returncode, from_file.stdout) == (0, "s3cret")  # one newline stripped
    plain = secret("file", "VPE_ADMIN_PASSWORD", {"VPE_ADMIN_PASSWORD": "plain"})
    assert (plain.returncode, plain.stdout) == (0, "plain")
    both = secret(
        "file", "VPE_ADMIN_PASSWORD",
        {"VPE_ADMIN_PASSWORD": "plain", "VPE_ADMIN_PASSWORD_FILE": str(password)},
    )  # fmt: skip
    assert both.returncode == 1
    assert "both VPE_ADMIN_PASSWORD and VPE_ADMIN_PASSWORD_FILE are set" in both.stderr
    # A folder cannot be read as a file, even by root (the tests may run as root).
    unreadable = secret("file", "VPE_ADMIN_PASSWORD", {"VPE_ADMIN_PASSWORD_FILE": str(tmp_path)})
    assert unreadable.returncode == 1
    assert f"VPE_ADMIN_PASSWORD_FILE={tmp_path}: cannot read the file" in unreadable.stderr
    (tmp_path / "empty").write_text("\n")
    empty = secret("file", "X", {"X_FILE": str(tmp_path / "empty")})
    assert f"X_FILE={tmp_path / 'empty'}: the file is empty" in empty.stderr
    unset = secret("file", "X", {})
    assert "X is not set: expected it or X_FILE" in unset.stderr
    for result in (from_file, both, unreadable, empty, unset):
        assert "s3cret" not in result.stderr
    assert secret("files", "X", {}).returncode == 2


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


def install_init(root: Path, platform: dict[str, Any]) -> tuple[Path, Path]:
    """airflow-init.sh with the helpers beside it, as install-files.sh installs them, and a
    platform.json whose keys folder is under `root`. Returns (the script, platform.json)."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for name in ("airflow-init.sh", "admin-user.py", "vpe_secrets.py"):
        shutil.copy(BIN / name, bin_dir)
    shutil.copy(REPO / "docker" / "spark" / "build" / "platform-get.py", bin_dir)
    keys = root / "keys"
    keys.mkdir()
    local = {**platform, "paths": {**platform["paths"], "airflowKeys": str(keys)}}
    local["paths"]["airflowKeysRestored"] = str(keys / "restored")
    platform_file = root / "platform.json"
    platform_file.write_text(json.dumps(local))
    return bin_dir / "airflow-init.sh", platform_file


def init_env(
    fab_env: dict[str, str], platform: dict[str, Any], platform_file: Path, secrets: Path
) -> dict[str, str]:
    """The init container's environment as the stack sets it: secrets as files only."""
    names = platform["env"]
    env = {k: v for k, v in fab_env.items() if not k.startswith(("VPE_", "AIRFLOW__CORE__FERNET"))}
    return {
        **env,
        # airflow-init.sh runs `python` and `airflow`: this venv's, as in the image.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "VPE_PLATFORM_FILE": str(platform_file),
        names["adminUsername"]: "init-admin",
        f"{names['adminPassword']}_FILE": str(secrets / "admin-password"),
        "AIRFLOW__CORE__FERNET_KEY_CMD": f"cat {secrets / 'fernet-key'}",
    }


def run_init(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=600
    )


def test_airflow_init_takes_its_secrets_from_files_and_commands(
    fab_env: dict[str, str], platform: dict[str, Any], tmp_path: Path
) -> None:
    script, platform_file = install_init(tmp_path, platform)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "admin-password").write_text("init-password-sentinel\n")
    first_key, second_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    (secrets / "fernet-key").write_text(first_key)
    env = init_env(fab_env, platform, platform_file, secrets)
    keyring = tmp_path / "keys" / "fernet-keys"

    first = run_init(script, env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "admin-user: created admin user init-admin" in first.stdout
    assert check_password_hash(password_hash(fab_env, "init-admin") or "", "init-password-sentinel")
    assert keyring.read_text() == f"{first_key}\n"

    # A new key: the re-encryption step sees both keys through a plain variable, which Airflow
    # prefers to the _CMD the stack sets.
    (secrets / "fernet-key").write_text(second_key)
    second = run_init(script, env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "re-encrypting connections, variables and triggers" in second.stdout
    assert keyring.read_text() == f"{second_key}\n{first_key}\n"
    for result in (first, second):
        output = result.stdout + result.stderr
        assert "init-password-sentinel" not in output
        assert first_key not in output and second_key not in output


def test_airflow_init_refuses_an_unreadable_password_file_before_touching_anything(
    fab_env: dict[str, str], platform: dict[str, Any], tmp_path: Path
) -> None:
    script, platform_file = install_init(tmp_path, platform)
    missing = tmp_path / "secrets"  # nothing in it: no admin-password file
    missing.mkdir()
    result = run_init(script, init_env(fab_env, platform, platform_file, missing))
    assert result.returncode == 1
    variable = f"{platform['env']['adminPassword']}_FILE"
    assert f"{variable}={missing / 'admin-password'}: cannot read the file" in result.stderr
    assert "airflow-init: no admin password (platform.json env.adminPassword)" in result.stderr
    assert "migrating" not in result.stdout
