"""Load one day's buffered weather (fetch_weather's CSV) into the warehouse, idempotently.

One transaction: the file streams unparsed into COPY (PostgreSQL parses and type-checks it, and
names the line of a bad value), into a temporary table; then one INSERT ... SELECT into the
staging table `data` with ON CONFLICT (latitude, longitude, observed_at) DO NOTHING, whose
statement trigger derives location, datetime, weather_data and soil rows for the rows really
inserted (warehouse/migrations/0005). Re-running a day inserts nothing.
The database URL comes from the env var named by platform env.warehouseUrl, or the file its
_FILE variant names (common.secret_from_env); it is never printed.
Exit codes: 0 done, 1 missing weather file or database URL, a bad header, or a database error.
"""

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from common import (
    SecretError,
    buffer_file,
    iso_date,
    platform,
    secret_from_env,
    stage_and_insert,
)
from vpe_executor.platform_config import lookup
from weather import DATA_COLUMNS

TABLE = "data"
OBSERVATION_KEY = ("latitude", "longitude", "observed_at")
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Counts:
    read: int
    inserted: int
    seconds: float

    @property
    def skipped(self) -> int:
        return self.read - self.inserted


def check_header(path: Path) -> None:
    with path.open(encoding="utf-8", newline="") as fh:
        header = fh.readline().rstrip("\r\n").split(",")
    if tuple(header) != DATA_COLUMNS:
        raise ValueError(f"{path}: header {header} is not {list(DATA_COLUMNS)}")


def load(conninfo: str, path: Path) -> Counts:
    check_header(path)
    started = time.perf_counter()

    def fill(copy: psycopg.Copy) -> None:
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK_BYTES):
                copy.write(chunk)

    with psycopg.connect(conninfo) as conn, conn.transaction(), conn.cursor() as cur:
        read, inserted = stage_and_insert(
            cur, TABLE, DATA_COLUMNS, OBSERVATION_KEY, fill, "(FORMAT csv, HEADER true)"
        )
    return Counts(read=read, inserted=inserted, seconds=time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    settings = platform()
    url_env = lookup(settings, "env.warehouseUrl")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", type=iso_date, required=True, help="logical date, YYYY-MM-DD")
    parser.add_argument("--buffer-dir", type=Path, default=Path(lookup(settings, "paths.buffer")))
    args = parser.parse_args(argv)
    try:
        conninfo = secret_from_env(url_env)
    except SecretError as exc:
        print(f"import_weather: {exc}", file=sys.stderr)
        return 1
    path = buffer_file(args.buffer_dir, "weather", args.date, settings)
    try:
        counts = load(conninfo, path)
    except FileNotFoundError:
        print(f"import_weather: {path} does not exist; run fetch_weather first", file=sys.stderr)
        return 1
    except (ValueError, psycopg.Error) as exc:
        print(f"import_weather: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    rate = counts.inserted / counts.seconds if counts.seconds else 0.0
    print(
        f"import_weather: read={counts.read} inserted={counts.inserted} "
        f"skipped={counts.skipped} seconds={counts.seconds:.2f} rows_per_second={rate:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
