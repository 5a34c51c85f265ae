"""Load one day's buffered events of one catalog format into the staging table `event`.

One transaction: COPY into a temp table, then INSERT ... ON CONFLICT (event_id) DO NOTHING,
so re-running a day inserts nothing and the AFTER INSERT trigger only sees new rows.
The database URL comes from the env var named by platform env.warehouseUrl, or the file its
_FILE variant names (common.secret_from_env); it is never printed.
Exit codes: 0 done, 1 missing events file or database URL, or a database error.
"""

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg

from catalog import COLUMNS, Event, parse_buffer_row
from common import (
    SecretError,
    buffer_file,
    iso_date,
    platform,
    secret_from_env,
    stage_and_insert,
)
from vpe_executor.platform_config import lookup

TABLE = "event"


@dataclass(frozen=True)
class Counts:
    read: int
    inserted: int

    @property
    def skipped(self) -> int:
        return self.read - self.inserted


def read_events(path: Path) -> list[Event]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: header {reader.fieldnames} is not {list(COLUMNS)}")
        return [parse_buffer_row(row) for row in reader]


def load(conninfo: str, events: list[Event]) -> Counts:
    def fill(copy: psycopg.Copy) -> None:
        for event in events:
            copy.write_row(event.as_row())

    with psycopg.connect(conninfo) as conn, conn.transaction(), conn.cursor() as cur:
        _, inserted = stage_and_insert(cur, TABLE, COLUMNS, ("event_id",), fill)
    return Counts(read=len(events), inserted=inserted)


def main(argv: list[str] | None = None) -> int:
    settings = platform()
    url_env = lookup(settings, "env.warehouseUrl")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", type=iso_date, required=True, help="logical date, YYYY-MM-DD")
    parser.add_argument(
        "--format", required=True, choices=sorted(lookup(settings, "catalogSources")),
        help="which catalog extraction to load",
    )  # fmt: skip
    parser.add_argument("--buffer-dir", type=Path, default=Path(lookup(settings, "paths.buffer")))
    args = parser.parse_args(argv)
    try:
        conninfo = secret_from_env(url_env)
    except SecretError as exc:
        print(f"import_events: {exc}", file=sys.stderr)
        return 1
    path = buffer_file(args.buffer_dir, "events", args.date, settings, format=args.format)
    try:
        counts = load(conninfo, read_events(path))
    except FileNotFoundError:
        hint = f"run extract_catalog --format {args.format} first"
        print(f"import_events: {path} does not exist; {hint}", file=sys.stderr)
        return 1
    except (ValueError, psycopg.Error) as exc:
        print(f"import_events: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(
        f"import_events: format={args.format} read={counts.read} inserted={counts.inserted} "
        f"skipped={counts.skipped}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
