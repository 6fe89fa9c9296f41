"""The lobby kiosk's departures board: the next shuttles leaving the stops near a site, with
their expected time, delay and full/delayed/cancelled, and nothing about any person.

Stops near a site are `transport_site_stops`. The timetable gives each departure
(cloud.transport.schedule); the live service, when the cloud runs one, gives its
prediction (expected time, cancelled) through `Predict`; the seat counts say
whether the trip is full. Only counts and the public timetable leave here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import TRANSPORT_ROUTES as ROUTES
from cloud.db.tables import TRANSPORT_SITE_STOPS as SITE_STOPS
from cloud.db.tables import TRANSPORT_STOPS as STOPS
from cloud.db.tables import TRIP_SEATS
from cloud.transport import schedule
from cloud.transport.schemas_network import KioskDeparture

# Later than this and the board says "delayed" with the minutes (the rider plans with it).
DELAYED_AFTER_S = 120.0
HORIZON_S = 3 * 3600.0
PER_STOP = 6
BOARD_SIZE = 8


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the live service expects of one trip at one stop."""

    expected: float  # Unix seconds of the expected departure
    cancelled: bool = False
    live: bool = True  # from a vehicle's position (False: the timetable alone)


Predict = Callable[[str, str, str], Prediction | None]  # (trip_id, service_date, stop_id)


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


async def site_stops(conn: AsyncConnection, site: str | None) -> list[str]:
    """The stops whose departures a site's kiosk shows (every site's, without a site)."""
    stmt = select(SITE_STOPS.c.stop_id).distinct().order_by(SITE_STOPS.c.stop_id)
    if site is not None:
        stmt = stmt.where(SITE_STOPS.c.site_id == site)
    return [r.stop_id for r in await conn.execute(stmt)]


async def kiosk_departures(
    conn: AsyncConnection, site: str | None, now: datetime, predict: Predict | None = None
) -> list[KioskDeparture]:
    """The next departures from the site's stops, soonest expected first."""
    stops = await site_stops(conn, site)
    if not stops:
        return []
    at = now.timestamp()
    found: list[tuple[schedule.ScheduledDeparture, Prediction | None]] = []
    for stop in stops:
        # A late bus still to come may have a scheduled time already past: look back a while.
        for dep in await schedule.departures_from(
            conn, stop, at - 1800, limit=PER_STOP + 6, horizon_s=HORIZON_S + 1800
        ):
            guess = predict(dep.trip_id, dep.service_date, stop) if predict else None
            expected = guess.expected if guess and not guess.cancelled else dep.departure
            if expected < at:
                continue  # gone already
            found.append((dep, guess))
    if not found:
        return []
    names = {
        s.stop_id: s.name
        for s in await conn.execute(
            select(STOPS.c.stop_id, STOPS.c.name).where(STOPS.c.stop_id.in_(stops))
        )
    }
    routes = {r.route_id: r for r in await conn.execute(select(ROUTES))}
    trips = sorted({d.trip_id for d, _ in found})
    seats = {
        (s.trip_id, s.service_date): s.capacity - s.confirmed - s.walk_ons
        for s in await conn.execute(
            select(
                TRIP_SEATS.c.trip_id,
                TRIP_SEATS.c.service_date,
                TRIP_SEATS.c.capacity,
                TRIP_SEATS.c.confirmed,
                TRIP_SEATS.c.walk_ons,
            ).where(TRIP_SEATS.c.trip_id.in_(trips))
        )
    }
    board: list[KioskDeparture] = []
    for dep, guess in found:
        route = routes.get(dep.route_id)
        cancelled = bool(guess and guess.cancelled)
        expected = dep.departure if guess is None or cancelled else guess.expected
        delay = expected - dep.departure
        free = seats.get((dep.trip_id, dep.service_date))
        board.append(
            KioskDeparture(
                trip=dep.trip_id,
                service_date=dep.service_date,
                route=(route.short_name if route else None) or dep.route_id,
                route_color=route.color if route else None,
                headsign=dep.headsign,
                stop_id=dep.stop_id,
                stop=names.get(dep.stop_id, dep.stop_id),
                scheduled_at=_utc(dep.departure),
                expected_at=_utc(expected),
                delay_s=round(delay) if guess and not cancelled else None,
                status="cancelled"
                if cancelled
                else "delayed"
                if delay > DELAYED_AFTER_S
                else "on_time"
                if guess and guess.live
                else "scheduled",
                live=bool(guess and guess.live and not cancelled),
                full=free is not None and free <= 0,
            )
        )
    board.sort(key=lambda d: (d.expected_at, d.stop_id, d.trip))
    return board[:BOARD_SIZE]
