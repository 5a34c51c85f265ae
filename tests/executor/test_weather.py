"""The Open-Meteo archive client (weather.py) and fetch_weather.py against the local fake archive.

The fake (tests/fakes/open_meteo_archive.py) runs in a thread on a free port; its values and gap
rule are deterministic, so row and gap counts are compared with what it says it served.
"""

import csv
import dataclasses
import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from conftest import PIPELINES, REPO, child_env

import import_weather
from weather import (
    DATA_COLUMNS,
    VARIABLES,
    ArchiveCache,
    ArchiveClient,
    FetchOutcome,
    RateLimiter,
    RowCounts,
    Settings,
    WeatherEvent,
    Window,
    iter_rows,
)

sys.path.insert(0, str(REPO / "tests" / "fakes"))
import open_meteo_archive as fake_archive

DAY = "2024-05-17"
HOURS = 30 * 24
JUNE = date(2007, 6, 11)
AUGUST = date(2008, 8, 29)
POINTS = [
    ("54.5494", "-3.5875"),
    ("-10.3838", "-75.4267"),
    ("27.7172", "85.3240"),
    ("47.3769", "8.5417"),
    ("-33.8688", "151.2093"),
]


@pytest.fixture
def fake() -> Iterator[fake_archive.FakeArchive]:
    server = fake_archive.start()
    yield server
    server.stop()


def make_settings(url: str, platform: dict[str, Any], **overrides: Any) -> Settings:
    """The platform's settings, made fast for tests (no backoff, short timeout, 3 attempts)."""
    fast = Settings.from_platform(
        platform["weather"], url, "1000000", backoff_base=0.0, timeout_seconds=5.0, max_attempts=3
    )
    return dataclasses.replace(fast, **overrides)


def events_at(day: date, points: list[tuple[str, str]], first_id: int = 1) -> list[WeatherEvent]:
    return [WeatherEvent(first_id + i, lat, lon, day) for i, (lat, lon) in enumerate(points)]


class Recorder(httpx.HTTPTransport):
    """A real transport remembering each request's URL and the (injected) clock at its start."""

    def __init__(self, clock: Callable[[], float] = lambda: 0.0) -> None:
        super().__init__()
        self.urls: list[httpx.URL] = []
        self.times: list[float] = []
        self._clock = clock

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(request.url)
        self.times.append(self._clock())
        return super().handle_request(request)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def run(
    settings: Settings, cache_dir: Path, events: list[WeatherEvent], **client: Any
) -> tuple[FetchOutcome, list[dict[str, str]], RowCounts]:
    client.setdefault("sleep", lambda _: None)
    cache = ArchiveCache(cache_dir)
    try:
        with ArchiveClient(settings, cache, **client) as archive:
            outcome = archive.fetch(events)
        counts = RowCounts()
        rows = [
            dict(zip(DATA_COLUMNS, row, strict=True))
            for row in iter_rows(cache, settings, outcome.succeeded, counts)
        ]
    finally:
        cache.close()
    return outcome, rows, counts


def gap_hours(lat: str, lon: str, window: Window) -> list[int]:
    s = fake_archive.seed(round(float(lat), 2), round(float(lon), 2))
    first = (window.start - fake_archive.EPOCH).days * 24
    return [h for h in range(first, first + HOURS) if fake_archive.is_gap(h, s)]


def observed_at(h: int) -> str:
    """The buffer's observed_at of the fake's hour h (GMT)."""
    return f"{fake_archive.EPOCH + timedelta(days=h // 24)} {h % 24:02d}:00:00"


# --- the client against the fake ------------------------------------------------------------


