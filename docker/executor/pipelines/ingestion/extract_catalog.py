"""Extract the landslide catalog (CSV or XLSX) into the buffer: validated events plus a report.

Writes <buffer>/<bufferFiles.rejects> first and <buffer>/<bufferFiles.events> last (format=the
--format), each atomically, so a sensor waiting for the events file finds both complete. Both
formats share the validation (catalog.parse_source_row, one row per event id) and the events
buffer format. Bad rows never stop good ones; the report lists each bad row with its reasons and
where it is: the 1-based line in a CSV, the sheet and 1-based sheet row in a workbook (see
catalog_xlsx for how a workbook's sheets, header and cells are read). An empty catalog (a header
and no rows) gives zero events and a note in the report.
Exit codes: 0 done (even with rejected rows), 1 source unreadable, no usable sheet or lacking
required columns (the message names the file and, for a workbook, the sheets and cells).
"""

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from catalog import COLUMNS, REQUIRED_SOURCE_COLUMNS, Event, Problem, RowError, parse_source_row
from catalog_xlsx import WorkbookError, read_catalog
from common import atomic_write_text, buffer_file, iso_date, platform
from vpe_executor.platform_config import lookup


class SourceError(RuntimeError):
    pass


@dataclass(frozen=True)
class SourceRow:
    where: dict[str, Any]  # {"line": 3} or {"sheet": "landslides", "row": 17}
    values: Mapping[str, str | None]


@dataclass
class Extraction:
    source_format: str
    events: list[Event] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    rows_read: int = 0
    details: dict[str, Any] = field(default_factory=dict)  # format-specific report entries
    notes: list[str] = field(default_factory=list)


def extract(source: Path, source_format: str) -> Extraction:
    return EXTRACTORS[source_format](source)


def extract_csv(source: Path) -> Extraction:
    try:
        with source.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in REQUIRED_SOURCE_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise SourceError(f"{source} lacks required column(s): {', '.join(missing)}")
            result = validate("csv", _csv_rows(reader))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"cannot read {source}: {exc}") from exc
    if result.rows_read == 0:
        result.notes.append(f"{source} has a header but no data rows: the catalog is empty")
    return result


def _csv_rows(reader: "csv.DictReader[str]") -> Iterator[SourceRow]:
    line = reader.line_num + 1  # a quoted field may span lines: a row starts after the last one
    for row in reader:
        yield SourceRow({"line": line}, row)
        line = reader.line_num + 1


def extract_xlsx(source: Path) -> Extraction:
    try:
        sheet = read_catalog(source)
    except WorkbookError as exc:
        raise SourceError(str(exc)) from exc
    result = validate(
        "xlsx", (SourceRow({"sheet": sheet.sheet, "row": r.row}, r.values) for r in sheet.rows)
    )
    result.details = {
        "sheet": sheet.sheet,
        "header_row": sheet.header_row,
        "blank_rows": sheet.blank_rows,
        "ignored_sheets": sheet.ignored_sheets,
    }
    result.notes.extend(sheet.notes)
    return result


EXTRACTORS: dict[str, Callable[[Path], Extraction]] = {"csv": extract_csv, "xlsx": extract_xlsx}


def validate(source_format: str, rows: Iterable[SourceRow]) -> Extraction:
    """Validate rows in source order; a repeated event id rejects every row after the first."""
    result = Extraction(source_format)
    first_of_ids: dict[int, dict[str, Any]] = {}
    for row in rows:
        result.rows_read += 1
        try:
            event, warnings = parse_source_row(row.values)
            first = first_of_ids.setdefault(event.event_id, row.where)
            if first != row.where:
                raise RowError([Problem("id", f"duplicate of the row on {describe(first)}")])
        except RowError as exc:
            result.rejects.append(
                {
                    **row.where,
                    "id": row.values.get("id"),
                    "errors": [asdict(p) for p in exc.problems],
                }
            )
        else:
            result.events.append(event)
            result.warnings.extend({**row.where, **asdict(w)} for w in warnings)
    return result


def describe(where: Mapping[str, Any]) -> str:
    if "sheet" in where:
        return f"sheet {where['sheet']!r} row {where['row']}"
    return f"line {where['line']}"


def events_csv(events: list[Event]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(event.to_csv() for event in events)
    return out.getvalue()


def report(source: Path, extraction: Extraction) -> dict[str, Any]:
    return {
        "source": str(source),
        "format": extraction.source_format,
        **extraction.details,
        "rows_read": extraction.rows_read,
        "rows_good": len(extraction.events),
        "rows_rejected": len(extraction.rejects),
        "notes": extraction.notes,
        "rejects": extraction.rejects,
        "warnings": extraction.warnings,
    }


def main(argv: list[str] | None = None) -> int:
    settings = platform()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", type=iso_date, required=True, help="logical date, YYYY-MM-DD")
    parser.add_argument(
        "--format", dest="source_format", required=True, choices=sorted(EXTRACTORS),
        help="catalog source format; also names the buffer files' directory",
    )  # fmt: skip
    parser.add_argument(
        "--source", type=Path, help="catalog file (default: <paths.data>/catalogSources.<format>)"
    )
    parser.add_argument("--buffer-dir", type=Path, default=Path(lookup(settings, "paths.buffer")))
    args = parser.parse_args(argv)
    fmt = args.source_format
    source = args.source or Path(lookup(settings, "paths.data")) / lookup(
        settings, f"catalogSources.{fmt}"
    )
    try:
        extraction = extract(source, fmt)
    except SourceError as exc:
        print(f"extract_catalog: {exc}", file=sys.stderr)
        return 1
    summary = report(source, extraction)
    rejects_path = buffer_file(args.buffer_dir, "rejects", args.date, settings, format=fmt)
    events_path = buffer_file(args.buffer_dir, "events", args.date, settings, format=fmt)
    atomic_write_text(rejects_path, json.dumps(summary, indent=2) + "\n")
    atomic_write_text(events_path, events_csv(extraction.events))
    sheet = f" sheet={extraction.details['sheet']!r}" if "sheet" in extraction.details else ""
    print(
        f"extract_catalog: format={fmt}{sheet} read={summary['rows_read']} "
        f"good={summary['rows_good']} rejected={summary['rows_rejected']} "
        f"warnings={len(extraction.warnings)} events={events_path} report={rejects_path}"
    )
    for reject in extraction.rejects:
        print(f"  rejected {describe(reject)}: {reject['errors']}")
    for note in extraction.notes:
        print(f"extract_catalog: note: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
