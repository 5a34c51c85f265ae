"""Fetch the hourly weather of the days before each landslide event still lacking it.

Selects the staging `event` rows whose window has a day without a `data` row at their
coordinates (one set-based query), fetches those windows from the Open-Meteo archive
(weather.py: batching, cache, retries, rate limit), and writes
<buffer>/<bufferFiles.weatherReport> first and <buffer>/<bufferFiles.weather> last, each
atomically (the CSV is streamed to a temp file and renamed), so a sensor waiting for the CSV
finds both complete. A failed batch or event never stops the others; the report lists each
failed event with its window and error (after 3 batches in a row exhausted their retries the
API counts as down: the rest are not sent, and their events are listed as failed too).
Environment: the archive URL (env.weatherBaseUrl: http(s)://host[:port], with or without the
/v1/archive path), requests per minute (env.weatherRequestsPerMinute) and the warehouse URL
(env.warehouseUrl, or the file its _FILE variant names: common.secret_from_env; never printed).
Exit codes: 0 done (even with failed events), 1 every event to fetch failed, or missing
environment/configuration, or a database or cache error.
"""

import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import Any

import psycopg

from common import (
    SecretError,
    atomic_write_text,
    atomic_writer,
    buffer_file,
    iso_date,
    platform,
    secret_from_env,
)
from vpe_executor.platform_config import PlatformError, lookup
from weather import (
    DATA_COLUMNS,
    ArchiveCache,
    ArchiveClient,
    CacheError,
    ConfigError,
    FetchOutcome,
    RowCounts,
    Settings,
    WeatherEvent,
    iter_rows,
)

NAME = "fetch_weather"
FAILURES_SHOWN = 20

# Events with a day of their window [event_date - N days, event_date) that has no observation at
# their coordinates: a later event at a point already enriched for an overlapping window still
# gets the days it lacks (its other days come from the cache and are skipped on import).
SELECT_EVENTS = """
    SELECT e.event_id, e.latitude::text, e.longitude::text, e.event_date
      FROM event AS e
     WHERE (SELECT count(DISTINCT d.observed_at::date)
              FROM data AS d
             WHERE d.latitude = e.latitude
               AND d.longitude = e.longitude
               AND d.observed_at >= e.event_date - %(days)s::integer
               AND d.observed_at < e.event_date) < %(days)s::integer
     ORDER BY e.event_date, e.event_id
"""


def select_events(conninfo: str, window_days: int) -> list[WeatherEvent]:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(SELECT_EVENTS, {"days": window_days}).fetchall()
    return [WeatherEvent(int(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows]


def report(selected: int, outcome: FetchOutcome, counts: RowCounts) -> dict[str, Any]:
    return {
        "events_selected": selected,
        "events_fetched": len(outcome.fetched),
        "events_from_cache": len(outcome.from_cache),
        "requests": outcome.requests,
        "retries": outcome.retries,
        "rows": counts.rows,
        "gap_hours": counts.gap_hours,
        "duplicate_hours": counts.duplicate_hours,
        "failures": [f.as_report() for f in outcome.failures],
    }


def _fail(message: str) -> int:
    print(f"{NAME}: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    try:
        settings = platform()
        env_names = {
            key: lookup(settings, f"env.{key}")
            for key in ("warehouseUrl", "weatherBaseUrl", "weatherRequestsPerMinute")
        }
        buffer_default = Path(lookup(settings, "paths.buffer"))
        cache_default = Path(lookup(settings, "paths.weatherCache"))
        weather = lookup(settings, "weather")
    except PlatformError as exc:
        return _fail(str(exc))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", type=iso_date, required=True, help="logical date, YYYY-MM-DD")
    parser.add_argument("--buffer-dir", type=Path, default=buffer_default)
    parser.add_argument("--cache-dir", type=Path, default=cache_default)
    parser.add_argument(
        "--backoff-base",
        type=float,
        default=Settings.backoff_base,
        help="seconds before the first retry (doubles)",
    )
    args = parser.parse_args(argv)
    values: dict[str, str] = {}
    for key, name in env_names.items():
        if key == "warehouseUrl":  # the one secret: from the file its _FILE variant names
            try:
                values[key] = secret_from_env(name).strip()
            except SecretError as exc:
                return _fail(str(exc))
        else:
            values[key] = os.environ.get(name, "").strip()
        if not values[key]:
            return _fail(f"environment variable {name} is not set")
    try:
        client_settings = Settings.from_platform(
            weather,
            values["weatherBaseUrl"],
            values["weatherRequestsPerMinute"],
            backoff_base=max(0.0, args.backoff_base),
        )
        data_path = buffer_file(args.buffer_dir, "weather", args.date, settings)
        report_path = buffer_file(args.buffer_dir, "weatherReport", args.date, settings)
    except (ConfigError, PlatformError) as exc:
        return _fail(str(exc))
    try:
        events = select_events(values["warehouseUrl"], client_settings.window_days)
    except psycopg.Error as exc:
        return _fail(f"{type(exc).__name__}: {exc}")

    try:
        cache = ArchiveCache(args.cache_dir)
        try:
            with ArchiveClient(client_settings, cache) as client:
                outcome = client.fetch(events)
            counts = RowCounts()
            # The data file appears last, after the report: the sensor waits for it.
            with atomic_writer(data_path) as fh:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(DATA_COLUMNS)
                writer.writerows(iter_rows(cache, client_settings, outcome.succeeded, counts))
                summary = report(len(events), outcome, counts)
                atomic_write_text(report_path, json.dumps(summary, indent=2) + "\n")
        finally:
            cache.close()
    except CacheError as exc:
        return _fail(str(exc))
    except OSError as exc:  # the buffer could not be written
        return _fail(f"{type(exc).__name__}: {exc}")

    print(
        f"{NAME}: selected={summary['events_selected']} fetched={summary['events_fetched']} "
        f"cached={summary['events_from_cache']} failed={len(outcome.failures)} "
        f"requests={summary['requests']} retries={summary['retries']} rows={summary['rows']} "
        f"gaps={summary['gap_hours']} duplicates={summary['duplicate_hours']} "
        f"data={data_path} report={report_path}"
    )
    for failure in outcome.failures[:FAILURES_SHOWN]:
        event = failure.event
        print(f"  failed event {event.event_id} ({event.latitude}, {event.longitude}) "
              f"{failure.window.start}..{failure.window.end}: {failure.error}")  # fmt: skip
    if len(outcome.failures) > FAILURES_SHOWN:
        print(f"  ... and {len(outcome.failures) - FAILURES_SHOWN} more in {report_path}")
    to_fetch = len(events) - len(outcome.from_cache)
    if to_fetch and not outcome.fetched:
        first = outcome.failures[0].error if outcome.failures else "unknown error"
        return _fail(f"all {to_fetch} events to fetch failed; first error: {first}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
