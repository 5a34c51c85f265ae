"""Open-Meteo historical archive client: hourly weather for the days before landslide events.

An event's window is the `windowDays` days before its date (start = date - windowDays, end =
date - 1 day). Events sharing a date share a window and are batched into one request of up to
`locationsPerRequest` points (coordinate lists; several points come back as a JSON array in
request order). Rows carry the EVENT's coordinates as the warehouse has them (the API snaps to
its grid and answers with other coordinates), the elevation and timezone the API returns, and
observed_at = the local wall-clock `time` value.

Cache: SQLite <cache dir>/archive.sqlite, one row per (latitude text, longitude text,
variables, day) holding that day's raw hours as the API sent them (nulls and duplicate times
kept), so a re-run, or a later event whose window overlaps, fetches nothing it already has. A
window is fetched when some day of it is missing. A day whose every value is null is stored but
not trusted (it may be data not yet published): it is fetched again next time.

Rows: an hour whose every variable is null is a gap (no row, counted); an hour with some nulls
gives a row with those fields empty; a local time repeated within a day (DST fall-back) keeps its
first occurrence (counted). A coordinate pair needed by several events is written once per hour.

HTTP: one httpx.Client; up to maxAttempts attempts on 429, 5xx, timeouts, connection errors,
malformed JSON and truncated bodies, with exponential backoff and jitter (Retry-After honoured,
capped); other statuses (400 {"error": true, "reason": ...}) are not retried. Request starts are
spaced 60/N seconds apart for N requests per minute. After `give_up_after_failed_batches`
consecutive batches exhausted their retries (the API is down), the remaining batches are not
sent and their events are recorded as failed.
"""

import json
import math
import random
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

# API variable -> column of the staging table `data`, and the unit the warehouse expects.
VARIABLES: dict[str, tuple[str, str]] = {
    "temperature_2m": ("temperature", "°C"),
    "precipitation": ("precipitation", "mm"),
    "rain": ("rain", "mm"),
    "relative_humidity_2m": ("relative_humidity", "%"),
    "soil_temperature_0_to_7cm": ("soil_temperature_0_7cm", "°C"),
    "soil_moisture_0_to_7cm": ("soil_moisture_0_7cm", "m³/m³"),
    "soil_temperature_7_to_28cm": ("soil_temperature_7_28cm", "°C"),
    "soil_moisture_7_to_28cm": ("soil_moisture_7_28cm", "m³/m³"),
    "soil_temperature_28_to_100cm": ("soil_temperature_28_100cm", "°C"),
    "soil_moisture_28_to_100cm": ("soil_moisture_28_100cm", "m³/m³"),
    "soil_temperature_100_to_255cm": ("soil_temperature_100_255cm", "°C"),
    "soil_moisture_100_to_255cm": ("soil_moisture_100_255cm", "m³/m³"),
}
TIME_UNIT = "iso8601"
COLUMN_VARIABLE = {column: variable for variable, (column, _) in VARIABLES.items()}

# Insert columns of the staging table `data`, in buffer-file order.
DATA_COLUMNS = (
    "latitude",
    "longitude",
    "elevation",
    "timezone",
    "observed_at",
    "temperature",
    "precipitation",
    "rain",
    "relative_humidity",
    "soil_temperature_0_7cm",
    "soil_moisture_0_7cm",
    "soil_temperature_7_28cm",
    "soil_moisture_7_28cm",
    "soil_temperature_28_100cm",
    "soil_moisture_28_100cm",
    "soil_temperature_100_255cm",
    "soil_moisture_100_255cm",
)
assert set(DATA_COLUMNS[5:]) == set(COLUMN_VARIABLE), "VARIABLES must cover the data columns"
ARCHIVE_PATH = "/v1/archive"
CACHE_FILE = "archive.sqlite"
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_REASON_LIMIT = 300
_VALUE_TYPES = {int, float, type(None)}  # NaN and Infinity are parsed as text (see _as_text)


class ConfigError(ValueError):
    """The platform settings or environment give an unusable client configuration."""


class CacheError(RuntimeError):
    """The cache database cannot be opened or written."""


class ResponseError(ValueError):
    """A response (or one point of it) does not have the archive API's shape."""


