"""The stored GTFS schedule as the rest of transport uses it: service days, trips, TripPlans,
scheduled departures.

- A service runs on a date when calendar.txt says so for that weekday and date
  range, unless calendar_dates.txt removes it (exception 2); calendar_dates.txt
  can also add it (exception 1) on any date.
- GTFS times count from the service day's "noon minus 12 h" in the agency's time
  zone (WITA for the sample), so a trip at 25:10:00 runs at 01:10 the next
  morning and still belongs to the day before. Unix seconds come out.
- A stop's place along the shape (`StopPlan.dist_m`) comes from its
  shape_dist_traveled, mapped onto metres through the shape's own
  shape_dist_traveled (whatever unit the feed uses), or else from projecting the
  stop onto the shape, never going backwards. Without a shape, the line through
  the stops is the shape. Times left empty between timepoints are interpolated
  by distance.

Every function takes an open connection (or session) and only reads.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from cloud.db.tables import (
    TRANSPORT_AGENCIES as AGENCIES,
)
from cloud.db.tables import (
    TRANSPORT_CALENDAR as CALENDAR,
)
from cloud.db.tables import (
    TRANSPORT_CALENDAR_DATES as CALENDAR_DATES,
)
from cloud.db.tables import (
    TRANSPORT_SHAPES as SHAPES,
)
from cloud.db.tables import (
    TRANSPORT_STOP_TIMES as STOP_TIMES,
)
from cloud.db.tables import (
    TRANSPORT_STOPS as STOPS,
)
from cloud.db.tables import (
    TRANSPORT_TRIPS as TRIPS,
)
from cloud.transport.plan import ShapePoint, StopPlan, TripPlan
from ruang.site_defaults import DEFAULT_TIMEZONE

Db = AsyncConnection | AsyncSession
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_EARTH_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class ScheduledTrip:
    """A trip running on one service day, with its first departure and last arrival (Unix s)."""

    trip_id: str
    route_id: str
    service_id: str
    service_date: str  # YYYYMMDD
    headsign: str
    direction_id: int
    shape_id: str | None
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class ScheduledDeparture:
    """A trip leaving a stop, by the timetable."""

    trip_id: str
    route_id: str
    service_date: str
    headsign: str
    stop_id: str
    stop_sequence: int
    departure: float  # Unix seconds


def as_date(day: date | str) -> date:
    """A date, or GTFS's YYYYMMDD text of one."""
    if isinstance(day, date):
        return day
    return datetime.strptime(day, "%Y%m%d").date()


def gtfs_date(day: date) -> str:
    return day.strftime("%Y%m%d")


async def timezone(conn: Db) -> ZoneInfo:
    """The schedule's time zone (its first agency's), WITA when there is no schedule."""
    name = (await conn.execute(select(AGENCIES.c.timezone).limit(1))).scalar()
    return ZoneInfo(name or DEFAULT_TIMEZONE)


def day_start(day: date, tz: ZoneInfo) -> float:
    """Unix seconds of the service day's zero: noon minus 12 h (= midnight without DST)."""
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=tz)
    return (noon - timedelta(hours=12)).timestamp()


async def services_on(conn: Db, day: date | str) -> set[str]:
    """Service ids running on `day`: calendar, minus removals, plus additions."""
    d = as_date(day)
    weekday = CALENDAR.c[_WEEKDAYS[d.weekday()]]
    regular = {
        row[0]
        for row in await conn.execute(
            select(CALENDAR.c.service_id).where(
                weekday.is_(True), CALENDAR.c.start_date <= d, CALENDAR.c.end_date >= d
            )
        )
    }
    for service_id, exception in await conn.execute(
        select(CALENDAR_DATES.c.service_id, CALENDAR_DATES.c.exception_type).where(
            CALENDAR_DATES.c.date == d
        )
    ):
        if exception == 1:
            regular.add(service_id)
        else:
            regular.discard(service_id)
    return regular


