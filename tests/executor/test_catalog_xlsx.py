"""The XLSX extraction of the landslide catalog: workbook shapes, cell types, and CSV equality.

Small workbooks are built with openpyxl for each shape; the committed sample workbook
(data/fixtures/landslides_sample.xlsx, from scripts/make_catalog_xlsx.py) must give exactly the
events buffer the CSV sample gives.
"""

import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO
from openpyxl import Workbook, load_workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.utils.datetime import CALENDAR_MAC_1904
from test_pipeline import SAMPLE, day_dir, extract_to

from catalog import parse_source_row
from catalog_xlsx import READ_COLUMNS
from extract_catalog import Extraction, SourceError, extract

SAMPLE_XLSX = REPO / "data" / "fixtures" / "landslides_sample.xlsx"
MAKE_XLSX = REPO / "scripts" / "make_catalog_xlsx.py"
HEADER = ["id", "date", "time", "country", "latitude", "longitude", "fatalities"]
GOOD = [1, datetime(2007, 1, 2), None, "Peru", -10.3838, -75.42669999999998, 2]


def save(
    path: Path, sheets: dict[str, Sequence[Sequence[object]]], merges: Sequence[str] = ()
) -> Path:
    """A workbook with one sheet per entry (rows from row 1); merges apply to the first sheet."""
    workbook = Workbook()
    first = workbook.active
    assert first is not None
    workbook.remove(first)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(list(row))
    for merge in merges:
        workbook.worksheets[0].merge_cells(merge)
    workbook.save(path)
    return path


def catalog(path: Path, *rows: Sequence[object], header: Sequence[str] = HEADER) -> Path:
    return save(path, {"landslides": [header, *rows]})


def xlsx(path: Path) -> Extraction:
    return extract(path, "xlsx")


def ids(extraction: Extraction) -> list[int]:
    return [event.event_id for event in extraction.events]


def errors_by_row(extraction: Extraction) -> dict[int, dict[str, str]]:
    return {r["row"]: {e["field"]: e["reason"] for e in r["errors"]} for r in extraction.rejects}


def run_xlsx(tmp_path: Path, generated_dir: Path, source: Path) -> subprocess.CompletedProcess[str]:
    return extract_to(tmp_path / "buffer", generated_dir, source, "xlsx")


