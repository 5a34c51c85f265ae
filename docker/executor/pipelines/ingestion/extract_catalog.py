"""Extract the landslide catalog CSV into the buffer: validated events plus a rejects report.

Writes <buffer>/<bufferFiles.rejects> first and <buffer>/<bufferFiles.events> last, each
atomically, so a sensor waiting for the events file finds both complete. Bad rows never stop
good ones; the report lists each bad row's 1-based line number in the source file and reasons.
Exit codes: 0 done (even with rejected rows), 1 source unreadable or lacking required columns.
"""

import argparse
import csv
import io
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from catalog import COLUMNS, REQUIRED_SOURCE_COLUMNS, Event, Problem, RowError, parse_source_row
from common import atomic_write_text, buffer_file, iso_date, platform
from vpe_executor.platform_config import lookup

SOURCE_NAME = "landslides_sample.csv"


class SourceError(RuntimeError):
    pass


@dataclass
class Extraction:
    events: list[Event] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    rows_read: int = 0


def extract(source: Path) -> Extraction:
    try:
        with source.open(encoding="utf-8-sig", newline="") as fh:
            return _extract_rows(csv.DictReader(fh), source)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"cannot read {source}: {exc}") from exc


def _extract_rows(reader: "csv.DictReader[str]", source: Path) -> Extraction:
    missing = [c for c in REQUIRED_SOURCE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise SourceError(f"{source} lacks required column(s): {', '.join(missing)}")
    result = Extraction()
    first_line_of_ids: dict[int, int] = {}
    line = reader.line_num + 1  # a quoted field may span lines: a row starts after the last one
    for row in reader:
        result.rows_read += 1
        try:
            event, warnings = parse_source_row(row)
            first = first_line_of_ids.setdefault(event.event_id, line)
            if first != line:
                raise RowError([Problem("id", f"duplicate of the row on line {first}")])
        except RowError as exc:
            result.rejects.append(
                {"line": line, "id": row.get("id"), "errors": [asdict(p) for p in exc.problems]}
            )
        else:
            result.events.append(event)
            result.warnings.extend({"line": line, **asdict(w)} for w in warnings)
        line = reader.line_num + 1
    return result


def events_csv(events: list[Event]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(event.to_csv() for event in events)
    return out.getvalue()


def report(source: Path, extraction: Extraction) -> dict[str, Any]:
    return {
        "source": str(source),
        "rows_read": extraction.rows_read,
        "rows_good": len(extraction.events),
        "rows_rejected": len(extraction.rejects),
        "rejects": extraction.rejects,
        "warnings": extraction.warnings,
    }


def main(argv: list[str] | None = None) -> int:
    settings = platform()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", type=iso_date, required=True, help="logical date, YYYY-MM-DD")
    parser.add_argument(
        "--source", type=Path, default=Path(lookup(settings, "paths.data")) / SOURCE_NAME
    )
    parser.add_argument("--buffer-dir", type=Path, default=Path(lookup(settings, "paths.buffer")))
    args = parser.parse_args(argv)
    try:
        extraction = extract(args.source)
    except SourceError as exc:
        print(f"extract_catalog: {exc}", file=sys.stderr)
        return 1
    summary = report(args.source, extraction)
    rejects_path = buffer_file(args.buffer_dir, "rejects", args.date, settings)
    events_path = buffer_file(args.buffer_dir, "events", args.date, settings)
    atomic_write_text(rejects_path, json.dumps(summary, indent=2) + "\n")
    atomic_write_text(events_path, events_csv(extraction.events))
    print(
        f"extract_catalog: read={summary['rows_read']} good={summary['rows_good']} "
        f"rejected={summary['rows_rejected']} warnings={len(extraction.warnings)} "
        f"events={events_path} report={rejects_path}"
    )
    for reject in extraction.rejects:
        print(f"  rejected line {reject['line']}: {reject['errors']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
