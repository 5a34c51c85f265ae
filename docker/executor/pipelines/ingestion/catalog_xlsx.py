"""Read the landslide catalog from an XLSX workbook as the rows `catalog.parse_source_row` takes.

This module finds the catalog sheet and its header and turns cells into the text the CSV export
holds; validation stays in catalog.py, shared with the CSV extraction. Rows are numbered as the
spreadsheet numbers them (1-based sheet rows). The workbook is read with openpyxl in read-only
(streaming) mode with data_only=True: a formula reads as its cached value, so a formula that no
spreadsheet application ever calculated reads as an empty cell.

Workbook shapes and what happens to them:
- Sheets: the catalog is the first worksheet whose header names every REQUIRED_SOURCE_COLUMNS
  column. Every other sheet (chart sheets too) is ignored and listed with the reason; a later
  sheet that also has a catalog header is ignored as well, with a note (one catalog per workbook).
  No such sheet: WorkbookError naming each sheet and what it lacks.
- Header: the first of rows 1..HEADER_SEARCH_ROWS that names all required columns; rows above it
  (a title, merged group titles) are skipped. Names are stripped of surrounding blanks and
  otherwise matched exactly, as the CSV header is.
- Merged header cells (openpyxl's read-only mode does not report merges, so they are read from
  the sheet XML): a header cell hidden by a merge one column wide takes the merged cell's text
  (a two-row header whose single columns are merged vertically). A merge reaching below the
  header row makes those rows part of the header; data starts after them. A merge spanning
  several columns names exactly one of them: the only one holding data, or its first column when
  none does. When several of them hold data the name is ambiguous: WorkbookError naming the sheet
  and the merged cell if the catalog reads that column, else a note and the columns are ignored.
- Merged cells below the header are not filled in: a merge's value belongs to its top-left cell,
  the cells it covers read as empty (a required column then rejects the row); a note lists them.
- A column without a name is ignored (with a note when it holds data). A column the catalog reads
  named twice is a WorkbookError naming both cells; other repeated names keep the first column.
- Cells to text: empty -> None; text unchanged; TRUE/FALSE; int -> "12"; float -> "12" when whole
  (the id 12.0), else repr, the shortest text that round-trips (54.5494 stays "54.5494", as the
  CSV carries it). Numbers in latitude/longitude always become a float's repr ("38.0" for 38),
  as the catalog CSV writes them, so both formats give the same buffer. Column "date": date
  cells, serial day numbers (>= 1, in the workbook's 1900 or 1904 epoch, time of day dropped)
  and ISO YYYY-MM-DD text become MM/DD/YYYY; other text is passed on for parse_source_row to
  judge. Column "time": time cells, day fractions (0 <= x < 1) and the time of datetime cells
  become H:MM[:SS] (rounded to the second); text is passed on. Date and time cells in other
  columns become ISO text.
- Blank rows (every cell empty or blanks) inside the data are skipped and counted, never
  rejected; trailing blank rows are not counted.
- Empty catalog: a catalog sheet with a header but no data rows is not an error. The extraction
  finishes with zero events (exit 0) and a note saying the sheet has no data rows, as a CSV
  holding only its header does. A sheet with no cells at all is empty, never the catalog.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from xml.etree.ElementTree import iterparse

from openpyxl import load_workbook
from openpyxl.utils.cell import get_column_letter
from openpyxl.utils.datetime import from_excel
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet._read_only import ReadOnlyWorksheet
from openpyxl.worksheet.cell_range import CellRange
from openpyxl.xml.constants import SHEET_MAIN_NS

from catalog import REQUIRED_SOURCE_COLUMNS, TEXT_SOURCE_COLUMNS

HEADER_SEARCH_ROWS = 10
DATE_COLUMN = "date"
TIME_COLUMN = "time"
COORDINATE_COLUMNS = frozenset({"latitude", "longitude"})
# Every source column parse_source_row reads (a test checks this against catalog.py).
READ_COLUMNS = frozenset(
    {*REQUIRED_SOURCE_COLUMNS, TIME_COLUMN, "fatalities", "injuries", *TEXT_SOURCE_COLUMNS}
)
_MERGE_CELL = f"{{{SHEET_MAIN_NS}}}mergeCell"
_ROW = f"{{{SHEET_MAIN_NS}}}row"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SECONDS_PER_DAY = 86400

Raw = tuple[object, ...]


class WorkbookError(ValueError):
    """The workbook cannot be read, or holds no catalog sheet that can be read unambiguously."""


@dataclass(frozen=True)
class SheetRow:
    row: int  # 1-based sheet row, as the spreadsheet shows it
    values: dict[str, str | None]


@dataclass
class CatalogSheet:
    sheet: str
    header_row: int
    rows: list[SheetRow]
    blank_rows: int
    ignored_sheets: list[dict[str, str]]
    notes: list[str]


@dataclass
class _Header:
    row: int
    last_row: int
    names: dict[int, str] = field(default_factory=dict)  # column number -> name
    # Merges over several columns: the name belongs to one of them, decided by the data.
    spans: list[tuple[CellRange, str]] = field(default_factory=list)

    def provisional_names(self) -> set[str]:
        return {*self.names.values(), *(name for _, name in self.spans)}


def read_catalog(path: Path) -> CatalogSheet:
    with _reading(path):
        workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        return _read(path, workbook)
    finally:
        workbook.close()


def cell_text(column: str, value: object, epoch: datetime) -> str | None:
    """The text the CSV export would hold for one cell of `column`; None when empty."""
    if value is None:
        return None
    if column == DATE_COLUMN:
        return _date_text(value, epoch)
    if column == TIME_COLUMN:
        return _time_text(value)
    if column in COORDINATE_COLUMNS and _is_number(value):
        return _coordinate_text(value)
    return _plain_text(value)


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """openpyxl, zipfile and the XML parser raise many types on a damaged file: report one."""
    try:
        yield
    except WorkbookError:
        raise
    except Exception as exc:
        raise WorkbookError(f"cannot read {path} as an XLSX workbook: {exc}") from exc


def _read(path: Path, workbook: Workbook) -> CatalogSheet:
    with _reading(path):
        epoch: datetime = workbook.epoch
        sheet_names: list[str] = list(workbook.sheetnames)
    ignored: list[dict[str, str]] = []
    notes: list[str] = []
    chosen: tuple[str, _Header, list[Raw], list[CellRange]] | None = None
    for name in sheet_names:
        with _reading(path):
            sheet = workbook[name]
            if not isinstance(sheet, ReadOnlyWorksheet):
                ignored.append({"sheet": name, "reason": "is a chart sheet, not a worksheet"})
                continue
            sheet.reset_dimensions()  # some writers record a wrong size; read what is there
            top = _rows(sheet, HEADER_SEARCH_ROWS)
            empty = all(map(_blank, top)) and all(
                map(_blank, sheet.iter_rows(min_row=1, values_only=True))
            )
            merges = [] if empty else _merged_ranges(sheet)
        found = "is empty" if empty else _find_header(top, merges)
        if isinstance(found, str):
            ignored.append({"sheet": name, "reason": found})
        elif chosen is not None:
            reason = (
                f"also has a catalog header (row {found.row}), but only the first catalog "
                f"sheet, {chosen[0]!r}, is read"
            )
            ignored.append({"sheet": name, "reason": reason})
            notes.append(f"sheet {name!r} {reason}")
        else:
            with _reading(path):
                chosen = (name, found, _rows(sheet), merges)
    if chosen is None:
        lacks = "; ".join(f"sheet {i['sheet']!r} {i['reason']}" for i in ignored)
        raise WorkbookError(
            f"{path}: no sheet holds the catalog (a header row naming "
            f"{', '.join(REQUIRED_SOURCE_COLUMNS)} within rows 1-{HEADER_SEARCH_ROWS}): "
            f"{lacks or 'the workbook has no sheets'}"
        )
    sheet_name, header, rows, merges = chosen
    return _catalog(path, sheet_name, header, rows, merges, epoch, ignored, notes)


def _rows(sheet: ReadOnlyWorksheet, limit: int | None = None) -> list[Raw]:
    return [tuple(row) for row in sheet.iter_rows(min_row=1, max_row=limit, values_only=True)]


def _merged_ranges(sheet: ReadOnlyWorksheet) -> list[CellRange]:
    """The sheet's merged cells.

    openpyxl only reports merges outside read-only mode, so read the sheet part's
    <mergeCell ref="..."/> elements (they follow <sheetData>) with openpyxl's own part opener
    (a private method of openpyxl 3.1.5, the pinned version; the merge tests exercise it).
    """
    ranges: list[CellRange] = []
    with sheet._get_source() as source:
        for _, element in iterparse(source):
            if element.tag == _MERGE_CELL and element.get("ref"):
                ranges.append(CellRange(element.get("ref")))
            elif element.tag == _ROW:
                element.clear()
    return ranges


def _find_header(top: list[Raw], merges: list[CellRange]) -> _Header | str:
    closest: tuple[int, list[str]] | None = None
    for number in range(1, len(top) + 1):
        header = _header_at(top, merges, number)
        names = header.provisional_names()
        missing = [c for c in REQUIRED_SOURCE_COLUMNS if c not in names]
        if not missing:
            return header
        if names and (closest is None or len(missing) < len(closest[1])):
            closest = (number, missing)
    reason = (
        f"has no header row naming {', '.join(REQUIRED_SOURCE_COLUMNS)} "
        f"within rows 1-{HEADER_SEARCH_ROWS}"
    )
    if closest is not None and len(closest[1]) < len(REQUIRED_SOURCE_COLUMNS):
        reason += f" (closest: row {closest[0]}, which lacks {', '.join(closest[1])})"
    return reason


def _header_at(top: list[Raw], merges: list[CellRange], number: int) -> _Header:
    row = top[number - 1]
    covering = [m for m in merges if m.min_row <= number <= m.max_row]
    width = max([len(row), *(m.max_col for m in covering)])
    header = _Header(row=number, last_row=number)
    for column in range(1, width + 1):
        merge = next((m for m in covering if m.min_col <= column <= m.max_col), None)
        if merge is None:
            name = _header_text(_at(row, column))
            if name:
                header.names[column] = name
            continue
        header.last_row = max(header.last_row, merge.max_row)
        if column != merge.min_col:
            continue  # the merge was handled at its first column
        name = _header_text(_at(top[merge.min_row - 1], merge.min_col))
        if not name:
            continue
        if merge.min_col == merge.max_col:
            header.names[column] = name  # merged vertically: one column, unambiguous
        else:
            header.spans.append((merge, name))
    return header


def _catalog(
    path: Path,
    sheet: str,
    header: _Header,
    rows: list[Raw],
    merges: list[CellRange],
    epoch: datetime,
    ignored: list[dict[str, str]],
    notes: list[str],
) -> CatalogSheet:
    where = f"{path}: sheet {sheet!r}"
    data = rows[header.last_row :]
    names = dict(header.names)
    unnamed: set[int] = set()
    for merge, name in header.spans:
        columns = range(merge.min_col, merge.max_col + 1)
        filled = [c for c in columns if any(not _blank_value(_at(row, c)) for row in data)]
        if len(filled) <= 1:
            names[filled[0] if filled else merge.min_col] = name
            continue
        letters = ", ".join(get_column_letter(c) for c in filled)
        problem = (
            f"header cell {merge.coord} is merged over columns {letters}, which all hold data, "
            f"so which column is {name!r} is ambiguous"
        )
        if name in READ_COLUMNS:
            raise WorkbookError(f"{where}: {problem}; unmerge the cells and name each column")
        notes.append(f"sheet {sheet!r}: {problem}; the columns are ignored")
        unnamed.update(columns)
    columns_of: dict[str, list[int]] = {}
    for column, name in sorted(names.items()):
        columns_of.setdefault(name, []).append(column)
    for name, columns in columns_of.items():
        if len(columns) > 1 and name in READ_COLUMNS:
            cells = " and ".join(f"{get_column_letter(c)}{header.row}" for c in columns)
            raise WorkbookError(
                f"{where}: column {name!r} is named twice in the header ({cells}); "
                "rename or remove one"
            )
    used = sorted((columns[0], name) for name, columns in columns_of.items())
    width = max((len(row) for row in data), default=0)
    for column in range(1, width + 1):
        if column in names or column in unnamed:
            continue
        if any(not _blank_value(_at(row, column)) for row in data):
            notes.append(
                f"sheet {sheet!r}: column {get_column_letter(column)} holds data but has no "
                f"name in header row {header.row}; ignored"
            )
    if header.row > 1 and not all(map(_blank, rows[: header.row - 1])):
        notes.append(f"sheet {sheet!r}: rows 1-{header.row - 1} above the header are ignored")
    in_data = [m.coord for m in merges if m.min_row > header.last_row]
    if in_data:
        shown = ", ".join(in_data[:5]) + (
            f" and {len(in_data) - 5} more" if len(in_data) > 5 else ""
        )
        notes.append(
            f"sheet {sheet!r}: merged cells in the data ({shown}) count once, in their first "
            "cell; the other cells they cover read as empty"
        )
    if header.last_row > header.row:
        notes.append(
            f"sheet {sheet!r}: merged header cells make rows {header.row}-{header.last_row} "
            f"the header; data starts on row {header.last_row + 1}"
        )
    result: list[SheetRow] = []
    blank_rows = pending_blank = 0
    for number, raw in enumerate(data, start=header.last_row + 1):
        if _blank(raw):
            pending_blank += 1
            continue
        blank_rows, pending_blank = blank_rows + pending_blank, 0
        values = {name: cell_text(name, _at(raw, column), epoch) for column, name in used}
        result.append(SheetRow(number, values))
    if not result:
        notes.append(
            f"sheet {sheet!r} has a header (row {header.row}) but no data rows: "
            "the catalog is empty"
        )
    return CatalogSheet(
        sheet=sheet,
        header_row=header.row,
        rows=result,
        blank_rows=blank_rows,
        ignored_sheets=ignored,
        notes=notes,
    )


def _at(row: Raw, column: int) -> object:
    return row[column - 1] if column <= len(row) else None


def _blank_value(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _blank(row: Raw) -> bool:
    return all(map(_blank_value, row))


def _header_text(value: object) -> str:
    return "" if value is None else _plain_text(value).strip()


def _plain_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Spreadsheets have no integer type: an id typed as 12 may be stored as 12.0.
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    return str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _coordinate_text(value: object) -> str:
    # The catalog writes coordinates as Python floats ("38.0", "-75.42669999999998"); a workbook
    # cannot tell 38.0 from 38, so a number is written back as that float's repr.
    try:
        return repr(float(value))  # type: ignore[arg-type]
    except OverflowError:
        return str(value)


def _us_date(day: date) -> str:
    return f"{day.month:02d}/{day.day:02d}/{day.year:04d}"


def _date_text(value: object, epoch: datetime) -> str:
    if isinstance(value, datetime):
        return _us_date(value.date())
    if isinstance(value, date):
        return _us_date(value)
    if _is_number(value) and value >= 1:  # type: ignore[operator]
        try:
            converted = from_excel(value, epoch)
        except (OverflowError, ValueError):
            converted = None  # beyond the calendar: passed on as a number, rejected there
        if isinstance(converted, datetime):
            return _us_date(converted.date())
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return _us_date(date.fromisoformat(value.strip()))
        except ValueError:
            pass  # an impossible date: parse_source_row rejects the text as it stands
    return _plain_text(value)


def _time_text(value: object) -> str:
    if isinstance(value, datetime):
        value = value.time()
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1:
        value = timedelta(days=value)  # a time of day stored as a fraction of a day
    if isinstance(value, time):
        value = timedelta(
            hours=value.hour,
            minutes=value.minute,
            seconds=value.second,
            microseconds=value.microsecond,
        )
    if isinstance(value, timedelta) and timedelta(0) <= value < timedelta(days=1):
        seconds = min(round(value.total_seconds()), _SECONDS_PER_DAY - 1)
        minutes, second = divmod(seconds, 60)
        hour, minute = divmod(minutes, 60)
        return f"{hour}:{minute:02d}" + (f":{second:02d}" if second else "")
    return _plain_text(value)