def test_one_request_per_date_with_parameters_honoured(
    tmp_path: Path, fake: fake_archive.FakeArchive, platform: dict[str, Any]
) -> None:
    settings = make_settings(fake.url, platform)
    events = events_at(JUNE, POINTS[:3]) + events_at(AUGUST, POINTS[3:], first_id=4)
    recorder = Recorder()
    outcome, rows, counts = run(settings, tmp_path, events, transport=recorder)

    assert outcome.failures == []
    assert (outcome.requests, outcome.retries, len(outcome.fetched)) == (2, 0, 5)
    first = recorder.urls[0]
    assert first.path == "/v1/archive"
    assert dict(first.params) == {
        "latitude": "54.5494,-10.3838,27.7172",
        "longitude": "-3.5875,-75.4267,85.3240",
        "start_date": "2007-05-12",  # 30 days before the event
        "end_date": "2007-06-10",  # the day before it
        "hourly": ",".join(platform["weather"]["hourly"]),
        "timezone": "auto",
    }
    assert recorder.urls[1].params["start_date"] == "2008-07-30"

    served = fake.served()
    assert served["locations"] == 5
    assert counts.rows == len(rows) == served["observations"]
    assert counts.gap_hours == served["gap_hours"] > 0
    assert counts.rows + counts.gap_hours == 5 * HOURS
    assert counts.duplicate_hours == 0
    # Rows carry the events' coordinates, never the API's snapped ones.
    assert {(r["latitude"], r["longitude"]) for r in rows} == set(POINTS)
    assert rows[0]["timezone"] == "GMT"
    assert rows[0]["observed_at"] == "2007-05-12 00:00:00"
    assert rows[0]["elevation"] == str(fake_archive.elevation(54.55, -3.59))


def test_values_map_to_columns_and_gaps_are_counted_exactly(
    tmp_path: Path, fake: fake_archive.FakeArchive, platform: dict[str, Any]
) -> None:
    settings = make_settings(fake.url, platform)
    lat, lon = POINTS[0]
    _, rows, counts = run(settings, tmp_path, events_at(JUNE, [POINTS[0]]))
    window = Window.before(JUNE, 30)
    gaps = gap_hours(lat, lon, window)
    assert counts.gap_hours == len(gaps) > 0
    assert len(rows) == HOURS - len(gaps)
    by_time = {r["observed_at"]: r for r in rows}
    assert not {observed_at(h) for h in gaps} & set(by_time)
    first_h = (window.start - fake_archive.EPOCH).days * 24

    slat, slon = 54.55, -3.59
    s = fake_archive.seed(slat, slon)
    checked = partial = 0
    for h in range(first_h, first_h + HOURS):
        if fake_archive.is_gap(h, s):
            continue
        row = by_time[observed_at(h)]
        expected = fake_archive.hour_values(slat, slon, s, h)
        hole = fake_archive.single_null(h, s)
        for i, name in enumerate(fake_archive.VARIABLES):
            column = VARIABLES[name][0]
            assert row[column] == ("" if i == hole else str(expected[i])), (h, column)
        checked += 1
        partial += hole is not None
    assert checked == len(rows)
    assert partial > 0  # some rows have exactly one empty field


def test_several_events_at_one_point_and_date_share_a_point_and_rows(
    tmp_path: Path, fake: fake_archive.FakeArchive, platform: dict[str, Any]
) -> None:
    settings = make_settings(fake.url, platform)
    twins = [WeatherEvent(1, *POINTS[0], JUNE), WeatherEvent(2, *POINTS[0], JUNE)]
    recorder = Recorder()
    outcome, rows, counts = run(settings, tmp_path, twins, transport=recorder)
    assert recorder.urls[0].params["latitude"] == POINTS[0][0]
    assert len(outcome.fetched) == 2
    assert counts.rows == fake.served()["observations"]
    assert len({r["observed_at"] for r in rows}) == len(rows)


def test_batches_hold_at_most_locations_per_request(
    tmp_path: Path, fake: fake_archive.FakeArchive, platform: dict[str, Any]
) -> None:
    settings = make_settings(fake.url, platform, locations_per_request=2)
    recorder = Recorder()
    outcome, _, _ = run(settings, tmp_path, events_at(JUNE, POINTS), transport=recorder)
    assert [len(u.params["latitude"].split(",")) for u in recorder.urls] == [2, 2, 1]
    assert len(outcome.fetched) == 5


