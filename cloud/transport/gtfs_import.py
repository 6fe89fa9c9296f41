"""GTFS zip import: every file, line and field checked, then the schedule replaced in one go.

All or nothing: a feed with any error changes nothing, and the answer lists every
error (up to `MAX_ERRORS`) as {file, line, field, message}, line 1 being the header.
A valid feed replaces the whole current schedule (agencies, stops, routes,
calendar, calendar_dates, shapes, trips, stop_times) in one transaction; vehicles
and the stops near each site are kept.

The zip is untrusted: its size, its members' sizes as they are read (a header
may lie), their number and their text encoding are all bounded before any of it
is parsed, so a zip bomb or a huge upload costs a refusal, not the server's memory.
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.db import tables
from cloud.errors import Invalid, TooLarge
from cloud.transport import gtfs_files as spec
from cloud.transport.schedule import interpolate_times

log = logging.getLogger(__name__)

MAX_ZIP_BYTES = 20_000_000
MAX_FILE_BYTES = 100_000_000  # one member, uncompressed
MAX_TOTAL_BYTES = 200_000_000  # all members, uncompressed
MAX_MEMBERS = 100
MAX_ERRORS = 200
_CHUNK = 1000  # rows per INSERT


@dataclass(frozen=True, slots=True)
class GtfsError:
    file: str
    line: int  # 0: the zip or the file as a whole
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "message": self.message}


@dataclass(slots=True)
class _Feed:
    """Parsed rows per file (SQL column -> value) with the line each came from."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lines: dict[str, list[int]] = field(default_factory=dict)
    errors: list[GtfsError] = field(default_factory=list)

    def error(self, file: str, line: int, name: str, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(GtfsError(file, line, name, message))


def _refusal(errors: list[GtfsError]) -> Invalid:
    more = " (only the first ones are listed)" if len(errors) >= MAX_ERRORS else ""
    return Invalid(
        f"{len(errors)} problem(s) in the GTFS feed{more}; nothing was imported",
        title="GTFS import refused",
        errors=[e.as_dict() for e in errors],
    )


# --- reading the zip --------------------------------------------------------------------------


def _members(data: bytes) -> dict[str, bytes]:
    """The zip's .txt files at its root, bounded in size; raises Invalid or TooLarge."""
    if len(data) > MAX_ZIP_BYTES:
        raise TooLarge(f"a GTFS zip of at most {MAX_ZIP_BYTES} bytes")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise _refusal([GtfsError("", 0, "", f"not a zip file ({exc})")]) from None
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > MAX_MEMBERS:
            raise _refusal([GtfsError("", 0, "", f"more than {MAX_MEMBERS} files in the zip")])
        out: dict[str, bytes] = {}
        total = 0
        for info in infos:
            name = info.filename
            if "/" in name.strip("/") or "\\" in name:
                if name.rsplit("/", 1)[-1] in {f.name for f in spec.FILES}:
                    raise _refusal(
                        [GtfsError(name, 0, "", "GTFS files must be at the root of the zip")]
                    )
                continue  # e.g. __MACOSX/ metadata
            if info.flag_bits & 0x1:
                raise _refusal([GtfsError(name, 0, "", "encrypted zip members are not read")])
            if info.file_size > MAX_FILE_BYTES or total + info.file_size > MAX_TOTAL_BYTES:
                raise TooLarge(
                    f"{name}: unpacked files of at most {MAX_FILE_BYTES} bytes each, "
                    f"{MAX_TOTAL_BYTES} in all",
                    title="GTFS feed too large",
                )
            try:
                with archive.open(info) as member:
                    # Read one byte past the limit: the header's size may lie.
                    body = member.read(min(MAX_FILE_BYTES, MAX_TOTAL_BYTES - total) + 1)
            except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as exc:
                raise _refusal([GtfsError(name, 0, "", f"cannot be unpacked ({exc})")]) from None
            if len(body) > min(MAX_FILE_BYTES, MAX_TOTAL_BYTES - total):
                raise TooLarge(
                    f"{name} unpacks to more than its limit", title="GTFS feed too large"
                )
            total += len(body)
            out[name] = body
        return out


def _decode(feed: _Feed, name: str, body: bytes) -> str | None:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        feed.error(name, line, "", f"not UTF-8 text (byte 0x{body[exc.start]:02X})")
        return None


# --- parsing each file ------------------------------------------------------------------------


def _parse_file(feed: _Feed, file: spec.FileSpec, body: bytes) -> None:
    content = _decode(feed, file.name, body)
    if content is None:
        return
    if "\x00" in content:
        feed.error(file.name, 0, "", "contains NUL characters: not a text file")
        return
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        feed.error(file.name, 1, "", "empty file: a header row is required")
        return
    except csv.Error as exc:
        feed.error(file.name, 1, "", f"unreadable CSV ({exc})")
        return
    for name in file.required_columns:
        if name not in header:
            feed.error(file.name, 1, name, "required column missing")
    seen = set()
    for name in header:
        if name in seen:
            feed.error(file.name, 1, name, "column appears twice")
        seen.add(name)
    if any(e.file == file.name for e in feed.errors):
        return
    columns = [(i, c) for c in file.columns for i, h in enumerate(header) if h == c.gtfs]
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    first_line: dict[tuple[Any, ...], int] = {}
    try:
        for raw in reader:
            line = reader.line_num
            if not raw or all(not v.strip() for v in raw):
                continue
            if len(raw) != len(header):
                feed.error(file.name, line, "", f"{len(raw)} fields; the header has {len(header)}")
                continue
            row: dict[str, Any] = {}
            ok = True
            for index, column in columns:
                value = raw[index].strip()
                if value == "":
                    if column.required:
                        feed.error(file.name, line, column.gtfs, "required value missing")
                        ok = False
                    row[column.db] = None
                    continue
                try:
                    row[column.db] = column.parse(value)
                except ValueError as exc:
                    feed.error(file.name, line, column.gtfs, f"{value[:40]!r} is not {exc}")
                    ok = False
            for column in file.columns:
                row.setdefault(column.db, None)
            if not ok:
                continue
            key = tuple(row[_db_name(file, k)] for k in file.key)
            if key in first_line:
                feed.error(
                    file.name,
                    line,
                    file.key[-1],
                    f"duplicate {'/'.join(file.key)} {'/'.join(map(str, key))!r} "
                    f"(first on line {first_line[key]})",
                )
                continue
            first_line[key] = line
            rows.append(row)
            lines.append(line)
    except csv.Error as exc:
        feed.error(file.name, reader.line_num, "", f"unreadable CSV ({exc})")
    feed.rows[file.table] = rows
    feed.lines[file.table] = lines


def _db_name(file: spec.FileSpec, gtfs: str) -> str:
    return next(c.db for c in file.columns if c.gtfs == gtfs)


# --- checks across files ----------------------------------------------------------------------


def _check_references(feed: _Feed) -> None:
    rows, lines = feed.rows, feed.lines

    agencies = rows.get("agencies", [])
    if len(agencies) == 1 and agencies[0]["agency_id"] is None:
        agencies[0]["agency_id"] = "1"
    elif any(a["agency_id"] is None for a in agencies):
        for a, line in zip(agencies, lines["agencies"], strict=True):
            if a["agency_id"] is None:
                feed.error("agency.txt", line, "agency_id", "required when there are agencies")
    if not agencies and "agencies" in rows:
        feed.error("agency.txt", 0, "", "at least one agency is required")
    agency_ids = {a["agency_id"] for a in agencies}

    for r, line in zip(rows.get("routes", []), lines.get("routes", []), strict=True):
        if r["agency_id"] is None and len(agencies) == 1:
            r["agency_id"] = agencies[0]["agency_id"]
        elif r["agency_id"] not in agency_ids:
            feed.error("routes.txt", line, "agency_id", f"unknown agency {r['agency_id']!r}")
        if not r["short_name"] and not r["long_name"]:
            feed.error("routes.txt", line, "route_short_name", "a short or a long name is needed")

    stop_ids = {s["stop_id"] for s in rows.get("stops", [])}
    for s, line in zip(rows.get("stops", []), lines.get("stops", []), strict=True):
        if s["location_type"] is None:
            s["location_type"] = 0
        if s["parent_station"] is not None and s["parent_station"] not in stop_ids:
            feed.error("stops.txt", line, "parent_station", f"unknown stop {s['parent_station']!r}")

    for c, line in zip(rows.get("calendar", []), lines.get("calendar", []), strict=True):
        if c["end_date"] < c["start_date"]:
            feed.error("calendar.txt", line, "end_date", "before start_date")
    services = {c["service_id"] for c in rows.get("calendar", [])}
    services |= {d["service_id"] for d in rows.get("calendar_dates", [])}

    shapes: dict[str, list[tuple[int, float | None, int]]] = defaultdict(list)
    for p, line in zip(rows.get("shapes", []), lines.get("shapes", []), strict=True):
        shapes[p["shape_id"]].append((p["sequence"], p["dist_traveled"], line))
    for points in shapes.values():
        points.sort()
        if len(points) < 2:
            feed.error("shapes.txt", points[0][2], "shape_id", "a shape needs two points or more")
        for (_, before, _), (_, after, line) in pairwise(points):
            if before is not None and after is not None and after < before:
                feed.error("shapes.txt", line, "shape_dist_traveled", "decreases along the shape")

    route_ids = {r["route_id"] for r in rows.get("routes", [])}
    trip_ids = set()
    for t, line in zip(rows.get("trips", []), lines.get("trips", []), strict=True):
        trip_ids.add(t["trip_id"])
        if t["route_id"] not in route_ids:
            feed.error("trips.txt", line, "route_id", f"unknown route {t['route_id']!r}")
        if t["service_id"] not in services:
            feed.error(
                "trips.txt",
                line,
                "service_id",
                f"service {t['service_id']!r} is in neither calendar.txt nor calendar_dates.txt",
            )
        if t["shape_id"] is not None and t["shape_id"] not in shapes:
            feed.error("trips.txt", line, "shape_id", f"unknown shape {t['shape_id']!r}")

    _check_stop_times(feed, trip_ids, stop_ids)


def _check_stop_times(feed: _Feed, trip_ids: set[str], stop_ids: set[str]) -> None:
    by_trip: dict[str, list[tuple[dict[str, Any], int]]] = defaultdict(list)
    for st, line in zip(
        feed.rows.get("stop_times", []), feed.lines.get("stop_times", []), strict=True
    ):
        if st["trip_id"] not in trip_ids:
            feed.error("stop_times.txt", line, "trip_id", f"unknown trip {st['trip_id']!r}")
            continue
        if st["stop_id"] not in stop_ids:
            feed.error("stop_times.txt", line, "stop_id", f"unknown stop {st['stop_id']!r}")
        # One of the two given: the other is the same time (no dwell).
        if st["arrival_s"] is None:
            st["arrival_s"] = st["departure_s"]
        elif st["departure_s"] is None:
            st["departure_s"] = st["arrival_s"]
        if st["arrival_s"] is not None and st["departure_s"] < st["arrival_s"]:
            feed.error("stop_times.txt", line, "departure_time", "before arrival_time")
        if st["timepoint"] == 1 and st["arrival_s"] is None:
            feed.error("stop_times.txt", line, "arrival_time", "required at a timepoint")
        by_trip[st["trip_id"]].append((st, line))
    trip_lines = dict(zip((t["trip_id"] for t in feed.rows.get("trips", [])),
                          feed.lines.get("trips", []), strict=True))  # fmt: skip
    for trip_id in sorted(trip_ids):
        stops = sorted(by_trip.get(trip_id, []), key=lambda s: s[0]["stop_sequence"])
        if len(stops) < 2:
            feed.error("trips.txt", trip_lines[trip_id], "trip_id", "a trip needs two stop times")
            continue
        for end in (stops[0], stops[-1]):
            if end[0]["arrival_s"] is None:
                feed.error(
                    "stop_times.txt",
                    end[1],
                    "arrival_time",
                    "required at a trip's first and last stop",
                )
        _fill_times([st for st, _ in stops])
        last_time: int | None = None
        last_dist: float | None = None
        for st, line in stops:
            if st["arrival_s"] is not None:
                if last_time is not None and st["arrival_s"] < last_time:
                    feed.error(
                        "stop_times.txt", line, "arrival_time", "earlier than the stop before it"
                    )
                last_time = st["departure_s"]
            if st["dist_traveled"] is not None:
                if last_dist is not None and st["dist_traveled"] < last_dist:
                    feed.error(
                        "stop_times.txt", line, "shape_dist_traveled", "decreases along the trip"
                    )
                last_dist = st["dist_traveled"]


def _fill_times(stops: list[dict[str, Any]]) -> None:
    """Gives stops between timepoints times interpolated by distance (or by position when
    the feed has no distances), so departures from them can be queried like any other.
    They keep their timepoint=0: the export says they are approximate."""
    if all(st["arrival_s"] is not None for st in stops) or stops[0]["arrival_s"] is None:
        return
    if stops[-1]["arrival_s"] is None:
        return
    dists = [st["dist_traveled"] for st in stops]
    scale = dists if all(d is not None for d in dists) else list(range(len(stops)))
    for key in ("arrival_s", "departure_s"):
        filled = interpolate_times([st[key] for st in stops], scale)
        for st, value in zip(stops, filled, strict=True):
            if st[key] is None:
                st[key] = round(value)


def parse_feed(data: bytes) -> dict[str, list[dict[str, Any]]]:
    """The feed's rows per table (SQL column names), or Invalid/TooLarge naming every error."""
    members = _members(data)
    feed = _Feed()
    for file in spec.FILES:
        if file.name in members:
            _parse_file(feed, file, members[file.name])
        elif file.required:
            feed.error(file.name, 0, "", "required file missing")
    if "calendar.txt" not in members and "calendar_dates.txt" not in members:
        feed.error("calendar.txt", 0, "", "calendar.txt or calendar_dates.txt is required")
    if "frequencies.txt" in members and members["frequencies.txt"].strip().count(b"\n") > 0:
        feed.error(
            "frequencies.txt", 0, "", "frequency-based trips are not supported: list each trip"
        )
    if not feed.errors:
        _check_references(feed)
    if feed.errors:
        raise _refusal(feed.errors)
    return feed.rows


# --- replacing the schedule -------------------------------------------------------------------

SCHEDULE_TABLES = {
    "agencies": tables.TRANSPORT_AGENCIES,
    "stops": tables.TRANSPORT_STOPS,
    "routes": tables.TRANSPORT_ROUTES,
    "calendar": tables.TRANSPORT_CALENDAR,
    "calendar_dates": tables.TRANSPORT_CALENDAR_DATES,
    "shapes": tables.TRANSPORT_SHAPES,
    "trips": tables.TRANSPORT_TRIPS,
    "stop_times": tables.TRANSPORT_STOP_TIMES,
}


async def replace_schedule(conn: AsyncConnection, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Deletes the current schedule and inserts `rows` (not committed: the caller's transaction)."""
    if conn.dialect.name == "postgresql":
        # One import at a time: a second one waits here, then sees the first's rows to
        # delete, instead of inserting beside them. Readers are not blocked.
        await conn.execute(text("LOCK TABLE transport_agencies IN EXCLUSIVE MODE"))
    for file in reversed(spec.FILES):
        await conn.execute(delete(SCHEDULE_TABLES[file.table]))
    for file in spec.FILES:
        batch = rows.get(file.table, [])
        for start in range(0, len(batch), _CHUNK):
            await conn.execute(SCHEDULE_TABLES[file.table].insert(), batch[start : start + _CHUNK])


async def import_gtfs(engine: AsyncEngine, data: bytes) -> dict[str, int]:
    """Checks the zip and, if it has no error, makes it the schedule; rows stored per file."""
    rows = parse_feed(data)
    async with engine.begin() as conn:
        await replace_schedule(conn, rows)
    counts = {file.name: len(rows.get(file.table, [])) for file in spec.FILES}
    log.info("GTFS schedule replaced: %s", counts)
    return counts
