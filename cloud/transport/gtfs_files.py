"""The GTFS files Ruang reads and writes: their columns, how each field is parsed and written.

One table of `FileSpec`s serves the import (parse and check every field) and the
export (write the stored rows back in the same columns), so the two cannot drift
apart. Field rules follow the GTFS reference (gtfs.org/schedule/reference); a
field that breaks one raises `ValueError` with a message for the person who
made the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cloud.db.models_transport import GTFS_ID

Parse = Callable[[str], Any]
Write = Callable[[Any], str]

# GTFS times may pass 24:00 for trips after midnight; a service day longer than
# two days is a mistake, not a schedule.
MAX_TIME_S = 48 * 3600
_TIME = re.compile(r"^(\d{1,2}):([0-5]\d):([0-5]\d)$")
_DATE = re.compile(r"^\d{8}$")
_COLOR = re.compile(r"^[0-9A-Fa-f]{6}$")
_URL = re.compile(r"^https?://\S+$")


def parse_id(value: str) -> str:
    if len(value) > GTFS_ID:
        raise ValueError(f"an id of at most {GTFS_ID} characters")
    return value


def text(limit: int) -> Parse:
    def parse(value: str) -> str:
        if len(value) > limit:
            raise ValueError(f"at most {limit} characters")
        return value

    return parse


def integer(low: int, high: int) -> Parse:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"a whole number from {low} to {high}") from None
        if not low <= number <= high:
            raise ValueError(f"a whole number from {low} to {high}")
        return number

    return parse


def choice(*allowed: int) -> Parse:
    def parse(value: str) -> int:
        if value not in {str(a) for a in allowed}:
            raise ValueError(f"one of {', '.join(str(a) for a in allowed)}")
        return int(value)

    return parse


def real(low: float, high: float) -> Parse:
    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"a number from {low:g} to {high:g}") from None
        if not low <= number <= high:  # also refuses nan
            raise ValueError(f"a number from {low:g} to {high:g}")
        return number

    return parse


def parse_route_type(value: str) -> int:
    """A basic route type (0-7, 11, 12) or an extended one (100-1702)."""
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not (0 <= number <= 7 or number in (11, 12) or 100 <= number <= 1702):
        raise ValueError("a route type: 0-7, 11, 12 or an extended type 100-1702 (3 = bus)")
    return number


def parse_time(value: str) -> int:
    """H:MM:SS or HH:MM:SS after the service day's noon - 12 h; may pass 24:00:00."""
    match = _TIME.match(value)
    if not match:
        raise ValueError("a time as HH:MM:SS (hours may pass 24 for trips after midnight)")
    hours, minutes, seconds = (int(g) for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total > MAX_TIME_S:
        raise ValueError("a time at most 48:00:00 after the service day starts")
    return total


def write_time(seconds: int | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def parse_date(value: str) -> date:
    if not _DATE.match(value):
        raise ValueError("a date as YYYYMMDD")
    try:
        return datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise ValueError("a date as YYYYMMDD that exists") from None


def write_date(value: date) -> str:
    return value.strftime("%Y%m%d")


def parse_color(value: str) -> str:
    if not _COLOR.match(value):
        raise ValueError("a colour as six hexadecimal digits, e.g. 1B6AC9")
    return value.upper()


def parse_url(value: str) -> str:
    if not _URL.match(value) or len(value) > 500:
        raise ValueError("an http(s) URL of at most 500 characters")
    return value


def parse_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("an IANA time zone, e.g. Asia/Makassar") from None
    return value


def parse_flag(value: str) -> bool:
    if value not in ("0", "1"):
        raise ValueError("0 or 1")
    return value == "1"


def write_plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    return str(value)


@dataclass(frozen=True, slots=True)
class Column:
    """One GTFS field: its name in the file, its SQL column, how it reads and writes."""

    gtfs: str
    db: str
    parse: Parse
    required: bool = False
    write: Write = write_plain


@dataclass(frozen=True, slots=True)
class FileSpec:
    name: str
    table: str  # key of cloud.db.tables' TRANSPORT_* handles, lower case
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # GTFS fields that must be unique together
    required: bool = True

    @property
    def required_columns(self) -> list[str]:
        return [c.gtfs for c in self.columns if c.required]


_LAT = real(-90, 90)
_LON = real(-180, 180)
_DIST = real(0, 1e9)
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

AGENCY = FileSpec(
    "agency.txt",
    "agencies",
    (
        # Optional in GTFS when the feed has one agency; the import fills it in then.
        Column("agency_id", "agency_id", parse_id),
        Column("agency_name", "name", text(200), required=True),
        Column("agency_url", "url", parse_url, required=True),
        Column("agency_timezone", "timezone", parse_timezone, required=True),
        Column("agency_lang", "lang", text(16)),
        Column("agency_phone", "phone", text(64)),
    ),
    ("agency_id",),
)
STOPS = FileSpec(
    "stops.txt",
    "stops",
    (
        Column("stop_id", "stop_id", parse_id, required=True),
        Column("stop_code", "code", text(64)),
        Column("stop_name", "name", text(200), required=True),
        Column("stop_desc", "description", text(500)),
        Column("stop_lat", "lat", _LAT, required=True),
        Column("stop_lon", "lon", _LON, required=True),
        # Generic nodes and boarding areas (3, 4) are pathway detail a shuttle does not need.
        Column("location_type", "location_type", choice(0, 1, 2)),
        Column("parent_station", "parent_station", parse_id),
        Column("wheelchair_boarding", "wheelchair_boarding", choice(0, 1, 2)),
    ),
    ("stop_id",),
)
ROUTES = FileSpec(
    "routes.txt",
    "routes",
    (
        Column("route_id", "route_id", parse_id, required=True),
        Column("agency_id", "agency_id", parse_id),
        Column("route_short_name", "short_name", text(64)),
        Column("route_long_name", "long_name", text(200)),
        Column("route_desc", "description", text(500)),
        Column("route_type", "route_type", parse_route_type, required=True),
        Column("route_color", "color", parse_color),
        Column("route_text_color", "text_color", parse_color),
        Column("route_sort_order", "sort_order", integer(0, 2**31 - 1)),
    ),
    ("route_id",),
)
CALENDAR = FileSpec(
    "calendar.txt",
    "calendar",
    (
        Column("service_id", "service_id", parse_id, required=True),
        *(Column(day, day, parse_flag, required=True) for day in _DAYS),
        Column("start_date", "start_date", parse_date, required=True, write=write_date),
        Column("end_date", "end_date", parse_date, required=True, write=write_date),
    ),
    ("service_id",),
    required=False,  # calendar.txt or calendar_dates.txt, at least one
)
CALENDAR_DATES = FileSpec(
    "calendar_dates.txt",
    "calendar_dates",
    (
        Column("service_id", "service_id", parse_id, required=True),
        Column("date", "date", parse_date, required=True, write=write_date),
        Column("exception_type", "exception_type", choice(1, 2), required=True),
    ),
    ("service_id", "date"),
    required=False,
)
SHAPES = FileSpec(
    "shapes.txt",
    "shapes",
    (
        Column("shape_id", "shape_id", parse_id, required=True),
        Column("shape_pt_lat", "lat", _LAT, required=True),
        Column("shape_pt_lon", "lon", _LON, required=True),
        Column("shape_pt_sequence", "sequence", integer(0, 2**31 - 1), required=True),
        Column("shape_dist_traveled", "dist_traveled", _DIST),
    ),
    ("shape_id", "shape_pt_sequence"),
    required=False,
)
TRIPS = FileSpec(
    "trips.txt",
    "trips",
    (
        Column("route_id", "route_id", parse_id, required=True),
        Column("service_id", "service_id", parse_id, required=True),
        Column("trip_id", "trip_id", parse_id, required=True),
        Column("trip_headsign", "headsign", text(200)),
        Column("trip_short_name", "short_name", text(64)),
        Column("direction_id", "direction_id", choice(0, 1)),
        Column("block_id", "block_id", parse_id),
        Column("shape_id", "shape_id", parse_id),
        Column("wheelchair_accessible", "wheelchair_accessible", choice(0, 1, 2)),
        Column("bikes_allowed", "bikes_allowed", choice(0, 1, 2)),
    ),
    ("trip_id",),
)
STOP_TIMES = FileSpec(
    "stop_times.txt",
    "stop_times",
    (
        Column("trip_id", "trip_id", parse_id, required=True),
        Column("arrival_time", "arrival_s", parse_time, write=write_time),
        Column("departure_time", "departure_s", parse_time, write=write_time),
        Column("stop_id", "stop_id", parse_id, required=True),
        Column("stop_sequence", "stop_sequence", integer(0, 2**31 - 1), required=True),
        Column("stop_headsign", "headsign", text(200)),
        Column("pickup_type", "pickup_type", choice(0, 1, 2, 3)),
        Column("drop_off_type", "drop_off_type", choice(0, 1, 2, 3)),
        Column("shape_dist_traveled", "dist_traveled", _DIST),
        Column("timepoint", "timepoint", choice(0, 1)),
    ),
    ("trip_id", "stop_sequence"),
)

# In the order rows are inserted (referenced files first) and written.
FILES = (AGENCY, STOPS, ROUTES, CALENDAR, CALENDAR_DATES, SHAPES, TRIPS, STOP_TIMES)
# Read and checked for being a readable table, but not stored (the export writes its own).
KNOWN_UNSTORED = frozenset(
    {"feed_info.txt", "transfers.txt", "fare_attributes.txt", "fare_rules.txt", "attributions.txt"}
)