async def trips_on(
    conn: Db,
    day: date | str,
    *,
    route: str | None = None,
    stop: str | None = None,
) -> list[ScheduledTrip]:
    """Trips running on service day `day` (optionally of one route / calling at one stop),
    by first departure."""
    d = as_date(day)
    services = await services_on(conn, d)
    if not services:
        return []
    bounds = (
        select(
            STOP_TIMES.c.trip_id,
            func.min(STOP_TIMES.c.departure_s).label("first"),
            func.max(STOP_TIMES.c.arrival_s).label("last"),
        )
        .group_by(STOP_TIMES.c.trip_id)
        .subquery()
    )
    stmt = (
        select(TRIPS, bounds.c.first, bounds.c.last)
        .join(bounds, bounds.c.trip_id == TRIPS.c.trip_id)
        .where(TRIPS.c.service_id.in_(sorted(services)))
    )
    if route is not None:
        stmt = stmt.where(TRIPS.c.route_id == route)
    if stop is not None:
        calls = select(STOP_TIMES.c.trip_id).where(STOP_TIMES.c.stop_id == stop)
        stmt = stmt.where(TRIPS.c.trip_id.in_(calls))
    zero = day_start(d, await timezone(conn))
    out = [
        ScheduledTrip(
            trip_id=row.trip_id,
            route_id=row.route_id,
            service_id=row.service_id,
            service_date=gtfs_date(d),
            headsign=row.headsign or "",
            direction_id=row.direction_id or 0,
            shape_id=row.shape_id,
            start=zero + (row.first or 0),
            end=zero + (row.last or 0),
        )
        for row in await conn.execute(stmt)
    ]
    return sorted(out, key=lambda t: (t.start, t.trip_id))


async def trip_plan(conn: Db, trip_id: str, service_date: date | str) -> TripPlan | None:
    """The plan of `trip_id` on `service_date`; None if no such trip runs that day."""
    d = as_date(service_date)
    trip = (await conn.execute(select(TRIPS).where(TRIPS.c.trip_id == trip_id))).first()
    if trip is None or trip.service_id not in await services_on(conn, d):
        return None
    plans = await _plans(conn, [trip], d)
    return plans[0] if plans else None


async def plans_for_day(conn: Db, day: date | str) -> list[TripPlan]:
    """Every trip running on service day `day` as a TripPlan, by first departure."""
    d = as_date(day)
    services = await services_on(conn, d)
    if not services:
        return []
    trips = list(await conn.execute(select(TRIPS).where(TRIPS.c.service_id.in_(sorted(services)))))
    plans = await _plans(conn, trips, d)
    return sorted(plans, key=lambda p: (p.start, p.trip_id))