def test_cache_makes_a_rerun_free_and_serves_overlapping_windows(
    tmp_path: Path, fake: fake_archive.FakeArchive, platform: dict[str, Any]
) -> None:
    settings = make_settings(fake.url, platform)
    cache_dir = tmp_path / "cache" / "open-meteo"  # created on first use
    events = events_at(JUNE, POINTS[:3])
    _, rows1, counts1 = run(settings, cache_dir, events)
    assert (cache_dir / "archive.sqlite").is_file()
    second, rows2, counts2 = run(settings, cache_dir, events)
    assert (second.requests, len(second.from_cache), len(second.fetched)) == (0, 3, 0)
    assert rows2 == rows1
    assert (counts2.rows, counts2.gap_hours) == (counts1.rows, counts1.gap_hours)
    assert fake.served()["requests"] == 1

    # A later event at the same point overlaps the cached window: fetched once, written once.
    later = WeatherEvent(9, *POINTS[0], JUNE + timedelta(days=10))
    third, rows3, _ = run(settings, cache_dir, [events[0], later])
    assert (third.requests, len(third.from_cache), len(third.fetched)) == (1, 1, 1)
    stamps = [r["observed_at"] for r in rows3]
    assert len(stamps) == len(set(stamps))
    assert min(stamps) == "2007-05-12 00:00:00" and max(stamps) == "2007-06-20 23:00:00"


@pytest.mark.parametrize(
    ("kind", "options", "needle"),
    [
        ("429", {"retry_after": 7}, "HTTP 429"),
        ("500", {}, "HTTP 500"),
        ("503", {}, "HTTP 503"),
        ("malformed", {}, "malformed JSON"),
        ("truncated", {}, "RemoteProtocolError"),
        ("slow", {"seconds": 1.0}, "timed out"),
    ],
)
def test_transient_failures_are_retried_then_succeed(
    tmp_path: Path,
    fake: fake_archive.FakeArchive,
    platform: dict[str, Any],
    kind: str,
    options: dict[str, Any],
    needle: str,
) -> None:
    settings = make_settings(fake.url, platform, timeout_seconds=0.3, backoff_base=0.01)
    fake.fail_next(kind, times=2, **options)
    slept: list[float] = []
    outcome, rows, _ = run(settings, tmp_path, events_at(JUNE, POINTS[:2]), sleep=slept.append)
    assert outcome.failures == []
    assert (outcome.requests, outcome.retries, len(outcome.fetched)) == (3, 2, 2)
    assert len(rows) == fake.served()["observations"]
    if kind == "429":
        assert slept == [7, 7]  # Retry-After honoured over the tiny backoff
    else:
        assert len(slept) == 2 and 0.005 <= slept[0] <= 0.01 and 0.01 <= slept[1] <= 0.02


def test_gives_up_after_max_attempts_for_that_batch_only(
    tmp_path: Path, fake: fake_archive.FakeArchive, platform: dict[str, Any]
) -> None:
    settings = make_settings(fake.url, platform, max_attempts=3)
    fake.fail_next("500", times=3)
    events = events_at(JUNE, POINTS[:2]) + events_at(AUGUST, POINTS[2:], first_id=3)
    outcome, rows, _ = run(settings, tmp_path, events)
    assert (outcome.requests, outcome.retries) == (4, 2)
    assert [f.event.event_id for f in outcome.failures] == [1, 2]
    report = outcome.failures[0].as_report()
    assert report == {
        "event_id": 1,
        "latitude": "54.5494",
        "longitude": "-3.5875",
        "start_date": "2007-05-12",
        "end_date": "2007-06-10",
        "error": "gave up after 3 attempts: HTTP 500: Injected failure",
    }
    assert [e.event_id for e in outcome.fetched] == [3, 4, 5]
    assert {(r["latitude"], r["longitude"]) for r in rows} == set(POINTS[2:])


