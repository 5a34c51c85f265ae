"""A stand-in for Open-Meteo's historical archive API (GET /v1/archive), stdlib only.

Run:    python3 tests/fakes/open_meteo_archive.py --host 0.0.0.0 --port 8000
Import: server = start(); server.url; server.fail_next("500", times=2); server.served();
        server.stop()

Endpoints
- GET /v1/archive: latitude, longitude (comma lists of equal length), start_date, end_date
  (YYYY-MM-DD, 1940-01-01 .. today, start <= end), hourly (comma list of the 12 supported
  variables), timezone (auto, GMT or UTC; all answer "GMT", utc_offset_seconds 0). One point
  answers a JSON object, several a JSON array in request order. Coordinates come back snapped to
  a 0.01 degree grid. Bad parameters answer 400 {"error": true, "reason": ...}.
- GET /served: {"requests", "observations", "gap_hours", "locations", "failures_injected"}, where
  observations counts distinct (requested latitude text, requested longitude text, time) served
  with at least one non-null value, gap_hours the distinct ones served all-null, locations the
  distinct requested coordinate pairs served. Counted once a response body is fully written.
- POST /control: {"kind": K, "times": n, "retry_after": s, "seconds": s} queues n failures for
  the next archive requests; {"reset": true} clears the queue and the /served counters.
  Kinds: "429" (with Retry-After, default 1), any other 3-digit status such as "500",
  "malformed" (200 with invalid JSON), "truncated" (200 declaring a longer Content-Length than
  it sends, then closing), "slow" (sleeps `seconds`, default 5, then answers normally).
- GET /health: {"ok": true}.

Values are deterministic functions of (variable, snapped latitude, snapped longitude, hour) and
stay inside the warehouse's CHECK ranges: temperatures -30..45 °C, relative humidity 0..100 %,
precipitation 0..4 mm with rain <= precipitation (rain = 0 below freezing), soil moisture
0.05..0.5 m³/m³.

Gap rule, with h = hours since 1970-01-01T00:00 and s = seed of the snapped point
(round(lat*100) * 36001 + round(lon*100)):
- (h + s) % 97 == 0: every variable of that hour is null (a gap; ~1 %, never two in a row, so
  never a whole day);
- otherwise (7*h + s) % 89 == 0: only variable number (h + s) % 12 of VARIABLES is null, if it
  was requested (a row with one empty field).
"""

import argparse
import json
import math
import re
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

VARIABLES: dict[str, str] = {
    "temperature_2m": "°C",
    "relative_humidity_2m": "%",
    "precipitation": "mm",
    "rain": "mm",
    "soil_temperature_0_to_7cm": "°C",
    "soil_temperature_7_to_28cm": "°C",
    "soil_temperature_28_to_100cm": "°C",
    "soil_temperature_100_to_255cm": "°C",
    "soil_moisture_0_to_7cm": "m³/m³",
    "soil_moisture_7_to_28cm": "m³/m³",
    "soil_moisture_28_to_100cm": "m³/m³",
    "soil_moisture_100_to_255cm": "m³/m³",
}
_INDEX = {name: i for i, name in enumerate(VARIABLES)}
FIRST_DAY = date(1940, 1, 1)
EPOCH = date(1970, 1, 1)
GAP_EVERY = 97
SINGLE_NULL_EVERY = 89
TIMEZONES = {"auto", "gmt", "utc"}
FAILURE_KINDS = ("malformed", "truncated", "slow")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TAU = 2 * math.pi


class BadRequest(ValueError):
    pass


def seed(lat: float, lon: float) -> int:
    return round(lat * 100) * 36001 + round(lon * 100)


def is_gap(h: int, s: int) -> bool:
    return (h + s) % GAP_EVERY == 0


def single_null(h: int, s: int) -> int | None:
    """Index in VARIABLES of the one null variable of hour h, if any (gaps excluded)."""
    if is_gap(h, s) or (7 * h + s) % SINGLE_NULL_EVERY:
        return None
    return (h + s) % len(VARIABLES)


def _noise(s: int, h: int, k: int) -> float:
    x = (s * 0x9E3779B1 + h * 0x85EBCA77 + k * 0xC2B2AE3D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x2C1B3C6D) & 0xFFFFFFFF
    x ^= x >> 12
    return x / 4294967296.0


