"""The lobby kiosk's departures board: the next shuttles leaving the stops near a site, with
their expected time, delay and full/delayed/cancelled, and nothing about any person.

Stops near a site are `transport_site_stops`. Each stop's board (timetable, live
ETA from the tracked vehicle, cancellations) is cloud.transport.departures; this
merges the boards of the site's stops, soonest first, and adds what a rider
reads from across the lobby: the route's short name and colour (the board says
whether a trip is full, from the seat counts). Only counts and the public
timetable leave here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import TRANSPORT_ROUTES as ROUTES
from cloud.db.tables import TRANSPORT_SITE_STOPS as SITE_STOPS
from cloud.transport import departures
from cloud.transport.live import LiveService
from cloud.transport.schemas_network import KioskDeparture

PER_STOP = 8
BOARD_SIZE = 8


async def site_stops(conn: AsyncConnection, site: str | None) -> list[str]:
    """The stops whose departures a site's kiosk shows (every site's, without a site)."""
    stmt = select(SITE_STOPS.c.stop_id).distinct().order_by(SITE_STOPS.c.stop_id)
    if site is not None:
        stmt = stmt.where(SITE_STOPS.c.site_id == site)
    return [r.stop_id for r in await conn.execute(stmt)]


async def kiosk_departures(
    conn: AsyncConnection, site: str | None, now: datetime, live: LiveService
) -> list[KioskDeparture]:
    """The next departures from the site's stops, soonest expected first."""
    found = []
    for stop in await site_stops(conn, site):
        found += (await departures.board(conn, live, stop, PER_STOP, now.timestamp())).departures
    if not found:
        return []
    # Cancelled lines have no expected time: they keep their timetable place.
    found.sort(key=lambda d: (d.expected_at or d.scheduled_at, d.stop_id, d.trip))
    found = found[:BOARD_SIZE]
    routes = {r.route_id: r for r in await conn.execute(select(ROUTES))}
    board: list[KioskDeparture] = []
    for d in found:
        route = routes.get(d.route)
        board.append(
            KioskDeparture(
                trip=d.trip,
                service_date=d.service_date,
                route=(route.short_name if route else None) or d.route,
                route_color=route.color if route else None,
                headsign=d.headsign,
                stop_id=d.stop_id,
                stop=d.stop,
                scheduled_at=d.scheduled_at,
                expected_at=d.expected_at,
                delay_s=d.delay_s,
                status=d.status,
                live=d.live,
                full=d.full,
            )
        )
    return board


async def kiosk_alerts(
    conn: AsyncConnection, site: str | None, now: datetime, live: LiveService
) -> list[str]:
    """Headlines of the dispatcher's alerts in force now that concern the site's stops:
    network-wide ones and those naming one of its stops (or no stop at all)."""
    stops = set(await site_stops(conn, site))
    at = now.timestamp()
    return [
        a.header
        for a in live.alerts
        if (a.starts_at is None or a.starts_at.timestamp() <= at)
        and (a.ends_at is None or at < a.ends_at.timestamp())
        and (a.stop_id is None or a.stop_id in stops)
    ]