def test_http_400_is_not_retried_and_its_reason_recorded(
    tmp_path: Path, fake: fake_archive.FakeArchive, platform: dict[str, Any]
) -> None:
    settings = make_settings(fake.url, platform)
    events = [WeatherEvent(1, "91.5", "0", JUNE), *events_at(AUGUST, POINTS[:1], first_id=2)]
    outcome, rows, _ = run(settings, tmp_path, events)
    assert (outcome.requests, outcome.retries) == (2, 0)
    assert [f.event.event_id for f in outcome.failures] == [1]
    assert outcome.failures[0].error == (
        "HTTP 400: Latitude must be in range of -90 to 90°. Given: 91.5."
    )
    assert [e.event_id for e in outcome.fetched] == [2]
    assert rows


def test_consecutive_exhausted_batches_stop_further_requests(
    tmp_path: Path, fake: fake_archive.FakeArchive, platform: dict[str, Any]
) -> None:
    settings = make_settings(fake.url, platform, max_attempts=2, give_up_after_failed_batches=2)
    fake.fail_next("500", times=100)
    days = [JUNE + timedelta(days=i) for i in range(4)]
    events = [WeatherEvent(i + 1, *POINTS[i], d) for i, d in enumerate(days)]
    outcome, rows, _ = run(settings, tmp_path, events)
    assert outcome.requests == 4  # two batches x two attempts, then nothing more is sent
    assert [f.error.split(":")[0] for f in outcome.failures] == [
        "gave up after 2 attempts",
        "gave up after 2 attempts",
        "not requested",
        "not requested",
    ]
    assert rows == []


def test_request_starts_are_spaced_by_the_rate_limit(
    tmp_path: Path, fake: fake_archive.FakeArchive, platform: dict[str, Any]
) -> None:
    clock = FakeClock()
    settings = make_settings(fake.url, platform, requests_per_minute=30)  # one per 2 s
    recorder = Recorder(clock)
    days = [JUNE + timedelta(days=i) for i in range(3)]
    events = [WeatherEvent(i + 1, *POINTS[i], d) for i, d in enumerate(days)]
    outcome, _, _ = run(
        settings, tmp_path, events, transport=recorder, clock=clock, sleep=clock.sleep
    )
    assert outcome.requests == 3
    assert recorder.times == [1000.0, 1002.0, 1004.0]
    assert clock.slept == [2.0, 2.0]


def test_base_url_may_name_the_archive_path_or_only_the_host(platform: dict[str, Any]) -> None:
    for base in ("http://archive:8000", "http://archive:8000/", "http://archive:8000/v1/archive"):
        assert make_settings(base, platform).url == "http://archive:8000/v1/archive"
    for bad in ("archive:8000", "ftp://archive", ""):
        with pytest.raises(ValueError, match="base URL must be"):
            make_settings(bad, platform)


def test_rate_limiter_sleeps_only_what_is_left() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, clock, clock.sleep)  # one per second
    limiter.wait()
    clock.now += 0.25
    limiter.wait()
    clock.now += 5
    limiter.wait()
    assert clock.slept == [0.75]


# --- response validation with hand-made responses ---------------------------------------------


def point_body(window: Window, variables: tuple[str, ...], **changes: Any) -> dict[str, Any]:
    times = [f"{d}T{hh:02d}:00" for d in window.days() for hh in range(24)]
    body: dict[str, Any] = {
        "latitude": 1.0,
        "longitude": 2.0,
        "elevation": 12.0,
        "timezone": "Europe/Berlin",
        "utc_offset_seconds": 3600,
        "hourly_units": {"time": "iso8601", **{v: VARIABLES[v][1] for v in variables}},
        "hourly": {"time": times, **{v: [1.5] * len(times) for v in variables}},
    }
    body.update(changes)
    return body


