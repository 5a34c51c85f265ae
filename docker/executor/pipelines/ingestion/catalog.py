"""The landslide catalog's row model: validation of source rows, the normalised buffer format."""

import re
from collections.abc import Callable, Mapping
from dataclasses import astuple, dataclass, fields
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

REQUIRED_SOURCE_COLUMNS = ("id", "date", "latitude", "longitude")
# Optional free-text source columns -> table columns.
TEXT_SOURCE_COLUMNS = {
    "timezone": "timezone",
    "country": "country",
    "nearest_places": "nearest_place",
    "continentcode": "continent_code",
    "hazard_type": "hazard_type",
    "landslide_type": "landslide_type",
    "landslide_size": "landslide_size",
    "trigger": "landslide_trigger",
}
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_INTEGRAL = re.compile(r"\d+(?:\.0*)?")
T = TypeVar("T")


@dataclass(frozen=True)
class Event:
    event_id: int
    event_date: date
    event_time: time | None
    timezone: str | None
    country: str | None
    nearest_place: str | None
    continent_code: str | None
    latitude: Decimal
    longitude: Decimal
    hazard_type: str | None
    landslide_type: str | None
    landslide_size: str | None
    landslide_trigger: str | None
    fatalities: int | None
    injuries: int | None

    def as_row(self) -> tuple[object, ...]:
        return astuple(self)

    def to_csv(self) -> list[str]:
        return ["" if value is None else _csv_text(value) for value in astuple(self)]


# Columns of the warehouse staging table `event`, in buffer-file order.
COLUMNS = tuple(f.name for f in fields(Event))


@dataclass(frozen=True)
class Problem:
    field: str
    reason: str


class RowError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in problems))
        self.problems = problems


def parse_source_row(row: Mapping[str, str | None]) -> tuple[Event, list[Problem]]:
    """Validate one catalog row; returns the event and non-fatal warnings, or raises RowError."""
    problems: list[Problem] = []
    warnings: list[Problem] = []

    def take(field: str, parse: Callable[[str], Any], required: bool = False) -> Any:
        raw = (row.get(field) or "").strip()
        if not raw:
            if required:
                problems.append(Problem(field, "required value is empty"))
            return None
        try:
            return parse(raw)
        except ValueError as exc:
            problems.append(Problem(field, str(exc)))
            return None

    values = {
        "event_id": take("id", _positive_int, required=True),
        "event_date": take("date", _us_date, required=True),
        "event_time": take("time", lambda raw: _clock_time(raw, warnings)),
        "latitude": take("latitude", lambda raw: _coordinate(raw, 90), required=True),
        "longitude": take("longitude", lambda raw: _coordinate(raw, 180), required=True),
        "fatalities": take("fatalities", _count),
        "injuries": take("injuries", _count),
    }
    for source, column in TEXT_SOURCE_COLUMNS.items():
        values[column] = take(source, str)
    if problems:
        raise RowError(problems)
    return Event(**values), warnings


def parse_buffer_row(row: Mapping[str, str]) -> Event:
    """Read back a row written by `Event.to_csv` (already validated, so parsing is strict)."""

    def opt(column: str, parse: Callable[[str], T]) -> T | None:
        raw = row[column]
        return parse(raw) if raw else None

    return Event(
        event_id=int(row["event_id"]),
        event_date=date.fromisoformat(row["event_date"]),
        event_time=opt("event_time", time.fromisoformat),
        timezone=opt("timezone", str),
        country=opt("country", str),
        nearest_place=opt("nearest_place", str),
        continent_code=opt("continent_code", str),
        latitude=Decimal(row["latitude"]),
        longitude=Decimal(row["longitude"]),
        hazard_type=opt("hazard_type", str),
        landslide_type=opt("landslide_type", str),
        landslide_size=opt("landslide_size", str),
        landslide_trigger=opt("landslide_trigger", str),
        fatalities=opt("fatalities", int),
        injuries=opt("injuries", int),
    )


def _csv_text(value: object) -> str:
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _positive_int(raw: str) -> int:
    if not raw.isdigit() or int(raw) == 0:
        raise ValueError(f"must be a positive integer, got {raw!r}")
    return int(raw)


def _us_date(raw: str) -> date:
    try:
        return datetime.strptime(raw, "%m/%d/%Y").date()
    except ValueError:
        raise ValueError(f"must be a valid MM/DD/YYYY date, got {raw!r}") from None


def _clock_time(raw: str, warnings: list[Problem]) -> time | None:
    match = _CLOCK.fullmatch(raw)
    if match is None:
        # The catalog uses words like "night" for unknown clock times: keep the row, drop the time.
        warnings.append(Problem("time", f"{raw!r} is not a clock time; stored as NULL"))
        return None
    hour, minute, second = (int(part or 0) for part in match.groups())
    try:
        return time(hour, minute, second)
    except ValueError:
        raise ValueError(f"must be a valid H:MM[:SS] time, got {raw!r}") from None


def _coordinate(raw: str, limit: int) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"must be a number, got {raw!r}") from None
    if not value.is_finite() or not -limit <= value <= limit:
        raise ValueError(f"must be between -{limit} and {limit}, got {raw!r}")
    return value


def _count(raw: str) -> int:
    # The catalog stores counts as floats ("2.0"); anything fractional or negative is invalid.
    if not _INTEGRAL.fullmatch(raw):
        raise ValueError(f"must be a non-negative whole number, got {raw!r}")
    return int(Decimal(raw))
