"""The Spark jobs with real PySpark (local master) against a real PostgreSQL warehouse built
from warehouse/migrations: each job's table must equal the warehouse's own view of its rule."""

import hashlib
import importlib.util
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import PLATFORM_FILE, REPO

JOBS = REPO / "docker" / "spark" / "jobs"
JOB = JOBS / "events_per_country_year.py"
PRECIPITATION_JOB = JOBS / "precipitation_before_events.py"
JAR_CACHE = Path(os.environ.get("VPE_JAR_CACHE", Path.home() / ".cache" / "vpe" / "jars"))
PASSWORD = "sentinel-password-must-not-be-printed"
EVENTS = """
INSERT INTO event (event_id, event_date, country, latitude, longitude) VALUES
    (1, '2015-03-01', 'Nepal', 27.7, 85.3), (2, '2015-07-01', 'Nepal', 27.8, 85.4),
    (3, '2016-01-02', 'Nepal', 27.9, 85.5), (4, '2016-05-05', 'Peru', -12.0, -77.0),
    (5, '2016-06-06', NULL, 10.0, 10.0), (6, '2016-06-07', '  ', 11.0, 11.0);
"""


@pytest.fixture(scope="session")
def jdbc_jar(platform: dict[str, Any]) -> Path:
    """The PostgreSQL JDBC driver from Maven Central, checked against platform.json."""
    version = platform["versions"]["postgresJdbc"]
    jar = JAR_CACHE / f"postgresql-{version}.jar"
    if not jar.exists():
        JAR_CACHE.mkdir(parents=True, exist_ok=True)
        url = f"https://repo1.maven.org/maven2/org/postgresql/postgresql/{version}/{jar.name}"
        with urllib.request.urlopen(url, timeout=60) as response:
            payload = response.read()
        partial = jar.with_suffix(".part")
        partial.write_bytes(payload)
        partial.rename(jar)
    assert (
        hashlib.sha256(jar.read_bytes()).hexdigest() == platform["checksums"]["postgresJdbcSha256"]
    )
    return jar


# Hourly precipitation at event 1's point (Nepal, 2015-03-01): 0.5 mm in each of the 720 hours
# of its 30-day window, plus hours outside it (the event day, and 31 days before) that must not
# count; at event 4's point (Peru, 2016-05-05): 1 mm in each hour of 2016-05-02, 3 days before.
# Event 2 (Nepal, 2015) has no weather, so it is not counted.
WEATHER = """
INSERT INTO data (latitude, longitude, observed_at, precipitation)
SELECT 27.7, 85.3, hour, 0.5
  FROM generate_series('2015-01-29 00:00'::timestamp, '2015-03-01 23:00', '1 hour') AS hour;
INSERT INTO data (latitude, longitude, observed_at, precipitation)
SELECT -12.0, -77.0, hour, 1
  FROM generate_series('2016-05-02 00:00'::timestamp, '2016-05-02 23:00', '1 hour') AS hour;
"""


