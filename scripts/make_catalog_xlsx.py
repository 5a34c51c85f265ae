"""Write the XLSX export of the landslide catalog sample (data/fixtures/landslides_sample.xlsx).

A realistic spreadsheet export of the CSV, so the XLSX extraction is tested on what a
spreadsheet application would save: sheet "landslides" holds every CSV column with the header
on row 1, dates as date cells, clock times as time cells (words such as "night" stay text),
numeric columns as numbers, empty values as empty cells; a second sheet "about" says where the
data comes from. Extracting it must give the same events buffer as the CSV (tests check that).

The output is byte-deterministic: fixed document properties and fixed ZIP member timestamps, so
regenerating it from the same CSV with the same openpyxl gives the same file.

Usage: .venv/bin/python scripts/make_catalog_xlsx.py [--source CSV] [--output XLSX]
"""

import argparse
import csv
import os
import re
import sys
import zipfile
from datetime import date, datetime, time
from pathlib import Path

from openpyxl import Workbook
from openpyxl.writer.excel import ExcelWriter

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO / "data" / "fixtures" / "landslides_sample.csv"
DEFAULT_OUTPUT = REPO / "data" / "fixtures" / "landslides_sample.xlsx"
CATALOG_SHEET = "landslides"
ABOUT_SHEET = "about"
# Columns a spreadsheet holds as numbers (the CSV writes most of them as floats, "2.0").
NUMERIC_COLUMNS = frozenset(
    {
        "id",
        "fatalities",
        "injuries",
        "cat_id",
        "distance",
        "population",
        "version",
        "changeset_id",
        "latitude",
        "longitude",
    }
)
DATE_FORMAT = "mm/dd/yyyy"
FIXED_TIME = datetime(2024, 1, 1)  # document created/modified
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # every ZIP member's timestamp
_INTEGER = re.compile(r"-?\d+")
_DECIMAL = re.compile(r"-?\d+\.\d+")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")

Value = str | int | float | date | time | None


class _FixedTimeZipFile(zipfile.ZipFile):
    """openpyxl stamps each member with the current time; pin it so the bytes are reproducible."""

    def writestr(
        self,
        zinfo_or_arcname: str | zipfile.ZipInfo,
        data: str | bytes,
        compress_type: int | None = None,
        compresslevel: int | None = None,
    ) -> None:
        if not isinstance(zinfo_or_arcname, zipfile.ZipInfo):
            zinfo_or_arcname = zipfile.ZipInfo(zinfo_or_arcname, date_time=ZIP_TIME)
            zinfo_or_arcname.external_attr = 0o600 << 16
            compress_type = self.compression if compress_type is None else compress_type
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)

    def write(
        self,
        filename: str | os.PathLike[str],
        arcname: str | os.PathLike[str] | None = None,
        compress_type: int | None = None,
        compresslevel: int | None = None,
    ) -> None:
        # openpyxl writes worksheets from temporary files, whose mtime would end up in the ZIP.
        name = os.fspath(filename if arcname is None else arcname)
        self.writestr(name, Path(filename).read_bytes(), compress_type, compresslevel)


def cell_value(column: str, text: str) -> tuple[Value, str | None]:
    """The cell value a spreadsheet holds for one CSV field, and its number format if any."""
    if text == "":
        return None, None
    if column == "date":
        try:
            return datetime.strptime(text, "%m/%d/%Y").date(), DATE_FORMAT
        except ValueError:
            return text, None
    if column == "time":
        match = _CLOCK.fullmatch(text)
        if match is None:
            return text, None
        hour, minute, second = (int(part or 0) for part in match.groups())
        try:
            return time(hour, minute, second), "h:mm:ss" if match.group(3) else "h:mm"
        except ValueError:
            return text, None
    if column in NUMERIC_COLUMNS:
        if _INTEGER.fullmatch(text):
            return int(text), None
        if _DECIMAL.fullmatch(text):
            return float(text), None
    return text, None


def build(source: Path) -> Workbook:
    with source.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = list(reader)
    workbook = Workbook()
    workbook.properties.creator = "vpe scripts/make_catalog_xlsx.py"
    workbook.properties.title = "Landslide catalog sample"
    workbook.properties.created = FIXED_TIME
    workbook.properties.modified = FIXED_TIME
    sheet = workbook.active
    assert sheet is not None
    sheet.title = CATALOG_SHEET
    sheet.append(header)
    sheet.freeze_panes = "A2"
    for row_number, row in enumerate(rows, start=2):
        for column_number, (column, text) in enumerate(zip(header, row, strict=True), start=1):
            value, number_format = cell_value(column, text)
            if value is None:
                continue
            cell = sheet.cell(row=row_number, column=column_number, value=value)
            if number_format is not None:
                cell.number_format = number_format
    about = workbook.create_sheet(ABOUT_SHEET)
    for line in (
        ("source", source.name),
        ("generated by", "scripts/make_catalog_xlsx.py"),
        ("rows", len(rows)),
        ("note", "An export of the CSV sample: dates and times as date/time cells, numbers as"),
        ("", "numbers, empty values as empty cells. Regenerate it instead of editing it."),
    ):
        about.append(line)
    return workbook


def save(workbook: Workbook, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        with _FixedTimeZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            ExcelWriter(workbook, archive).save()
        tmp.replace(output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="catalog CSV")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="XLSX to write")
    args = parser.parse_args(argv)
    save(build(args.source), args.output)
    print(f"make_catalog_xlsx: wrote {args.output} ({args.output.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