def xlsx_report(tmp_path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(
        (day_dir(tmp_path / "buffer", "xlsx") / "rejects.json").read_text()
    )
    return report


# --- the sample workbook ---------------------------------------------------------------------


def test_sample_workbook_gives_the_csv_events_buffer(tmp_path: Path, generated_dir: Path) -> None:
    from_csv = extract_to(tmp_path / "buffer", generated_dir)
    from_xlsx = run_xlsx(tmp_path, generated_dir, SAMPLE_XLSX)
    assert from_csv.returncode == 0, from_csv.stderr
    assert from_xlsx.returncode == 0, from_xlsx.stderr
    assert "sheet='landslides' read=956 good=956 rejected=0 warnings=8" in from_xlsx.stdout
    csv_events = (day_dir(tmp_path / "buffer", "csv") / "events.csv").read_bytes()
    xlsx_events = (day_dir(tmp_path / "buffer", "xlsx") / "events.csv").read_bytes()
    assert xlsx_events == csv_events
    csv_report = json.loads((day_dir(tmp_path / "buffer", "csv") / "rejects.json").read_text())
    report = xlsx_report(tmp_path)
    assert report["format"] == "xlsx"
    assert (report["sheet"], report["header_row"], report["blank_rows"]) == ("landslides", 1, 0)
    assert [s["sheet"] for s in report["ignored_sheets"]] == ["about"]
    assert (report["rows_read"], report["rows_good"], report["rows_rejected"]) == (956, 956, 0)
    assert report["notes"] == []

    # The same warnings; the sample has no multi-line record, so sheet rows equal CSV lines.
    def where(warnings: list[dict[str, Any]], key: str) -> list[tuple[Any, str, str]]:
        return [(w[key], w["field"], w["reason"]) for w in warnings]

    assert where(report["warnings"], "row") == where(csv_report["warnings"], "line")
    assert {w["sheet"] for w in report["warnings"]} == {"landslides"}


def test_sample_workbook_is_a_realistic_export() -> None:
    workbook = load_workbook(SAMPLE_XLSX, read_only=True, data_only=True)
    try:
        assert workbook.sheetnames == ["landslides", "about"]
        rows = list(workbook["landslides"].iter_rows(max_row=3, values_only=True))
    finally:
        workbook.close()
    header = dict(zip(rows[0], rows[1], strict=True))
    assert list(header) == SAMPLE.read_text().splitlines()[0].split(",")
    assert header["id"] == 1
    assert header["date"] == datetime(2007, 1, 2)  # a date cell, not text
    assert header["time"] is None  # an empty value is an empty cell
    assert header["latitude"] == 54.5494
    assert header["fatalities"] == 1
    assert header["tstamp"] == "Tue Apr 01 2014 00:00:00 GMT+0000 (UTC)"  # text stays text


def _cell_values(path: Path) -> dict[str, list[tuple[object, ...]]]:
    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        return {
            name: list(workbook[name].iter_rows(values_only=True)) for name in workbook.sheetnames
        }
    finally:
        workbook.close()


def _make_xlsx(output: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(MAKE_XLSX), "--output", str(output)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_committed_sample_workbook_matches_its_generator(tmp_path: Path) -> None:
    """The committed workbook cannot drift from the CSV: regenerating gives the same cells."""
    _make_xlsx(tmp_path / "first.xlsx")
    assert _cell_values(tmp_path / "first.xlsx") == _cell_values(SAMPLE_XLSX)


def test_generator_output_is_byte_deterministic(tmp_path: Path) -> None:
    _make_xlsx(tmp_path / "first.xlsx")
    _make_xlsx(tmp_path / "second.xlsx")
    assert (tmp_path / "first.xlsx").read_bytes() == (tmp_path / "second.xlsx").read_bytes()
    with zipfile.ZipFile(tmp_path / "first.xlsx") as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        core = archive.read("docProps/core.xml").decode()
    assert core.count("2024-01-01T00:00:00Z") == 2  # created and modified


# --- sheets ----------------------------------------------------------------------------------


def test_catalog_is_the_first_sheet_with_the_required_columns(tmp_path: Path) -> None:
    workbook = Workbook()
    readme = workbook.active
    assert readme is not None
    readme.title = "readme"
    readme.append(["Landslide export"])
    readme.append(["id", "date"])  # some catalog names, not all
    chart = workbook.create_chartsheet("chart")
    bars = BarChart()
    bars.add_data(Reference(readme, min_col=1, min_row=1, max_row=2))
    chart.add_chart(bars)
    workbook.create_sheet("blank")
    for name, first_id in (("landslides", 1), ("landslides_old", 7)):
        sheet = workbook.create_sheet(name)
        sheet.append(HEADER)
        sheet.append([first_id, *GOOD[1:]])
    workbook.save(tmp_path / "book.xlsx")

    extraction = xlsx(tmp_path / "book.xlsx")
    assert ids(extraction) == [1]
    assert extraction.details["sheet"] == "landslides"
    reasons = {s["sheet"]: s["reason"] for s in extraction.details["ignored_sheets"]}
    assert list(reasons) == ["readme", "chart", "blank", "landslides_old"]
    assert "(closest: row 2, which lacks latitude, longitude)" in reasons["readme"]
    assert reasons["chart"] == "is a chart sheet, not a worksheet"
    assert reasons["blank"] == "is empty"
    assert "also has a catalog header (row 1)" in reasons["landslides_old"]
    assert any("landslides_old" in note for note in extraction.notes)


def test_no_catalog_sheet_fails_naming_each_sheet(tmp_path: Path, generated_dir: Path) -> None:
    source = save(
        tmp_path / "book.xlsx",
        {"empty": [], "partial": [["id", "date", "longitude"], [1, "01/02/2007", 3]]},
    )
    done = run_xlsx(tmp_path, generated_dir, source)
    assert done.returncode == 1
    assert str(source) in done.stderr
    assert "no sheet holds the catalog" in done.stderr
    assert "sheet 'empty' is empty" in done.stderr
    assert "sheet 'partial' has no header row naming id, date, latitude, longitude" in done.stderr
    assert "(closest: row 1, which lacks latitude)" in done.stderr
    assert not (tmp_path / "buffer").exists()


def test_header_row_beyond_the_search_rows_is_not_found(tmp_path: Path) -> None:
    notes = [[f"note {n}"] for n in range(1, 11)]
    source = save(tmp_path / "book.xlsx", {"landslides": [*notes, HEADER, GOOD]})  # header: 11
    with pytest.raises(SourceError, match=r"has no header row naming .* within rows 1-10"):
        xlsx(source)


def test_unreadable_workbooks_fail_clearly(tmp_path: Path, generated_dir: Path) -> None:
    garbage = tmp_path / "garbage.xlsx"
    garbage.write_text("id,date\n")
    done = run_xlsx(tmp_path, generated_dir, garbage)
    assert done.returncode == 1
    assert f"cannot read {garbage} as an XLSX workbook" in done.stderr
    missing = run_xlsx(tmp_path, generated_dir, tmp_path / "missing.xlsx")
    assert missing.returncode == 1
    assert "missing.xlsx as an XLSX workbook" in missing.stderr


# --- header shapes ---------------------------------------------------------------------------


def test_title_rows_above_the_header(tmp_path: Path) -> None:
    source = save(
        tmp_path / "book.xlsx",
        {"landslides": [["Landslide catalog export"], [], HEADER, GOOD, [2, "bad", *GOOD[2:]]]},
        merges=["A1:G1"],
    )
    extraction = xlsx(source)
    assert extraction.details["header_row"] == 3
    assert ids(extraction) == [1]
    assert list(errors_by_row(extraction)) == [5]
    assert "sheet 'landslides': rows 1-2 above the header are ignored" in extraction.notes


def test_merged_group_titles_above_the_header(tmp_path: Path) -> None:
    groups = ["Event", None, None, "Place", "Location", None, "Impact"]
    source = save(
        tmp_path / "book.xlsx", {"landslides": [groups, HEADER, GOOD]}, merges=["A1:C1", "E1:F1"]
    )
    extraction = xlsx(source)
    assert extraction.details["header_row"] == 2
    assert ids(extraction) == [1]
    assert extraction.events[0].longitude == Decimal("-75.42669999999998")


def test_two_row_header_with_vertically_merged_names(tmp_path: Path) -> None:
    """id, date, time, country span rows 1-2; the coordinates have a group title over them."""
    top = ["id", "date", "time", "country", "coordinates", None, "fatalities"]
    sub = [None, None, None, None, "latitude", "longitude", None]
    source = save(
        tmp_path / "book.xlsx",
        {"landslides": [top, sub, GOOD, [2, "13/45/2007", *GOOD[2:]]]},
        merges=["A1:A2", "B1:B2", "C1:C2", "D1:D2", "E1:F1", "G1:G2"],
    )
    extraction = xlsx(source)
    assert extraction.details["header_row"] == 2
    assert ids(extraction) == [1]
    assert extraction.events[0].fatalities == 2
    assert list(errors_by_row(extraction)) == [4]


def test_header_merged_down_over_a_units_row(tmp_path: Path) -> None:
    """The header names are on row 1; merges down to row 2 make row 2 (units) part of it."""
    units = [None, None, None, None, "degrees", "degrees", "people"]
    source = save(
        tmp_path / "book.xlsx",
        {"landslides": [HEADER, units, GOOD]},
        merges=["A1:A2", "B1:B2", "C1:C2", "D1:D2"],
    )
    extraction = xlsx(source)
    assert (extraction.details["header_row"], extraction.rejects) == (1, [])
    assert ids(extraction) == [1]
    assert extraction.events[0].country == "Peru"
    assert any("rows 1-2 the header; data starts on row 3" in n for n in extraction.notes)


def test_merged_header_cell_names_the_one_column_holding_data(tmp_path: Path) -> None:
    header = [*HEADER[:3], "country", None, *HEADER[4:]]  # "country" merged over D1:E1
    row = [*GOOD[:3], None, "Peru", *GOOD[4:]]  # the data sits in E, not under the name
    source = save(tmp_path / "book.xlsx", {"landslides": [header, row]}, merges=["D1:E1"])
    extraction = xlsx(source)
    assert extraction.rejects == []
    assert extraction.events[0].country == "Peru"


def test_ambiguous_merged_header_cell_is_rejected(tmp_path: Path, generated_dir: Path) -> None:
    header = ["id", "date", "latitude", None, "longitude"]  # "latitude" merged over C1:D1
    source = save(
        tmp_path / "book.xlsx",
        {"landslides": [header, [1, "01/02/2007", 10.5, 11.5, 20.25]]},
        merges=["C1:D1"],
    )
    done = run_xlsx(tmp_path, generated_dir, source)
    assert done.returncode == 1
    assert f"{source}: sheet 'landslides': header cell C1:D1 is merged over columns C, D" in (
        done.stderr
    )
    assert "which column is 'latitude' is ambiguous" in done.stderr


def test_ambiguous_merge_over_a_column_not_read_is_only_noted(tmp_path: Path) -> None:
    header = [*HEADER, "source_name", None]
    source = save(
        tmp_path / "book.xlsx",
        {"landslides": [header, [*GOOD, "The Times", "http://example.org"]]},
        merges=["H1:I1"],
    )
    extraction = xlsx(source)
    assert ids(extraction) == [1]
    assert any("'source_name' is ambiguous" in note for note in extraction.notes)


def test_merged_data_cells_count_once_and_are_noted(tmp_path: Path) -> None:
    """A date merged over rows 2-3 belongs to row 2; row 3 has no date and is rejected."""
    source = save(
        tmp_path / "book.xlsx",
        {"landslides": [HEADER, GOOD, [2, None, *GOOD[2:]]]},
        merges=["B2:B3"],
    )
    extraction = xlsx(source)
    assert ids(extraction) == [1]
    assert errors_by_row(extraction) == {3: {"date": "required value is empty"}}
    assert any("merged cells in the data (B2:B3)" in note for note in extraction.notes)


def test_repeated_and_missing_header_names(tmp_path: Path, generated_dir: Path) -> None:
    twice = save(tmp_path / "twice.xlsx", {"landslides": [[*HEADER, "date"], [*GOOD, "x"]]})
    done = run_xlsx(tmp_path, generated_dir, twice)
    assert done.returncode == 1
    assert "column 'date' is named twice in the header (B1 and H1)" in done.stderr

    nameless = save(tmp_path / "nameless.xlsx", {"landslides": [HEADER, [*GOOD, "stray"]]})
    extraction = xlsx(nameless)
    assert ids(extraction) == [1]
    assert extraction.notes == [
        "sheet 'landslides': column H holds data but has no name in header row 1; ignored"
    ]


def test_header_names_are_stripped(tmp_path: Path) -> None:
    source = catalog(tmp_path / "book.xlsx", GOOD, header=[f" {name} " for name in HEADER])
    assert ids(xlsx(source)) == [1]


# --- cell types ------------------------------------------------------------------------------


def test_dates_as_cells_serials_and_text(tmp_path: Path) -> None:
    rows = [
        [1, datetime(2007, 1, 2)],  # a date cell
        [2, datetime(2007, 1, 3, 18, 30)],  # with a time of day: the date counts
        [3, 39086],  # a serial number in a General-format cell: 2007-01-04
        [4, 39087.75],  # a serial with a fraction: 2007-01-05
        [5, "01/08/2007"],  # text as in the CSV
        [6, "2007-01-09"],  # ISO text
        [7, " 2007-01-10 "],
        [8, "2007-02-30"],  # ISO-shaped, impossible
        [9, "9th of January"],
        [10, 0.5],  # a time of day is not a date
        [11, True],
    ]
    source = catalog(
        tmp_path / "book.xlsx",
        *([n, when, None, "Peru", 1.5, 2.5] for n, when in rows),
        header=HEADER[:6],
    )
    extraction = xlsx(source)
    assert [e.event_date for e in extraction.events] == [
        date(2007, 1, 2),
        date(2007, 1, 3),
        date(2007, 1, 4),
        date(2007, 1, 5),
        date(2007, 1, 8),
        date(2007, 1, 9),
        date(2007, 1, 10),
    ]
    errors = errors_by_row(extraction)
    assert list(errors) == [9, 10, 11, 12]
    assert errors[9]["date"] == "must be a valid MM/DD/YYYY date, got '2007-02-30'"
    assert errors[11]["date"] == "must be a valid MM/DD/YYYY date, got '0.5'"
    assert errors[12]["date"] == "must be a valid MM/DD/YYYY date, got 'TRUE'"


def test_serial_dates_follow_the_workbook_epoch(tmp_path: Path) -> None:
    workbook = Workbook()
    workbook.epoch = CALENDAR_MAC_1904
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER[:6])
    sheet.append([1, 37622, None, None, 1.5, 2.5])  # 1904 serial of 2007-01-02
    sheet.append([2, datetime(2007, 1, 3), None, None, 1.5, 2.5])
    workbook.save(tmp_path / "mac.xlsx")
    extraction = xlsx(tmp_path / "mac.xlsx")
    assert [e.event_date for e in extraction.events] == [date(2007, 1, 2), date(2007, 1, 3)]


def test_times_as_cells_fractions_and_text(tmp_path: Path) -> None:
    times: list[object] = [
        time(3, 30),
        time(22, 24, 10),
        "17:15",
        0.5,  # a fraction of a day, noon
        datetime(2007, 1, 2, 6, 45),
        "night",  # kept, time NULL, warned
        "25:00",  # clock-shaped, impossible: rejected
    ]
    source = catalog(
        tmp_path / "book.xlsx",
        *([n, "01/02/2007", t, None, 1.5, 2.5] for n, t in enumerate(times, 1)),
    )
    extraction = xlsx(source)
    assert [e.event_time for e in extraction.events] == [
        time(3, 30),
        time(22, 24, 10),
        time(17, 15),
        time(12, 0),
        time(6, 45),
        None,
    ]
    assert extraction.warnings == [
        {
            "sheet": "landslides",
            "row": 7,
            "field": "time",
            "reason": "'night' is not a clock time; stored as NULL",
        }
    ]
    assert list(errors_by_row(extraction)) == [8]


def test_numbers_keep_their_meaning(tmp_path: Path) -> None:
    source = catalog(
        tmp_path / "book.xlsx",
        [12.0, "01/02/2007", None, 42, 54.5494, 73, 2.0],  # id 12.0 is 12; a number as country
        [13, "01/02/2007", None, None, 38.0, -3.5875, None],
        [14.5, "01/02/2007", None, None, 1.5, 2.5, None],
        [15, "01/02/2007", None, None, 1.5, 2.5, 2.5],
        [16, "01/02/2007", None, None, "north", 2.5, None],
        ["17", "01/02/2007", None, None, "1.25", "2.50", "3.0"],  # numbers stored as text
    )
    extraction = xlsx(source)
    assert ids(extraction) == [12, 13, 17]
    first, second, text = extraction.events
    assert (first.country, first.latitude, first.fatalities) == ("42", Decimal("54.5494"), 2)
    # A workbook cannot tell 73 from 73.0: coordinates come back as the CSV writes them.
    assert (str(first.longitude), str(second.latitude)) == ("73.0", "38.0")
    assert (str(text.latitude), str(text.longitude), text.fatalities) == ("1.25", "2.50", 3)
    errors = errors_by_row(extraction)
    assert errors[4] == {"id": "must be a positive integer, got '14.5'"}
    assert errors[5] == {"fatalities": "must be a non-negative whole number, got '2.5'"}
    assert errors[6] == {"latitude": "must be a number, got 'north'"}
    assert [r["id"] for r in extraction.rejects] == ["14.5", "15", "16"]


# --- rows ------------------------------------------------------------------------------------


def test_bad_rows_reported_by_sheet_row_and_blank_rows_skipped(
    tmp_path: Path, generated_dir: Path
) -> None:
    source = catalog(
        tmp_path / "book.xlsx",
        GOOD,  # row 2
        [],  # row 3: blank
        [2, "13/45/2007", *GOOD[2:]],  # row 4
        [None, "   ", None, None, None, None, None],  # row 5: blanks only
        [3, *GOOD[1:4], 91, -181, *GOOD[6:]],  # row 6
        [1, *GOOD[1:]],  # row 7: duplicate id 1
        [4, *GOOD[1:]],  # row 8
        [None, None, None, "Peru"],  # row 9: not blank, no id
        [],  # rows 10-11: trailing blank rows
        [],
    )
    done = run_xlsx(tmp_path, generated_dir, source)
    assert done.returncode == 0, done.stderr
    assert "read=6 good=2 rejected=4" in done.stdout
    assert "rejected sheet 'landslides' row 4:" in done.stdout
    report = xlsx_report(tmp_path)
    assert report["blank_rows"] == 2
    by_row = {r["row"]: {e["field"]: e["reason"] for e in r["errors"]} for r in report["rejects"]}
    assert sorted(by_row) == [4, 6, 7, 9]
    assert all(r["sheet"] == "landslides" for r in report["rejects"])
    assert "MM/DD/YYYY" in by_row[4]["date"]
    assert set(by_row[6]) == {"latitude", "longitude"}
    assert by_row[7] == {"id": "duplicate of the row on sheet 'landslides' row 2"}
    assert by_row[9]["id"] == "required value is empty"
    events = (day_dir(tmp_path / "buffer", "xlsx") / "events.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in events[1:]] == ["1", "4"]


def test_header_only_catalog_is_empty_not_an_error(tmp_path: Path, generated_dir: Path) -> None:
    source = catalog(tmp_path / "book.xlsx", [], [])
    done = run_xlsx(tmp_path, generated_dir, source)
    assert done.returncode == 0, done.stderr
    assert "read=0 good=0 rejected=0" in done.stdout
    note = "sheet 'landslides' has a header (row 1) but no data rows: the catalog is empty"
    assert note in done.stderr
    report = xlsx_report(tmp_path)
    assert (report["rows_read"], report["notes"]) == (0, [note])
    events = (day_dir(tmp_path / "buffer", "xlsx") / "events.csv").read_text()
    assert events.count("\n") == 1  # the buffer header only


def test_read_columns_are_what_parse_source_row_reads() -> None:
    class Recording(dict[str, str | None]):
        def __init__(self) -> None:
            super().__init__()
            self.asked: set[str] = set()

        def get(self, key: str, default: Any = None) -> Any:
            self.asked.add(key)
            return super().get(key, default)

        def __iter__(self) -> Iterator[str]:
            raise AssertionError("parse_source_row should only ask for named columns")

    row = Recording()
    with pytest.raises(ValueError):
        parse_source_row(row)
    assert row.asked == READ_COLUMNS
