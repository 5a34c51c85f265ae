"""import_weather.py as the executor runs it, against a real PostgreSQL warehouse: the buffer
CSV of fetch_weather into `data`, the star rows derived by migration 0005, idempotently."""

from pathlib import Path

import psycopg
from test_pipeline import run_script

from weather import DATA_COLUMNS

DAY = "2024-05-17"
# Two points, 24 hours each; one hour of the second point has no soil readings.
HOURS = [f"2024-05-01 {h:02d}:00" for h in range(24)]


def weather_csv(buffer_dir: Path, rows: list[list[str]], header: tuple[str, ...] = DATA_COLUMNS):
    path = buffer_dir / "weather" / DAY / "hourly.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(",".join(r) for r in [list(header), *rows]) + "\n")
    return path


def observation(lat: str, lon: str, at: str, soil: bool = True) -> list[str]:
    bands = ["14.5", "0.31"] * 4 if soil else ["", ""] * 4
    return [lat, lon, "812", "Asia/Kathmandu", at, "17.2", "0.4", "0.3", "81", *bands]


def counts(url: str) -> dict[str, int]:
    tables = ("data", "weather_data", "soil", "datetime", "location")
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # type: ignore[index]


def test_loads_the_star_rows_once(tmp_path: Path, generated_dir: Path, warehouse_url: str) -> None:
    rows = [observation("27.7172", "85.324", at) for at in HOURS]
    rows += [observation("-12.04", "-77.03", at, soil=at != HOURS[5]) for at in HOURS]
    weather_csv(tmp_path, rows)
    env = {"VPE_WAREHOUSE_URL": warehouse_url}
    args = ("--date", DAY, "--buffer-dir", str(tmp_path))

    first = run_script("import_weather.py", generated_dir, *args, **env)
    assert first.returncode == 0, first.stderr
    assert "import_weather: read=48 inserted=48 skipped=0 " in first.stdout
    assert warehouse_url not in first.stdout + first.stderr
    assert counts(warehouse_url) == {
        "data": 48, "weather_data": 48, "soil": 192, "datetime": 48, "location": 2,
    }  # fmt: skip
    with psycopg.connect(warehouse_url) as conn:
        empty_bands = conn.execute(
            "SELECT count(*) FROM soil WHERE temperature IS NULL AND moisture IS NULL"
        ).fetchone()
        elevation = conn.execute("SELECT DISTINCT elevation::text FROM location").fetchall()
    assert empty_bands == (4,)
    assert elevation == [("812",)]

    again = run_script("import_weather.py", generated_dir, *args, **env)
    assert again.returncode == 0, again.stderr
    assert "import_weather: read=48 inserted=0 skipped=48 " in again.stdout
    assert counts(warehouse_url)["soil"] == 192


def test_refuses_a_foreign_header_and_a_missing_file(
    tmp_path: Path, generated_dir: Path, warehouse_url: str
) -> None:
    env = {"VPE_WAREHOUSE_URL": warehouse_url}
    args = ("--date", DAY, "--buffer-dir", str(tmp_path))
    missing = run_script("import_weather.py", generated_dir, *args, **env)
    assert missing.returncode == 1
    assert "does not exist; run fetch_weather first" in missing.stderr

    weather_csv(tmp_path, [], header=("latitude", "longitude", "temperature"))
    foreign = run_script("import_weather.py", generated_dir, *args, **env)
    assert foreign.returncode == 1
    assert "header ['latitude', 'longitude', 'temperature'] is not" in foreign.stderr


def test_names_the_line_of_a_bad_value_and_loads_nothing(
    tmp_path: Path, generated_dir: Path, warehouse_url: str
) -> None:
    rows = [observation("27.7172", "85.324", at) for at in HOURS[:3]]
    rows[2][5] = "warm"  # temperature
    weather_csv(tmp_path, rows)
    done = run_script(
        "import_weather.py", generated_dir, "--date", DAY, "--buffer-dir", str(tmp_path),
        VPE_WAREHOUSE_URL=warehouse_url,
    )  # fmt: skip
    assert done.returncode == 1
    assert 'invalid input syntax for type numeric: "warm"' in done.stderr
    assert "line 4" in done.stderr
    assert counts(warehouse_url)["data"] == 0


def test_reads_the_url_from_its_file_and_refuses_a_bad_one(
    tmp_path: Path, generated_dir: Path, warehouse_url: str
) -> None:
    """The stack passes the URL as a file (VPE_WAREHOUSE_URL_FILE), never as a value."""
    weather_csv(tmp_path, [observation("27.7172", "85.324", at) for at in HOURS[:2]])
    secret = tmp_path / "warehouse-url"
    secret.write_text(warehouse_url + "\n")
    args = ("--date", DAY, "--buffer-dir", str(tmp_path))

    done = run_script("import_weather.py", generated_dir, *args, VPE_WAREHOUSE_URL_FILE=str(secret))
    assert done.returncode == 0, done.stderr
    assert "import_weather: read=2 inserted=2 skipped=0 " in done.stdout
    assert warehouse_url not in done.stdout + done.stderr

    both = run_script(
        "import_weather.py", generated_dir, *args,
        VPE_WAREHOUSE_URL=warehouse_url, VPE_WAREHOUSE_URL_FILE=str(secret),
    )  # fmt: skip
    assert both.returncode == 1
    assert "both VPE_WAREHOUSE_URL and VPE_WAREHOUSE_URL_FILE are set" in both.stderr
    unreadable = run_script(
        "import_weather.py", generated_dir, *args, VPE_WAREHOUSE_URL_FILE=str(tmp_path)
    )
    assert unreadable.returncode == 1
    assert f"VPE_WAREHOUSE_URL_FILE={tmp_path}: cannot read the file" in unreadable.stderr
    assert warehouse_url not in both.stdout + both.stderr + unreadable.stdout + unreadable.stderr
    assert counts(warehouse_url)["data"] == 2
