"""The ingestion pipeline scripts on the real sample, run as the executor runs them.

Real numbers of the sample (data/fixtures/landslides_sample.csv): 956 rows, all valid; 8 rows
have a non-clock "time" ("night", "evening", ...) kept with a NULL time. The XLSX extraction of
the same catalog is tested in test_catalog_xlsx.py.
"""

import csv
import io
import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from conftest import PIPELINES, PLATFORM_FILE, REPO, child_env

from catalog import COLUMNS, parse_buffer_row
from extract_catalog import events_csv, extract

SAMPLE = REPO / "data" / "fixtures" / "landslides_sample.csv"
DAY = "2024-05-17"


def run_script(
    name: str, generated_dir: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PIPELINES / name), *args],
        env=child_env(generated_dir, **env), capture_output=True, text=True, check=False,
        timeout=300,
    )  # fmt: skip


def extract_to(
    buffer_dir: Path, generated_dir: Path, source: Path = SAMPLE, source_format: str = "csv"
) -> subprocess.CompletedProcess[str]:
    return run_script(
        "extract_catalog.py", generated_dir, "--date", DAY, "--format", source_format,
        "--source", str(source), "--buffer-dir", str(buffer_dir),
    )  # fmt: skip


def day_dir(buffer_dir: Path, source_format: str = "csv") -> Path:
    """bufferFiles.events/rejects: landslides/{date}/{format}/..."""
    return buffer_dir / "landslides" / DAY / source_format