class BatchError(RuntimeError):
    """A request failed for good; `transient` when retries were exhausted (API unavailable)."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class WeatherEvent:
    event_id: int
    latitude: str  # text exactly as the warehouse has it (NUMERIC::text)
    longitude: str
    event_date: date

    @property
    def point(self) -> tuple[str, str]:
        return (self.latitude, self.longitude)


@dataclass(frozen=True)
class Window:
    start: date
    end: date

    @classmethod
    def before(cls, event_date: date, days: int) -> "Window":
        return cls(event_date - timedelta(days=days), event_date - timedelta(days=1))

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


@dataclass(frozen=True)
class Settings:
    base_url: str
    hourly: tuple[str, ...]
    requests_per_minute: float
    # platform.json weather.windowDays, locationsPerRequest, maxAttempts, timeoutSeconds
    window_days: int
    locations_per_request: int
    max_attempts: int
    timeout_seconds: float
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    give_up_after_failed_batches: int = 3

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"weather base URL must be http(s)://host[:port], got {self.base_url!r}"
            )
        unknown = [v for v in self.hourly if v not in VARIABLES]
        if not self.hourly or unknown or len(set(self.hourly)) != len(self.hourly):
            raise ConfigError(
                f"weather.hourly must list distinct variables of {sorted(VARIABLES)}; "
                f"unknown: {unknown}"
            )
        positive = {
            "requests per minute": self.requests_per_minute,
            "weather.windowDays": self.window_days,
            "weather.locationsPerRequest": self.locations_per_request,
            "weather.maxAttempts": self.max_attempts,
            "weather.timeoutSeconds": self.timeout_seconds,
        }
        for name, value in positive.items():
            if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
                raise ConfigError(f"{name} must be a positive number, got {value!r}")

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        return base if base.endswith(ARCHIVE_PATH) else base + ARCHIVE_PATH

    @property
    def variables_key(self) -> str:
        return ",".join(self.hourly)

    @classmethod
    def from_platform(
        cls, weather: dict[str, Any], base_url: str, requests_per_minute: str, **overrides: Any
    ) -> "Settings":
        """Build from platform `weather` plus the env values; raises ConfigError."""
        try:
            rate = float(requests_per_minute)
        except ValueError:
            raise ConfigError(
                f"requests per minute must be a number, got {requests_per_minute!r}"
            ) from None
        try:
            values: dict[str, Any] = {
                "hourly": tuple(weather["hourly"]),
                "window_days": weather["windowDays"],
                "locations_per_request": weather["locationsPerRequest"],
                "max_attempts": weather["maxAttempts"],
                "timeout_seconds": weather["timeoutSeconds"],
            }
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"platform weather settings lack {exc}") from None
        if not all(isinstance(values[k], int) for k in ("window_days", "max_attempts")):
            raise ConfigError("weather.windowDays and weather.maxAttempts must be integers")
        if not isinstance(values["locations_per_request"], int):
            raise ConfigError("weather.locationsPerRequest must be an integer")
        return cls(base_url=base_url, requests_per_minute=rate, **{**values, **overrides})


class RateLimiter:
    """Spaces request starts at least 60/N seconds apart (N per minute)."""

    def __init__(
        self,
        per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 60.0 / per_minute
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    def wait(self) -> None:
        now = self._clock()
        if self._next is not None and now < self._next:
            self._sleep(self._next - now)
            now = max(self._clock(), self._next)
        self._next = now + self.interval


@dataclass(frozen=True)
class DaySeries:
    day: str
    elevation: float | None
    timezone: str | None
    utc_offset_seconds: int | None
    hours: list[list[Any]]  # [time, value per variable...] in API order

    @property
    def complete(self) -> bool:
        return any(v is not None for hour in self.hours for v in hour[1:])


class ArchiveCache:
    """SQLite store of raw daily series; every write is one transaction."""

    SCHEMA = """
        CREATE TABLE IF NOT EXISTS hourly_day (
            latitude           TEXT NOT NULL,
            longitude          TEXT NOT NULL,
            variables          TEXT NOT NULL,
            day                TEXT NOT NULL,
            elevation          REAL,
            timezone           TEXT,
            utc_offset_seconds INTEGER,
            complete           INTEGER NOT NULL,
            hours              TEXT NOT NULL,
            fetched_at         TEXT NOT NULL,
            PRIMARY KEY (latitude, longitude, variables, day)
        ) WITHOUT ROWID
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / CACHE_FILE
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60)
            # WAL: a crash mid-write leaves the last committed state; NORMAL syncs at checkpoints
            # only (a cache may lose its newest batches to a power cut, never its consistency).
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            with self._db:
                self._db.execute(self.SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(
                f"cache {self.path} unusable ({exc}); delete it to start afresh"
            ) from exc

    def close(self) -> None:
        self._db.close()

    def has_window(self, point: tuple[str, str], variables: str, window: Window) -> bool:
        row = self._db.execute(
            "SELECT count(*) FROM hourly_day WHERE latitude = ? AND longitude = ? "
            "AND variables = ? AND day BETWEEN ? AND ? AND complete = 1",
            (*point, variables, window.start.isoformat(), window.end.isoformat()),
        ).fetchone()
        return int(row[0]) == len(window.days())

    def store(
        self, items: Sequence[tuple[tuple[str, str], list[DaySeries]]], variables: str
    ) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            with self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO hourly_day VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (*point, variables, d.day, d.elevation, d.timezone, d.utc_offset_seconds,
                         int(d.complete), json.dumps(d.hours, separators=(",", ":")), stamp)
                        for point, days in items
                        for d in days
                    ],
                )  # fmt: skip
        except sqlite3.Error as exc:
            raise CacheError(f"cannot write cache {self.path}: {exc}") from exc

    def day(self, point: tuple[str, str], variables: str, day: date) -> DaySeries | None:
        row = self._db.execute(
            "SELECT elevation, timezone, utc_offset_seconds, hours FROM hourly_day "
            "WHERE latitude = ? AND longitude = ? AND variables = ? AND day = ?",
            (*point, variables, day.isoformat()),
        ).fetchone()
        if row is None:
            return None
        return DaySeries(day.isoformat(), row[0], row[1], row[2], json.loads(row[3]))