async def departures_from(
    conn: Db, stop_id: str, after: float, *, limit: int = 10, horizon_s: float = 86_400
) -> list[ScheduledDeparture]:
    """The next scheduled departures from `stop_id` at or after Unix time `after`.

    Looks at the service days that can hold them (yesterday's trips may run past
    midnight); a trip's last stop, and stops where it picks nobody up, are not departures.
    """
    tz = await timezone(conn)
    local = datetime.fromtimestamp(after, tz).date()
    found: list[ScheduledDeparture] = []
    days = [local + timedelta(days=n) for n in range(-1, 2 + int(horizon_s // 86_400))]
    last_seq = (
        select(STOP_TIMES.c.trip_id, func.max(STOP_TIMES.c.stop_sequence).label("last"))
        .group_by(STOP_TIMES.c.trip_id)
        .subquery()
    )
    for d in days:
        services = await services_on(conn, d)
        if not services:
            continue
        zero = day_start(d, tz)
        low, high = after - zero, after + horizon_s - zero
        if high < 0:
            continue
        rows = await conn.execute(
            select(
                STOP_TIMES.c.trip_id,
                STOP_TIMES.c.stop_sequence,
                STOP_TIMES.c.departure_s,
                TRIPS.c.route_id,
                TRIPS.c.headsign,
            )
            .join(TRIPS, TRIPS.c.trip_id == STOP_TIMES.c.trip_id)
            .join(last_seq, last_seq.c.trip_id == STOP_TIMES.c.trip_id)
            .where(
                STOP_TIMES.c.stop_id == stop_id,
                STOP_TIMES.c.departure_s >= math.ceil(low),
                STOP_TIMES.c.departure_s <= high,
                STOP_TIMES.c.stop_sequence < last_seq.c.last,
                or_(STOP_TIMES.c.pickup_type.is_(None), STOP_TIMES.c.pickup_type != 1),
                and_(TRIPS.c.service_id.in_(sorted(services))),
            )
            .order_by(STOP_TIMES.c.departure_s)
            .limit(limit)
        )
        found += [
            ScheduledDeparture(
                r.trip_id,
                r.route_id,
                gtfs_date(d),
                r.headsign or "",
                stop_id,
                r.stop_sequence,
                zero + r.departure_s,
            )
            for r in rows
        ]
    found.sort(key=lambda x: (x.departure, x.trip_id))
    return found[:limit]


# --- building plans ---------------------------------------------------------------------------


async def _plans(conn: Db, trips: Sequence[Any], d: date) -> list[TripPlan]:
    if not trips:
        return []
    trip_ids = [t.trip_id for t in trips]
    times: dict[str, list[Any]] = defaultdict(list)
    for chunk in _chunks(trip_ids):
        for row in await conn.execute(
            select(STOP_TIMES)
            .where(STOP_TIMES.c.trip_id.in_(chunk))
            .order_by(STOP_TIMES.c.trip_id, STOP_TIMES.c.stop_sequence)
        ):
            times[row.trip_id].append(row)
    stop_ids = sorted({r.stop_id for rows in times.values() for r in rows})
    stops: dict[str, Any] = {}
    for chunk in _chunks(stop_ids):
        for row in await conn.execute(select(STOPS).where(STOPS.c.stop_id.in_(chunk))):
            stops[row.stop_id] = row
    shape_ids = sorted({t.shape_id for t in trips if t.shape_id})
    shapes: dict[str, list[Any]] = defaultdict(list)
    for chunk in _chunks(shape_ids):
        for row in await conn.execute(
            select(SHAPES)
            .where(SHAPES.c.shape_id.in_(chunk))
            .order_by(SHAPES.c.shape_id, SHAPES.c.sequence)
        ):
            shapes[row.shape_id].append(row)
    zero = day_start(d, await timezone(conn))
    built: dict[str, tuple[ShapePoint, ...]] = {}
    out = []
    for trip in trips:
        rows = times.get(trip.trip_id, [])
        if len(rows) < 2:
            continue
        raw_shape = shapes.get(trip.shape_id, []) if trip.shape_id else []
        key = trip.shape_id if raw_shape else f"stops:{trip.trip_id}"
        if key not in built:
            points = (
                [(p.lat, p.lon) for p in raw_shape]
                if raw_shape
                else [(stops[r.stop_id].lat, stops[r.stop_id].lon) for r in rows]
            )
            built[key] = shape_points(points)
        out.append(build_plan(trip, rows, stops, raw_shape, built[key], zero, gtfs_date(d)))
    return out


def _chunks(ids: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lat2 = math.radians(a[0]), math.radians(b[0])
    dlat, dlon = lat2 - lat1, math.radians(b[1] - a[1])
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * _EARTH_M * math.asin(min(1.0, math.sqrt(h)))


def shape_points(points: Sequence[tuple[float, float]]) -> tuple[ShapePoint, ...]:
    """Vertices with their distance along the line from its start, in metres."""
    out: list[ShapePoint] = []
    dist = 0.0
    for i, (lat, lon) in enumerate(points):
        if i:
            dist += haversine_m(points[i - 1], (lat, lon))
        out.append(ShapePoint(lat, lon, round(dist, 2)))
    return tuple(out)


def _project(shape: Sequence[ShapePoint], lat: float, lon: float, from_m: float) -> float:
    """Distance along `shape` of the point nearest to (lat, lon), not before `from_m`."""
    best, best_d2 = from_m, math.inf
    kx = math.cos(math.radians(lat)) * _EARTH_M * math.pi / 180  # metres per degree of lon
    ky = _EARTH_M * math.pi / 180
    for a, b in pairwise(shape):
        if b.dist_m < from_m:
            continue
        ax, ay = (a.lon - lon) * kx, (a.lat - lat) * ky
        bx, by = (b.lon - lon) * kx, (b.lat - lat) * ky
        dx, dy = bx - ax, by - ay
        seg2 = dx * dx + dy * dy
        t = 0.0 if seg2 == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / seg2))
        px, py = ax + t * dx, ay + t * dy
        along = a.dist_m + t * (b.dist_m - a.dist_m)
        if along < from_m:
            continue
        d2 = px * px + py * py
        if d2 < best_d2:
            best, best_d2 = along, d2
    return best


def _feed_to_metres(raw_shape: Sequence[Any], shape: Sequence[ShapePoint], value: float) -> float:
    """A shape_dist_traveled in the feed's unit -> metres along `shape` (same vertices)."""
    feed = [p.dist_traveled for p in raw_shape]
    i = bisect_right(feed, value) - 1
    if i < 0:
        return shape[0].dist_m
    if i >= len(feed) - 1:
        return shape[-1].dist_m
    span = feed[i + 1] - feed[i]
    t = 0.0 if span == 0 else (value - feed[i]) / span
    return shape[i].dist_m + t * (shape[i + 1].dist_m - shape[i].dist_m)


def build_plan(
    trip: Any,
    rows: Sequence[Any],
    stops: dict[str, Any],
    raw_shape: Sequence[Any],
    shape: tuple[ShapePoint, ...],
    zero: float,
    service_date: str,
) -> TripPlan:
    """One TripPlan from a trip's rows (stop_times in order, stops by id, its shape)."""
    feed_dist = bool(raw_shape) and all(p.dist_traveled is not None for p in raw_shape)
    dists: list[float] = []
    along = 0.0
    for row in rows:
        stop = stops[row.stop_id]
        if feed_dist and row.dist_traveled is not None:
            along = max(along, _feed_to_metres(raw_shape, shape, row.dist_traveled))
        else:
            along = _project(shape, stop.lat, stop.lon, along)
        dists.append(round(along, 2))
    arrivals = interpolate_times([r.arrival_s for r in rows], dists)
    departures = interpolate_times([r.departure_s for r in rows], dists)
    plans = tuple(
        StopPlan(
            stop_id=row.stop_id,
            stop_sequence=row.stop_sequence,
            name=stops[row.stop_id].name,
            lat=stops[row.stop_id].lat,
            lon=stops[row.stop_id].lon,
            dist_m=dist,
            arrival=zero + arrival,
            departure=zero + max(arrival, departure),
        )
        for row, dist, arrival, departure in zip(rows, dists, arrivals, departures, strict=True)
    )
    return TripPlan(
        trip_id=trip.trip_id,
        route_id=trip.route_id,
        service_date=service_date,
        shape=shape,
        stops=plans,
        headsign=trip.headsign or "",
        direction_id=trip.direction_id or 0,
    )


def interpolate_times(times: Sequence[int | None], dists: Sequence[float]) -> list[float]:
    """Times with the gaps between known ones filled in proportionally to distance."""
    known = [i for i, t in enumerate(times) if t is not None]
    out = [float(t) if t is not None else 0.0 for t in times]
    for left, right in pairwise(known):
        t0, t1 = out[left], out[right]
        d0, d1 = dists[left], dists[right]
        for i in range(left + 1, right):
            share = (i - left) / (right - left) if d1 == d0 else (dists[i] - d0) / (d1 - d0)
            out[i] = t0 + share * (t1 - t0)
    return out