def mocked(
    tmp_path: Path, platform: dict[str, Any], body: Callable[[Window, tuple[str, ...]], Any]
) -> tuple[FetchOutcome, list[dict[str, str]], RowCounts]:
    settings = make_settings("http://archive.invalid", platform)
    window = Window.before(JUNE, settings.window_days)
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, json=body(window, settings.hourly))
    )
    return run(settings, tmp_path, events_at(JUNE, POINTS[:1]), transport=transport)


def test_dst_fall_back_duplicates_keep_the_first_and_are_counted(
    tmp_path: Path, platform: dict[str, Any]
) -> None:
    def body(window: Window, variables: tuple[str, ...]) -> dict[str, Any]:
        doc = point_body(window, variables)
        hourly = doc["hourly"]
        at = hourly["time"].index(f"{window.start + timedelta(days=3)}T02:00")
        hourly["time"].insert(at + 1, hourly["time"][at])  # 02:00 twice
        for v in variables:
            hourly[v].insert(at + 1, 99.0)
        hourly[variables[0]][5] = None  # a partial hour stays a row
        for v in variables:  # an all-null hour is a gap
            hourly[v][7] = None
        return doc

    outcome, rows, counts = mocked(tmp_path, platform, body)
    assert outcome.failures == []
    assert (counts.rows, counts.gap_hours, counts.duplicate_hours) == (HOURS - 1, 1, 1)
    assert "99.0" not in {r["temperature"] for r in rows}
    assert rows[5]["temperature"] == "" and rows[5]["rain"] == "1.5"
    assert rows[0]["timezone"] == "Europe/Berlin" and rows[0]["elevation"] == "12.0"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda d: d["hourly_units"].pop("rain"), "hourly_units lacks 'rain'"),
        (
            lambda d: d["hourly_units"].update(temperature_2m="°F"),
            "unit of 'temperature_2m' is '°F', expected '°C'",
        ),
        (lambda d: d["hourly"]["rain"].pop(), "hourly.rain has 719 values for 720 times"),
        (lambda d: d["hourly"].pop("precipitation"), "hourly lacks 'precipitation'"),
        (lambda d: d["hourly"]["time"].pop(), "hourly.temperature_2m has 720 values for 719"),
        (lambda d: d.pop("timezone"), "response lacks a timezone"),
        (lambda d: d["hourly"]["rain"].__setitem__(3, "wet"), "neither a number nor null"),
        (lambda d: d.update(hourly=None), "response lacks 'hourly' or 'hourly_units'"),
    ],
)
def test_malformed_points_fail_with_a_clear_message(
    tmp_path: Path, platform: dict[str, Any], change: Callable[[dict[str, Any]], Any], error: str
) -> None:
    def body(window: Window, variables: tuple[str, ...]) -> dict[str, Any]:
        doc = point_body(window, variables)
        change(doc)
        return doc

    outcome, rows, _ = mocked(tmp_path, platform, body)
    assert outcome.requests == 1  # a well-formed but wrong answer is not retried
    assert len(outcome.failures) == 1 and rows == []
    assert error in outcome.failures[0].error


def test_a_short_array_fails_the_batch(tmp_path: Path, platform: dict[str, Any]) -> None:
    settings = make_settings("http://archive.invalid", platform)
    window = Window.before(JUNE, settings.window_days)
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, json=[point_body(window, settings.hourly)])
    )
    outcome, _, _ = run(settings, tmp_path, events_at(JUNE, POINTS[:2]), transport=transport)
    assert [f.error for f in outcome.failures] == ["expected a JSON array of 2 points, got 1"] * 2


# --- the fake itself --------------------------------------------------------------------------