def hour_values(lat: float, lon: float, s: int, h: int) -> list[float | int]:
    """All 12 variables of one hour, in VARIABLES order (no nulls)."""
    base = 28.0 - 0.45 * abs(lat)  # -12.5 .. 28
    season = 8.0 * math.cos(_TAU * ((h / 24.0) % 365.25 - 200.0) / 365.25)
    season = season if lat >= 0 else -season
    diurnal = math.sin(_TAU * ((h % 24) + lon / 15.0 - 9.0) / 24.0)
    n1, n2 = _noise(s, h, 1), _noise(s, h, 2)
    temperature = round(base + season + 6.0 * diurnal + 3.0 * (n1 - 0.5), 1)
    humidity = max(0, min(100, round(65.0 - 15.0 * diurnal + 40.0 * (n2 - 0.5))))
    precipitation = round(max(0.0, n2 - 0.75) * 16.0, 1)
    rain = precipitation if temperature > 0 else 0.0
    wet = 0.25 + 0.1 * math.sin(_TAU * (h / 720.0 + lon / 360.0))
    return [
        temperature,
        humidity,
        precipitation,
        rain,
        round(base + season + 2.0 * diurnal, 1),
        round(base + 0.9 * season + 0.5 * diurnal, 1),
        round(base + 0.7 * season, 1),
        round(base + 0.4 * season, 1),
        round(wet + 0.1 * n1, 3),
        round(wet + 0.05, 3),
        round(wet + 0.1, 3),
        round(wet + 0.15, 3),
    ]


def elevation(lat: float, lon: float) -> float:
    return round(abs(math.sin(math.radians(lat * 3)) * math.cos(math.radians(lon * 2))) * 2500, 1)


def _date(params: dict[str, str], name: str) -> date:
    raw = params.get(name)
    if raw is None:
        raise BadRequest(f"Parameter '{name}' is required")
    if not _DATE.fullmatch(raw):
        raise BadRequest(f"Invalid date format for '{name}': {raw!r}. Use 'YYYY-MM-DD'")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"Invalid date for '{name}': {raw!r}") from None


def _coordinates(params: dict[str, str], name: str, limit: int) -> list[tuple[str, float]]:
    raw = params.get(name)
    if not raw:
        raise BadRequest(f"Parameter '{name}' is required")
    out = []
    for text in raw.split(","):
        try:
            value = float(text)
        except ValueError:
            raise BadRequest(f"Invalid {name} {text!r}") from None
        if not math.isfinite(value) or not -limit <= value <= limit:
            raise BadRequest(
                f"{name.capitalize()} must be in range of -{limit} to {limit}°. Given: {text}."
            )
        out.append((text, value))
    return out


@dataclass(frozen=True)
class Query:
    points: list[tuple[str, str, float, float]]  # requested texts, parsed values
    start: date
    end: date
    variables: list[str]

    @cached_property
    def times(self) -> list[str]:
        """The hourly `time` values (GMT), shared by every point of the request."""
        days = (self.end - self.start).days + 1
        return [
            f"{self.start + timedelta(days=d)}T{h:02d}:00" for d in range(days) for h in range(24)
        ]


def parse_query(params: dict[str, str]) -> Query:
    lats = _coordinates(params, "latitude", 90)
    lons = _coordinates(params, "longitude", 180)
    if len(lats) != len(lons):
        raise BadRequest(
            "Parameter 'latitude' and 'longitude' must have the same number of elements"
        )
    start, end = _date(params, "start_date"), _date(params, "end_date")
    if start > end:
        raise BadRequest("End-date must be larger or equal than start-date")
    if start < FIRST_DAY or end > date.today():
        raise BadRequest(
            f"Parameter 'start_date' and 'end_date' must be in range {FIRST_DAY} to {date.today()}"
        )
    variables = [v for v in (params.get("hourly") or "").split(",") if v]
    unknown = [v for v in variables if v not in VARIABLES]
    if unknown:
        raise BadRequest(
            "Cannot initialize WeatherVariable from invalid String value "
            f"{unknown[0]} for key hourly"
        )
    if params.get("timezone", "GMT").lower() not in TIMEZONES:
        raise BadRequest(f"Invalid timezone {params['timezone']!r}: only auto, GMT and UTC")
    return Query(
        [(lt, ln, lv, nv) for (lt, lv), (ln, nv) in zip(lats, lons, strict=True)],
        start,
        end,
        variables,
    )


@dataclass
class Served:
    """What /served reports; per requested point, the hour indexes served with and without data."""

    requests: int = 0
    failures_injected: int = 0
    observed: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    gaps: dict[tuple[str, str], set[int]] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "observations": sum(len(hours) for hours in self.observed.values()),
            "gap_hours": sum(len(hours) for hours in self.gaps.values()),
            "locations": len(self.observed.keys() | self.gaps.keys()),
            "failures_injected": self.failures_injected,
        }


@dataclass
class PointAnswer:
    key: tuple[str, str]
    body: dict[str, Any]
    observed: list[int]
    gaps: list[int]


def answer_point(
    lat_text: str, lon_text: str, lat: float, lon: float, query: Query, hours: range
) -> PointAnswer:
    slat, slon = round(lat, 2), round(lon, 2)
    s = seed(slat, slon)
    picks = [_INDEX[v] for v in query.variables]
    columns: list[list[float | int | None]] = [[] for _ in picks]
    observed, gaps = [], []
    for h in hours:
        if is_gap(h, s):
            for column in columns:
                column.append(None)
            gaps.append(h)
            continue
        values: list[float | int | None] = list(hour_values(slat, slon, s, h))
        hole = single_null(h, s)
        if hole is not None:
            values[hole] = None
        any_value = False
        for column, i in zip(columns, picks, strict=True):
            value = values[i]
            column.append(value)
            any_value = any_value or value is not None
        (observed if any_value else gaps).append(h)
    body: dict[str, Any] = {
        "latitude": slat,
        "longitude": slon,
        "generationtime_ms": 0.1,
        "utc_offset_seconds": 0,
        "timezone": "GMT",
        "timezone_abbreviation": "GMT",
        "elevation": elevation(slat, slon),
    }
    if query.variables:
        body["hourly_units"] = {"time": "iso8601", **{v: VARIABLES[v] for v in query.variables}}
        body["hourly"] = {"time": query.times, **dict(zip(query.variables, columns, strict=True))}
    return PointAnswer((lat_text, lon_text), body, observed, gaps)