def test_sample_has_956_good_rows_and_8_time_warnings(tmp_path: Path, generated_dir: Path) -> None:
    done = extract_to(tmp_path, generated_dir)
    assert done.returncode == 0, done.stderr
    assert "read=956 good=956 rejected=0 warnings=8" in done.stdout
    with (day_dir(tmp_path) / "events.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 956
    assert tuple(rows[0]) == COLUMNS
    assert rows[0]["event_date"] == "2007-01-02"  # MM/DD/YYYY normalised to ISO
    assert rows[0]["fatalities"] == "1"  # "1.0" in the source
    report = json.loads((day_dir(tmp_path) / "rejects.json").read_text())
    assert (report["format"], report["notes"]) == ("csv", [])
    assert (report["rows_read"], report["rows_good"], report["rows_rejected"]) == (956, 956, 0)
    assert {w["field"] for w in report["warnings"]} == {"time"}
    assert len(report["warnings"]) == 8
    assert all(set(w) == {"line", "field", "reason"} for w in report["warnings"])


def test_format_is_required_and_picks_the_default_source(
    tmp_path: Path, generated_dir: Path, platform: dict[str, Any]
) -> None:
    no_format = run_script("extract_catalog.py", generated_dir, "--date", DAY)
    assert no_format.returncode == 2
    assert "--format" in no_format.stderr
    # paths.data pointed at the fixtures: the default --source is catalogSources.<format> there.
    local = json.loads(PLATFORM_FILE.read_text())
    local["paths"]["data"] = str(SAMPLE.parent)
    platform_file = tmp_path / "platform.json"
    platform_file.write_text(json.dumps(local))
    for source_format in ("csv", "xlsx"):
        done = run_script(
            "extract_catalog.py", generated_dir, "--date", DAY, "--format", source_format,
            "--buffer-dir", str(tmp_path / "buffer"), VPE_PLATFORM_FILE=str(platform_file),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"format={source_format}" in done.stdout
        report_file = day_dir(tmp_path / "buffer", source_format) / "rejects.json"
        report = json.loads(report_file.read_text())
        name = platform["catalogSources"][source_format]
        assert report["source"] == str(SAMPLE.parent / name)
        assert report["rows_good"] == 956


def _with_bad_rows(tmp_path: Path) -> Path:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    header, first, second = lines[0], lines[1], lines[2]
    fields = next(csv.reader([header]))

    def mutate(line: str, **changes: str) -> str:
        row = next(csv.reader([line]))
        for name, value in changes.items():
            row[fields.index(name)] = value
        return _csv_line(row)

    bad = [
        mutate(first, id="900001", date="13/45/2007"),  # line 4
        mutate(first, id="900002", latitude="91", longitude="-181"),  # line 5
        mutate(first, id="900003", fatalities="2.5", injuries="-1"),  # line 6
        mutate(first, id="", date=""),  # line 7
        second,  # line 8: duplicate id 2
        mutate(first, id="900004", nearest_places="two\nlines"),  # lines 9-10, valid
        mutate(first, id="900005", latitude="north"),  # line 11
    ]
    source = tmp_path / "bad.csv"
    source.write_text("".join([header, first, second, *bad]), encoding="utf-8")
    return source


def _csv_line(row: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(row)
    return out.getvalue()


def test_bad_rows_reported_with_line_numbers_and_good_rows_kept(
    tmp_path: Path, generated_dir: Path
) -> None:
    done = extract_to(tmp_path / "buffer", generated_dir, _with_bad_rows(tmp_path))
    assert done.returncode == 0, done.stderr
    report = json.loads((day_dir(tmp_path / "buffer") / "rejects.json").read_text())
    by_line = {r["line"]: {e["field"]: e["reason"] for e in r["errors"]} for r in report["rejects"]}
    assert sorted(by_line) == [4, 5, 6, 7, 8, 11]
    assert "MM/DD/YYYY" in by_line[4]["date"]
    assert set(by_line[5]) == {"latitude", "longitude"}
    assert "between -90 and 90" in by_line[5]["latitude"]
    assert set(by_line[6]) == {"fatalities", "injuries"}
    assert by_line[7] == {"id": "required value is empty", "date": "required value is empty"}
    assert by_line[8] == {"id": "duplicate of the row on line 3"}
    assert "rejected line 8:" in done.stdout
    assert "must be a number" in by_line[11]["latitude"]
    with (day_dir(tmp_path / "buffer") / "events.csv").open(newline="") as fh:
        ids = [row["event_id"] for row in csv.DictReader(fh)]
    assert ids == ["1", "2", "900004"]
    assert (report["rows_read"], report["rows_good"], report["rows_rejected"]) == (9, 3, 6)


def test_missing_required_column_fails_clearly(tmp_path: Path, generated_dir: Path) -> None:
    source = tmp_path / "no_lat.csv"
    source.write_text("id,date,longitude\n1,01/02/2007,3\n")
    done = extract_to(tmp_path / "buffer", generated_dir, source)
    assert done.returncode == 1
    assert f"{source} lacks required column(s): latitude" in done.stderr
    assert not (tmp_path / "buffer").exists()


def test_header_only_csv_is_an_empty_catalog(tmp_path: Path, generated_dir: Path) -> None:
    source = tmp_path / "empty.csv"
    source.write_text(SAMPLE.read_text().splitlines(keepends=True)[0])
    done = extract_to(tmp_path / "buffer", generated_dir, source)
    assert done.returncode == 0, done.stderr
    assert "read=0 good=0" in done.stdout
    assert "no data rows" in done.stderr
    report = json.loads((day_dir(tmp_path / "buffer") / "rejects.json").read_text())
    assert report["notes"] == [f"{source} has a header but no data rows: the catalog is empty"]
    events = (day_dir(tmp_path / "buffer") / "events.csv").read_text()
    assert events == ",".join(COLUMNS) + "\n"


def test_outputs_replace_atomically(tmp_path: Path, generated_dir: Path) -> None:
    """A reader holding the old events.csv keeps a complete file; no temp files remain."""
    assert extract_to(tmp_path, generated_dir).returncode == 0
    target = day_dir(tmp_path) / "events.csv"
    before_inode = target.stat().st_ino
    with target.open(newline="") as held:
        smaller = tmp_path / "small.csv"
        smaller.write_text("".join(SAMPLE.read_text().splitlines(keepends=True)[:3]))
        assert extract_to(tmp_path, generated_dir, smaller).returncode == 0
        assert len(list(csv.DictReader(held))) == 956  # old content intact for its reader
    assert target.stat().st_ino != before_inode  # replaced by rename, never rewritten in place
    assert len(list(csv.DictReader(target.open(newline="")))) == 2
    assert sorted(p.name for p in day_dir(tmp_path).iterdir()) == ["events.csv", "rejects.json"]


def test_events_csv_round_trips(tmp_path: Path) -> None:
    extraction = extract(SAMPLE, "csv")
    rows = list(csv.DictReader(events_csv(extraction.events).splitlines()))
    assert [parse_buffer_row(row) for row in rows] == extraction.events


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])


def _import(
    buffer_dir: Path, generated_dir: Path, url: str, platform: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    env = {platform["env"]["warehouseUrl"]: url}
    return run_script(
        "import_events.py", generated_dir, "--date", DAY, "--format", "csv",
        "--buffer-dir", str(buffer_dir), **env,
    )  # fmt: skip


def test_import_is_idempotent(
    tmp_path: Path, generated_dir: Path, warehouse_url: str, platform: dict[str, Any]
) -> None:
    assert extract_to(tmp_path, generated_dir).returncode == 0
    first = _import(tmp_path, generated_dir, warehouse_url, platform)
    assert first.returncode == 0, first.stderr
    assert "read=956 inserted=956 skipped=0" in first.stdout
    assert warehouse_url not in first.stdout + first.stderr
    second = _import(tmp_path, generated_dir, warehouse_url, platform)
    assert second.returncode == 0, second.stderr
    assert "read=956 inserted=0 skipped=956" in second.stdout
    assert _count(warehouse_url, "event") == 956
    assert _count(warehouse_url, "landslide_event") == 956  # trigger saw each row exactly once
    with psycopg.connect(warehouse_url) as conn:
        row = conn.execute(
            "SELECT event_date, latitude, fatalities FROM event WHERE event_id = 1"
        ).fetchone()
    assert row is not None
    assert (row[0], str(row[1]), row[2]) == (date(2007, 1, 2), "54.5494", 1)


def test_import_of_overlapping_day_adds_only_new_rows(
    tmp_path: Path, generated_dir: Path, warehouse_url: str, platform: dict[str, Any]
) -> None:
    small = tmp_path / "small.csv"
    small.write_text("".join(SAMPLE.read_text().splitlines(keepends=True)[:11]))  # 10 rows
    assert extract_to(tmp_path, generated_dir, small).returncode == 0
    assert "inserted=10" in _import(tmp_path, generated_dir, warehouse_url, platform).stdout
    assert extract_to(tmp_path, generated_dir).returncode == 0
    assert (
        "read=956 inserted=946 skipped=10"
        in _import(tmp_path, generated_dir, warehouse_url, platform).stdout
    )


def test_import_fails_atomically(
    tmp_path: Path, generated_dir: Path, warehouse_url: str, platform: dict[str, Any]
) -> None:
    """A row the database rejects rolls back the whole day: nothing half-imported."""
    assert extract_to(tmp_path, generated_dir).returncode == 0
    events = day_dir(tmp_path) / "events.csv"
    lines = events.read_text().splitlines(keepends=True)
    broken = lines[-1].split(",")
    broken[0] = "9" * 30  # beyond BIGINT
    events.write_text("".join([*lines[:-1], ",".join(broken)]))
    done = _import(tmp_path, generated_dir, warehouse_url, platform)
    assert done.returncode == 1
    assert "import_events:" in done.stderr
    assert _count(warehouse_url, "event") == 0


def test_import_needs_url_and_file(
    tmp_path: Path, generated_dir: Path, platform: dict[str, Any]
) -> None:
    name = platform["env"]["warehouseUrl"]
    no_url = run_script("import_events.py", generated_dir, "--date", DAY, "--format", "csv")
    assert no_url.returncode == 1
    assert f"environment variable {name} is not set" in no_url.stderr
    no_file = _import(tmp_path, generated_dir, "postgresql://nobody@127.0.0.1:1/x", platform)
    assert no_file.returncode == 1
    assert "does not exist; run extract_catalog" in no_file.stderr
    no_format = run_script("import_events.py", generated_dir, "--date", DAY)
    assert no_format.returncode == 2
    assert "the following arguments are required: --format" in no_format.stderr


def test_import_reads_the_url_from_the_file_its_file_variable_names(
    tmp_path: Path, generated_dir: Path, warehouse_url: str, platform: dict[str, Any]
) -> None:
    """The stack passes the URL as a file (NAME_FILE), never as a value in the environment."""
    name = platform["env"]["warehouseUrl"]
    secret = tmp_path / "warehouse-url"
    secret.write_text(warehouse_url + "\n")  # one trailing newline, as an editor leaves it
    assert extract_to(tmp_path / "buffer", generated_dir).returncode == 0
    args = ("--date", DAY, "--format", "csv", "--buffer-dir", str(tmp_path / "buffer"))
    done = run_script("import_events.py", generated_dir, *args, **{f"{name}_FILE": str(secret)})
    assert done.returncode == 0, done.stderr
    assert "read=956 inserted=956 skipped=0" in done.stdout
    assert warehouse_url not in done.stdout + done.stderr


def test_import_refuses_a_bad_url_file_naming_the_variable_never_the_url(
    tmp_path: Path, generated_dir: Path, warehouse_url: str, platform: dict[str, Any]
) -> None:
    name = platform["env"]["warehouseUrl"]
    file_variable = f"{name}_FILE"
    secret, empty, missing = tmp_path / "warehouse-url", tmp_path / "empty", tmp_path / "nope"
    secret.write_text(warehouse_url)
    empty.write_text("\n")
    cases: list[tuple[dict[str, str], str]] = [
        # Both: which one is meant is unclear, so neither is used.
        ({name: warehouse_url, file_variable: str(secret)}, f"both {name} and {file_variable}"),
        # A folder cannot be read as a file, even by root (the tests may run as root).
        ({file_variable: str(tmp_path)}, f"{file_variable}={tmp_path}: cannot read the file"),
        ({file_variable: str(missing)}, f"{file_variable}={missing}: cannot read the file"),
        ({file_variable: str(empty)}, f"{file_variable}={empty}: the file is empty"),
    ]
    args = ("--date", DAY, "--format", "csv")
    for env, message in cases:
        done = run_script("import_events.py", generated_dir, *args, **env)
        assert done.returncode == 1, message
        assert f"import_events: {message}" in done.stderr
        assert warehouse_url not in done.stdout + done.stderr
    assert _count(warehouse_url, "event") == 0