def test_fake_rejects_bad_parameters(fake: fake_archive.FakeArchive) -> None:
    good = {
        "latitude": "1.5",
        "longitude": "2.5",
        "start_date": "2007-01-01",
        "end_date": "2007-01-02",
        "hourly": "rain",
    }
    bad = [
        ({"start_date": "2007-13-01"}, "Invalid date"),
        ({"end_date": "01/02/2007"}, "Invalid date format"),
        ({"start_date": "2007-01-03"}, "End-date must be larger or equal than start-date"),
        ({"latitude": "-90.5"}, "Latitude must be in range of -90 to 90°"),
        ({"longitude": "2.5,3"}, "same number of elements"),
        ({"hourly": "rain,snow"}, "invalid String value snow"),
        ({"timezone": "Mars/Olympus"}, "Invalid timezone"),
    ]
    with httpx.Client(base_url=fake.url) as http:
        assert http.get("/v1/archive", params=good).status_code == 200
        for change, reason in bad:
            response = http.get("/v1/archive", params={**good, **change})
            assert response.status_code == 400, change
            assert response.json()["error"] is True
            assert reason in response.json()["reason"], change
        missing = {k: v for k, v in good.items() if k != "start_date"}
        assert http.get("/v1/archive", params=missing).status_code == 400


def test_fake_serves_arrays_snaps_coordinates_and_obeys_control(
    fake: fake_archive.FakeArchive,
) -> None:
    params = {
        "latitude": "54.5494,-10.3838",
        "longitude": "-3.5875,-75.4267",
        "start_date": "2007-01-01",
        "end_date": "2007-01-01",
        "hourly": "temperature_2m,soil_moisture_0_to_7cm",
        "timezone": "auto",
    }
    with httpx.Client(base_url=fake.url) as http:
        points = http.get("/v1/archive", params=params).json()
        assert [(p["latitude"], p["longitude"]) for p in points] == [
            (54.55, -3.59),
            (-10.38, -75.43),
        ]
        assert points[0]["timezone"] == "GMT" and points[0]["utc_offset_seconds"] == 0
        assert points[0]["hourly_units"]["soil_moisture_0_to_7cm"] == "m³/m³"
        assert len(points[0]["hourly"]["time"]) == 24
        assert http.post("/control", json={"kind": "429", "times": 1, "retry_after": 3}).is_success
        limited = http.get("/v1/archive", params=params)
        assert (limited.status_code, limited.headers["Retry-After"]) == (429, "3")
        served = http.get("/served").json()
        assert served["requests"] == 2 and served["locations"] == 2
        assert served["observations"] + served["gap_hours"] == 48
        assert http.post("/control", json={"kind": "nonsense"}).status_code == 400
        http.post("/control", json={"reset": True})
        assert http.get("/served").json()["requests"] == 0


def test_fake_values_stay_in_warehouse_ranges() -> None:
    for lat, lon in [(89.99, 179.99), (-89.99, -179.99), (0.0, 0.0), (45.0, -120.0)]:
        s = fake_archive.seed(lat, lon)
        for h in range(0, 24 * 366 * 3, 7):
            t, rh, p, rain, *rest = fake_archive.hour_values(lat, lon, s, h)
            soil_t, soil_m = rest[:4], rest[4:]
            assert -100 <= t <= 70 and 0 <= rh <= 100 and 0 <= rain <= p
            assert all(-100 <= x <= 70 for x in soil_t) and all(0 <= x <= 1 for x in soil_m)


# --- fetch_weather.py as the executor runs it, against a real warehouse -----------------------


def run_fetch(
    generated_dir: Path,
    platform: dict[str, Any],
    buffer_dir: Path,
    env: dict[str, str],
    *args: str,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PIPELINES / "fetch_weather.py"), "--date", DAY,
         "--buffer-dir", str(buffer_dir), "--cache-dir", str(buffer_dir / "cache"),
         "--backoff-base", "0", *args],
        env=child_env(generated_dir, **env), capture_output=True, text=True, check=False,
        timeout=300,
    )  # fmt: skip