@dataclass(frozen=True)
class Failure:
    kind: str
    retry_after: float = 1
    seconds: float = 5


class FakeArchive(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], verbose: bool = False) -> None:
        super().__init__(address, Handler)
        self.verbose = verbose
        self.lock = threading.Lock()
        self.failures: deque[Failure] = deque()
        self.stats = Served()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{host}:{port}"

    def fail_next(
        self, kind: str, times: int = 1, retry_after: float = 1, seconds: float = 5
    ) -> None:
        if kind not in FAILURE_KINDS and not re.fullmatch(r"[1-5]\d\d", kind):
            raise ValueError(f"unknown failure kind {kind!r}")
        with self.lock:
            self.failures.extend([Failure(kind, retry_after, seconds)] * times)

    def reset(self) -> None:
        with self.lock:
            self.failures.clear()
            self.stats = Served()

    def served(self) -> dict[str, int]:
        with self.lock:
            return self.stats.summary()

    def next_failure(self) -> Failure | None:
        with self.lock:
            self.stats.requests += 1
            if not self.failures:
                return None
            self.stats.failures_injected += 1
            return self.failures.popleft()

    def record(self, answers: list[PointAnswer]) -> None:
        with self.lock:
            for answer in answers:
                self.stats.observed.setdefault(answer.key, set()).update(answer.observed)
                self.stats.gaps.setdefault(answer.key, set()).update(answer.gaps)

    def start(self) -> "FakeArchive":
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def start(host: str = "127.0.0.1", port: int = 0, verbose: bool = False) -> FakeArchive:
    """A running server on a thread (port 0: a free port; see .url)."""
    return FakeArchive((host, port), verbose).start()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: FakeArchive

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(
        self, status: int, body: bytes, headers: dict[str, str] | None = None, length: int = -1
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body) if length < 0 else length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        self._send(
            status, json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(), headers
        )

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        try:
            if url.path == "/v1/archive":
                self._archive(url.query)
            elif url.path == "/served":
                self._json(200, self.server.served())
            elif url.path == "/health":
                self._json(200, {"ok": True})
            else:
                self._json(404, {"error": True, "reason": f"no route {url.path}"})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if url.path != "/control":
            self._json(404, {"error": True, "reason": f"no route {url.path}"})
            return
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            if body.get("reset"):
                self.server.reset()
            if "kind" in body:
                self.server.fail_next(
                    str(body["kind"]),
                    int(body.get("times", 1)),
                    float(body.get("retry_after", 1)),
                    float(body.get("seconds", 5)),
                )
        except (ValueError, TypeError) as exc:
            self._json(400, {"error": True, "reason": str(exc)})
            return
        self._json(200, {"queued": len(self.server.failures), **self.server.served()})

    def _archive(self, query_string: str) -> None:
        failure = self.server.next_failure()
        if failure is not None and failure.kind == "slow":
            time.sleep(failure.seconds)
        elif failure is not None and failure.kind.isdigit():
            status = int(failure.kind)
            headers = {"Retry-After": f"{failure.retry_after:g}"} if status == 429 else None
            reason = "Too many requests" if status == 429 else "Injected failure"
            self._json(status, {"error": True, "reason": reason}, headers)
            return
        elif failure is not None and failure.kind == "malformed":
            self._send(200, b'{"latitude": 1.0, "hourly": {"time": [')
            return
        params = {k: v[-1] for k, v in parse_qs(query_string, keep_blank_values=True).items()}
        try:
            query = parse_query(params)
        except BadRequest as exc:
            self._json(400, {"error": True, "reason": str(exc)})
            return
        start_h = (query.start - EPOCH).days * 24
        hours = range(start_h, start_h + ((query.end - query.start).days + 1) * 24)
        answers = [answer_point(*point, query, hours) for point in query.points]
        bodies = [a.body for a in answers]
        document = bodies[0] if len(bodies) == 1 else bodies
        payload = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        if failure is not None and failure.kind == "truncated":
            self._send(200, payload[: len(payload) // 2], length=len(payload))
            self.close_connection = True
            return
        self._send(200, payload)
        self.server.record(answers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    # As a container's PID 1, an unhandled SIGTERM would be ignored until the SIGKILL.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = FakeArchive((args.host, args.port), args.verbose)
    print(f"open_meteo_archive: listening on {args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