def _number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _as_text(constant: str) -> str:
    """json parse_constant: NaN/Infinity stay text, so validation rejects them as non-numbers."""
    return constant


def parse_point(obj: Any, variables: Sequence[str], window: Window) -> list[DaySeries]:
    """Validate one point's response object; split its hours by local day."""
    if not isinstance(obj, dict):
        raise ResponseError(f"expected a JSON object per point, got {type(obj).__name__}")
    if obj.get("error"):
        raise ResponseError(f"API error: {str(obj.get('reason'))[:_REASON_LIMIT]}")
    hourly, units = obj.get("hourly"), obj.get("hourly_units")
    if not isinstance(hourly, dict) or not isinstance(units, dict):
        raise ResponseError("response lacks 'hourly' or 'hourly_units'")
    expected_units = {"time": TIME_UNIT, **{v: VARIABLES[v][1] for v in variables}}
    for name, unit in expected_units.items():
        if name not in units:
            raise ResponseError(f"hourly_units lacks {name!r}")
        if units[name] != unit:
            raise ResponseError(f"unit of {name!r} is {units[name]!r}, expected {unit!r}")
    times = hourly.get("time")
    if not isinstance(times, list) or not all(
        isinstance(t, str) and _TIME.fullmatch(t) for t in times
    ):
        raise ResponseError("hourly.time must be a list of YYYY-MM-DDTHH:MM strings")
    columns: list[list[Any]] = []
    for name in variables:
        values = hourly.get(name)
        if not isinstance(values, list):
            raise ResponseError(f"hourly lacks {name!r}")
        if len(values) != len(times):
            raise ResponseError(f"hourly.{name} has {len(values)} values for {len(times)} times")
        if not {type(v) for v in values} <= _VALUE_TYPES:  # fast path: bool and str are out
            raise ResponseError(f"hourly.{name} holds a value that is neither a number nor null")
        columns.append(values)
    elevation, timezone = obj.get("elevation"), obj.get("timezone")
    offset = obj.get("utc_offset_seconds")
    if elevation is not None and not _number(elevation):
        raise ResponseError(f"elevation {elevation!r} is not a number")
    if not isinstance(timezone, str) or not timezone:
        raise ResponseError("response lacks a timezone")
    if offset is not None and not isinstance(offset, int):
        raise ResponseError(f"utc_offset_seconds {offset!r} is not an integer")
    by_day: dict[str, list[list[Any]]] = {d.isoformat(): [] for d in window.days()}
    for hour in zip(times, *columns, strict=True):
        hours = by_day.get(hour[0][:10])
        if hours is None:
            raise ResponseError(f"time {hour[0]} lies outside {window.start}..{window.end}")
        hours.append(list(hour))
    missing = [day for day, hours in by_day.items() if not hours]
    if missing:
        raise ResponseError(f"no hours for {len(missing)} day(s) of the window, first {missing[0]}")
    return [DaySeries(day, elevation, timezone, offset, hours) for day, hours in by_day.items()]


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:_REASON_LIMIT].strip()
    if isinstance(body, dict) and "reason" in body:
        return str(body["reason"])[:_REASON_LIMIT]
    return response.text[:_REASON_LIMIT].strip()