def script_env(platform: dict[str, Any], warehouse_url: str, base_url: str) -> dict[str, str]:
    names = platform["env"]
    return {
        names["warehouseUrl"]: warehouse_url,
        names["weatherBaseUrl"]: base_url,
        names["weatherRequestsPerMinute"]: "100000",
    }


def insert_events(url: str, events: list[tuple[int, date, str, str]]) -> None:
    with psycopg.connect(url) as conn:
        conn.cursor().executemany(
            "INSERT INTO event (event_id, event_date, latitude, longitude) "
            "VALUES (%s, %s, %s::numeric, %s::numeric)",
            events,
        )


def outputs(buffer_dir: Path) -> tuple[dict[str, Any], list[dict[str, str]], list[str]]:
    day_dir = buffer_dir / "weather" / DAY
    report = json.loads((day_dir / "report.json").read_text())
    text = (day_dir / "hourly.csv").read_text()
    assert text.splitlines()[0] == ",".join(DATA_COLUMNS)
    return (
        report,
        list(csv.DictReader(io.StringIO(text))),
        sorted(p.name for p in day_dir.iterdir()),
    )


def test_fetch_weather_writes_buffer_and_report_then_selects_nothing_once_loaded(
    tmp_path: Path,
    generated_dir: Path,
    warehouse_url: str,
    platform: dict[str, Any],
    fake: fake_archive.FakeArchive,
) -> None:
    rows_in = [(i + 1, JUNE if i < 3 else AUGUST, lat, lon) for i, (lat, lon) in enumerate(POINTS)]
    insert_events(warehouse_url, rows_in)
    env = script_env(platform, warehouse_url, fake.url)
    fake.fail_next("500")
    first = run_fetch(generated_dir, platform, tmp_path, env)
    assert first.returncode == 0, first.stderr
    assert (
        "fetch_weather: selected=5 fetched=5 cached=0 failed=0 requests=3 retries=1" in first.stdout
    )
    assert warehouse_url not in first.stdout + first.stderr
    report, rows, names = outputs(tmp_path)
    served = fake.served()
    assert report == {
        "events_selected": 5,
        "events_fetched": 5,
        "events_from_cache": 0,
        "requests": 3,
        "retries": 1,
        "rows": served["observations"],
        "gap_hours": served["gap_hours"],
        "duplicate_hours": 0,
        "failures": [],
    }
    assert names == ["hourly.csv", "report.json"]  # no temp files left behind
    assert len(rows) == report["rows"]
    assert ("27.7172", "85.3240") in {(r["latitude"], r["longitude"]) for r in rows}

    loaded = import_weather.load(warehouse_url, tmp_path / "weather" / DAY / "hourly.csv")
    assert loaded.inserted == served["observations"]

    second = run_fetch(generated_dir, platform, tmp_path, env)
    assert second.returncode == 0, second.stderr
    report, rows, _ = outputs(tmp_path)
    assert (report["events_selected"], report["requests"], report["rows"], rows) == (0, 0, 0, [])

    insert_events(warehouse_url, [(6, AUGUST + timedelta(days=1), *POINTS[3])])
    third = run_fetch(generated_dir, platform, tmp_path, env)
    assert third.returncode == 0, third.stderr
    report, rows, _ = outputs(tmp_path)
    # Event 6's window overlaps loaded data at its point but for its last day: one request for
    # that day's window, whose other days are loaded already and skipped on import.
    assert (report["events_selected"], report["requests"]) == (1, 1)
    assert any(r["observed_at"].startswith(AUGUST.isoformat()) for r in rows)
    import_weather.load(warehouse_url, tmp_path / "weather" / DAY / "hourly.csv")
    insert_events(warehouse_url, [(7, JUNE, "10.5", "20.25")])
    fourth = run_fetch(generated_dir, platform, tmp_path, env)
    assert fourth.returncode == 0, fourth.stderr
    report, rows, _ = outputs(tmp_path)
    assert (report["events_selected"], report["events_fetched"], report["requests"]) == (1, 1, 1)
    assert {(r["latitude"], r["longitude"]) for r in rows} == {("10.5", "20.25")}