def run_job(
    warehouse_url: str, jar: Path, platform: dict[str, Any], job: Path = JOB
) -> subprocess.CompletedProcess[str]:
    url = urlsplit(warehouse_url)
    names = platform["env"]
    env = {
        **os.environ,
        names["warehouseJdbcUrl"]: f"jdbc:postgresql://{url.hostname}:{url.port}{url.path}",
        names["warehouseUser"]: str(url.username),
        # The test cluster trusts local connections; the value only proves it is never printed.
        names["warehousePassword"]: PASSWORD,
        "VPE_PLATFORM_FILE": str(PLATFORM_FILE),
        "PYSPARK_PYTHON": sys.executable,
    }
    spark_submit = Path(sys.executable).parent / "spark-submit"
    return subprocess.run(
        [str(spark_submit), "--master", "local[1]", "--jars", str(jar), str(job)],
        env=env, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip


def query(postgres_server: Any, database: str, sql: str) -> list[str]:
    out = postgres_server.psql(database, "-At", "-c", sql).stdout
    return out.splitlines()


def test_job_matches_the_warehouse_view_and_keeps_the_table(
    postgres_server: Any, warehouse_url: str, jdbc_jar: Path, platform: dict[str, Any]
) -> None:
    database = urlsplit(warehouse_url).path.lstrip("/")
    postgres_server.psql(database, "-c", EVENTS)
    constraints_sql = (
        "SELECT conname FROM pg_constraint "
        "WHERE conrelid = 'event_stats_country_year'::regclass ORDER BY 1"
    )
    constraints = query(postgres_server, database, constraints_sql)
    stats_sql = "SELECT country, year, events FROM event_stats_country_year ORDER BY 1, 2"
    view_sql = "SELECT country, year, events FROM landslide_event_country_year ORDER BY 1, 2"

    for _ in range(2):  # a re-run replaces the rows instead of adding to them
        result = run_job(warehouse_url, jdbc_jar, platform)
        assert result.returncode == 0, result.stderr[-3000:]
        assert PASSWORD not in result.stdout + result.stderr
        assert query(postgres_server, database, stats_sql) == query(
            postgres_server, database, view_sql
        )

    assert query(postgres_server, database, stats_sql) == [
        "Nepal|2015|2", "Nepal|2016|1", "Peru|2016|1", "Unknown|2016|2",
    ]  # fmt: skip
    assert query(postgres_server, database, constraints_sql) == constraints


def test_precipitation_job_matches_the_warehouse_view(
    postgres_server: Any, warehouse_url: str, jdbc_jar: Path, platform: dict[str, Any]
) -> None:
    database = urlsplit(warehouse_url).path.lstrip("/")
    postgres_server.psql(database, "-c", EVENTS)
    postgres_server.psql(database, "-c", WEATHER)
    columns = (
        "country, year, events, mean_precipitation_3d_mm, mean_precipitation_7d_mm, "
        "mean_precipitation_30d_mm, max_precipitation_30d_mm"
    )
    stats_sql = f"SELECT {columns} FROM precipitation_stats_country_year ORDER BY 1, 2"
    view_sql = f"SELECT {columns} FROM landslide_precipitation_country_year ORDER BY 1, 2"

    for _ in range(2):  # a re-run replaces the rows instead of adding to them
        result = run_job(warehouse_url, jdbc_jar, platform, PRECIPITATION_JOB)
        assert result.returncode == 0, result.stderr[-3000:]
        assert PASSWORD not in result.stdout + result.stderr
        assert query(postgres_server, database, stats_sql) == query(
            postgres_server, database, view_sql
        )

    assert query(postgres_server, database, stats_sql) == [
        "Nepal|2015|1|36.000|84.000|360.000|360.000",
        "Peru|2016|1|24.000|24.000|24.000|24.000",
    ]


def test_job_names_a_missing_setting(platform: dict[str, Any], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPE_WAREHOUSE")}
    env["VPE_PLATFORM_FILE"] = str(PLATFORM_FILE)
    result = subprocess.run(
        [sys.executable, str(JOB)], env=env, capture_output=True, text=True, check=False,
        cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert platform["env"]["warehouseJdbcUrl"] in result.stderr


def load_warehouse_jdbc() -> Any:
    """docker/spark/jobs/warehouse_jdbc.py as the jobs import it (their folder is not a package)."""
    spec = importlib.util.spec_from_file_location("warehouse_jdbc", JOBS / "warehouse_jdbc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_password_comes_from_the_file_its_file_variant_names(
    platform: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stack passes the password as a file (NAME_FILE), never as a value in the environment."""
    names = platform["env"]
    password = names["warehousePassword"]
    monkeypatch.setenv("VPE_PLATFORM_FILE", str(PLATFORM_FILE))
    monkeypatch.setenv(names["warehouseJdbcUrl"], "jdbc:postgresql://db:5432/w")
    monkeypatch.setenv(names["warehouseUser"], "analyst")
    monkeypatch.delenv(password, raising=False)
    secret = tmp_path / "warehouse-password"
    secret.write_text(PASSWORD + "\n")
    monkeypatch.setenv(f"{password}_FILE", str(secret))
    jdbc = load_warehouse_jdbc()

    warehouse = jdbc.warehouse_from_env()
    assert (warehouse.user, warehouse.password) == ("analyst", PASSWORD)  # one newline stripped
    assert PASSWORD not in repr(warehouse)

    monkeypatch.setenv(password, PASSWORD)
    with pytest.raises(SystemExit, match=f"both {password} and {password}_FILE"):
        jdbc.warehouse_from_env()
    monkeypatch.delenv(password)
    monkeypatch.setenv(f"{password}_FILE", str(tmp_path))  # a folder: unreadable, even by root
    with pytest.raises(SystemExit, match=f"{password}_FILE={tmp_path} .*cannot read the file"):
        jdbc.warehouse_from_env()
    monkeypatch.delenv(f"{password}_FILE")
    with pytest.raises(SystemExit, match=f"{password} .* is empty, nor is {password}_FILE set"):
        jdbc.warehouse_from_env()