def _retry_after(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True)
class Failure:
    event: WeatherEvent
    window: Window
    error: str

    def as_report(self) -> dict[str, Any]:
        return {
            "event_id": self.event.event_id,
            "latitude": self.event.latitude,
            "longitude": self.event.longitude,
            "start_date": self.window.start.isoformat(),
            "end_date": self.window.end.isoformat(),
            "error": self.error,
        }


@dataclass
class FetchOutcome:
    fetched: list[WeatherEvent] = field(default_factory=list)
    from_cache: list[WeatherEvent] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    requests: int = 0
    retries: int = 0

    @property
    def succeeded(self) -> list[WeatherEvent]:
        return self.from_cache + self.fetched


@dataclass
class RowCounts:
    rows: int = 0
    gap_hours: int = 0
    duplicate_hours: int = 0


class ArchiveClient:
    def __init__(
        self,
        settings: Settings,
        cache: ArchiveCache,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self._sleep = sleep
        self._jitter = jitter
        self.limiter = RateLimiter(settings.requests_per_minute, clock, sleep)
        self._http = httpx.Client(
            timeout=settings.timeout_seconds,
            transport=transport,
            headers={"User-Agent": "vpe-fetch-weather", "Accept": "application/json"},
        )
        self.requests = 0
        self.retries = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "ArchiveClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(self, events: Sequence[WeatherEvent]) -> FetchOutcome:
        """Make sure every event's window is cached; failures are per event, never raised."""
        outcome = FetchOutcome()
        settings = self.settings
        by_date: dict[date, dict[tuple[str, str], list[WeatherEvent]]] = {}
        for event in events:
            by_date.setdefault(event.event_date, {}).setdefault(event.point, []).append(event)
        failed_in_a_row = 0
        for event_date in sorted(by_date):
            window = Window.before(event_date, settings.window_days)
            pending: list[tuple[tuple[str, str], list[WeatherEvent]]] = []
            for point, point_events in by_date[event_date].items():
                if self.cache.has_window(point, settings.variables_key, window):
                    outcome.from_cache.extend(point_events)
                else:
                    pending.append((point, point_events))
            for i in range(0, len(pending), settings.locations_per_request):
                batch = pending[i : i + settings.locations_per_request]
                if failed_in_a_row >= settings.give_up_after_failed_batches:
                    error = f"not requested: {failed_in_a_row} batches in a row failed before"
                    self._fail(outcome, batch, window, error)
                    continue
                try:
                    self._fetch_batch(batch, window, outcome)
                except BatchError as exc:
                    self._fail(outcome, batch, window, str(exc))
                    failed_in_a_row = failed_in_a_row + 1 if exc.transient else 0
                else:
                    failed_in_a_row = 0
        outcome.requests, outcome.retries = self.requests, self.retries
        return outcome

    @staticmethod
    def _fail(
        outcome: FetchOutcome,
        batch: Sequence[tuple[tuple[str, str], list[WeatherEvent]]],
        window: Window,
        error: str,
    ) -> None:
        outcome.failures.extend(Failure(e, window, error) for _, events in batch for e in events)

    def _fetch_batch(
        self,
        batch: Sequence[tuple[tuple[str, str], list[WeatherEvent]]],
        window: Window,
        outcome: FetchOutcome,
    ) -> None:
        settings = self.settings
        params = {
            "latitude": ",".join(point[0] for point, _ in batch),
            "longitude": ",".join(point[1] for point, _ in batch),
            "start_date": window.start.isoformat(),
            "end_date": window.end.isoformat(),
            "hourly": ",".join(settings.hourly),
            "timezone": "auto",
        }
        payload = self._request(params)
        if isinstance(payload, dict) and len(batch) == 1:
            payload = [payload]
        if isinstance(payload, dict) and payload.get("error"):
            raise BatchError(f"API error: {str(payload.get('reason'))[:_REASON_LIMIT]}", False)
        if not isinstance(payload, list) or len(payload) != len(batch):
            size = len(payload) if isinstance(payload, list) else type(payload).__name__
            raise BatchError(f"expected a JSON array of {len(batch)} points, got {size}", False)
        good: list[tuple[tuple[str, str], list[DaySeries]]] = []
        for (point, point_events), obj in zip(batch, payload, strict=True):
            try:
                good.append((point, parse_point(obj, settings.hourly, window)))
            except ResponseError as exc:
                outcome.failures.extend(Failure(e, window, str(exc)) for e in point_events)
            else:
                outcome.fetched.extend(point_events)
        self.cache.store(good, settings.variables_key)

    def _request(self, params: dict[str, str]) -> Any:
        settings = self.settings
        last = ""
        for attempt in range(1, settings.max_attempts + 1):
            if attempt > 1:
                self.retries += 1
            self.limiter.wait()
            self.requests += 1
            retry_after: float | None = None
            try:
                response = self._http.get(settings.url, params=params)
            except httpx.TimeoutException as exc:
                last = f"timed out after {settings.timeout_seconds}s ({type(exc).__name__})"
            except httpx.UnsupportedProtocol as exc:
                raise BatchError(f"{type(exc).__name__}: {exc}", False) from exc
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status == 200:
                    try:
                        return json.loads(response.content, parse_constant=_as_text)
                    except ValueError as exc:
                        last = f"malformed JSON: {exc}"
                elif status == 429 or status >= 500:
                    last = f"HTTP {status}: {_reason(response)}".rstrip(": ")
                    retry_after = _retry_after(response.headers.get("Retry-After"))
                else:
                    raise BatchError(f"HTTP {status}: {_reason(response)}", False)
            if attempt < settings.max_attempts:
                self._sleep(self._backoff(attempt, retry_after))
        raise BatchError(f"gave up after {settings.max_attempts} attempts: {last}", True)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        cap = self.settings.backoff_cap
        delay = min(cap, self.settings.backoff_base * 2 ** (attempt - 1))
        delay *= 0.5 + 0.5 * self._jitter()
        return max(delay, min(retry_after, cap)) if retry_after is not None else delay


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def iter_rows(
    cache: ArchiveCache, settings: Settings, events: Sequence[WeatherEvent], counts: RowCounts
) -> Iterator[list[str]]:
    """Buffer rows (DATA_COLUMNS order) for the events' windows, read back from the cache.

    Each coordinate pair is written once per hour, however many events need it.
    """
    days_of: dict[tuple[str, str], set[date]] = {}
    for event in events:
        window = Window.before(event.event_date, settings.window_days)
        days_of.setdefault(event.point, set()).update(window.days())
    # Position of each data column's variable in a cached hour ([time, *values]), if requested.
    picks = [
        settings.hourly.index(COLUMN_VARIABLE[column]) + 1
        if COLUMN_VARIABLE[column] in settings.hourly
        else None
        for column in DATA_COLUMNS[5:]
    ]
    for point, days in days_of.items():
        for day in sorted(days):
            series = cache.day(point, settings.variables_key, day)
            if series is None:
                raise CacheError(f"cache lost {point} {day} while writing rows")
            head = [*point, _text(series.elevation), _text(series.timezone)]
            seen: set[str] = set()
            for hour in series.hours:
                stamp = hour[0]
                if stamp in seen:
                    counts.duplicate_hours += 1
                    continue
                seen.add(stamp)
                if all(v is None for v in hour[1:]):
                    counts.gap_hours += 1
                    continue
                counts.rows += 1
                yield [
                    *head,
                    f"{stamp[:10]} {stamp[11:]}:00",
                    *("" if i is None else _text(hour[i]) for i in picks),
                ]