def test_fetch_weather_fails_when_every_event_fails(
    tmp_path: Path,
    generated_dir: Path,
    warehouse_url: str,
    platform: dict[str, Any],
    fake: fake_archive.FakeArchive,
) -> None:
    insert_events(warehouse_url, [(1, JUNE, *POINTS[0]), (2, AUGUST, *POINTS[1])])
    fake.fail_next("503", times=100)
    done = run_fetch(
        generated_dir, platform, tmp_path, script_env(platform, warehouse_url, fake.url)
    )
    attempts = platform["weather"]["maxAttempts"]
    assert done.returncode == 1
    assert "fetch_weather: all 2 events to fetch failed; first error: gave up after" in done.stderr
    report, rows, _ = outputs(tmp_path)
    assert (report["requests"], report["retries"]) == (2 * attempts, 2 * (attempts - 1))
    assert [f["event_id"] for f in report["failures"]] == [1, 2]
    assert rows == []


def test_fetch_weather_with_nothing_to_do_writes_an_empty_csv(
    tmp_path: Path,
    generated_dir: Path,
    warehouse_url: str,
    platform: dict[str, Any],
    fake: fake_archive.FakeArchive,
) -> None:
    done = run_fetch(
        generated_dir, platform, tmp_path, script_env(platform, warehouse_url, fake.url)
    )
    assert done.returncode == 0, done.stderr
    report, rows, _ = outputs(tmp_path)
    assert (report["events_selected"], rows, fake.served()["requests"]) == (0, [], 0)


def test_fetch_weather_reads_the_warehouse_url_from_its_file(
    tmp_path: Path,
    generated_dir: Path,
    warehouse_url: str,
    platform: dict[str, Any],
    fake: fake_archive.FakeArchive,
) -> None:
    """The stack passes the URL as a file (NAME_FILE), never as a value in the environment."""
    name = platform["env"]["warehouseUrl"]
    secret = tmp_path / "warehouse-url"
    secret.write_text(warehouse_url + "\n")
    env = script_env(platform, warehouse_url, fake.url)
    env[f"{name}_FILE"] = str(secret)
    both = run_fetch(generated_dir, platform, tmp_path, env)
    assert (both.returncode, both.stderr.strip()) == (
        1,
        f"fetch_weather: both {name} and {name}_FILE are set: expected only one",
    )
    del env[name]
    done = run_fetch(generated_dir, platform, tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert "fetch_weather: selected=0 " in done.stdout
    assert warehouse_url not in done.stdout + done.stderr + both.stdout + both.stderr


def test_fetch_weather_needs_its_environment(
    tmp_path: Path, generated_dir: Path, platform: dict[str, Any]
) -> None:
    env = script_env(platform, "postgresql://nobody@127.0.0.1:1/x", "http://127.0.0.1:1")
    for name in env:
        partial = {k: v for k, v in env.items() if k != name}
        done = run_fetch(generated_dir, platform, tmp_path, partial)
        assert done.returncode == 1
        # The warehouse URL's message goes on to name its _FILE variant.
        assert done.stderr.startswith(f"fetch_weather: environment variable {name} is not set")
    bad_rate = {**env, platform["env"]["weatherRequestsPerMinute"]: "fast"}
    done = run_fetch(generated_dir, platform, tmp_path, bad_rate)
    assert (done.returncode, done.stderr.strip()) == (
        1,
        "fetch_weather: requests per minute must be a number, got 'fast'",
    )
    no_db = run_fetch(generated_dir, platform, tmp_path, env)
    assert no_db.returncode == 1 and "OperationalError" in no_db.stderr
    assert not (tmp_path / "weather").exists()
