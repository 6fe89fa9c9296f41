"""The lobby kiosk's counts: free, booked, checked-in, occupied and unavailable desks per floor,
and the next shuttle departures from the stops near the site.

Public (no login): counts only, from the floor map's desk states
(cloud/buildings/floormap.py) read without names; the people table is never
touched. Departures are the public timetable with the live service's expectation
and seat counts (cloud/transport/kiosk_departures.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.buildings.floormap import STATES, current_time, map_desks
from cloud.buildings.schemas import KioskAvailability, KioskBuilding, KioskFloor
from cloud.db.tables import BUILDINGS, DESKS, FLOORS, SITES
from cloud.errors import NotFound
from cloud.transport.kiosk_departures import kiosk_alerts, kiosk_departures
from cloud.transport.live import LiveService


async def kiosk_availability(
    conn: AsyncConnection,
    site: str | None,
    now: datetime | None = None,
    *,
    live: LiveService | None = None,
) -> KioskAvailability:
    """Per floor desk counts for the lobby screen: no names, no people at all."""
    at = now or current_time()
    building_where: list[Any] = []
    if site is not None:
        if await conn.scalar(select(SITES.c.id).where(SITES.c.id == site)) is None:
            raise NotFound(f"site {site!r} is unknown", title="Site not found")
        building_where.append(BUILDINGS.c.site_id == site)
    floors = (
        await conn.execute(
            select(
                FLOORS.c.id,
                FLOORS.c.name,
                FLOORS.c.level,
                BUILDINGS.c.id.label("building_id"),
                BUILDINGS.c.name.label("building_name"),
            )
            .select_from(FLOORS.join(BUILDINGS, BUILDINGS.c.id == FLOORS.c.building_id))
            .where(*building_where)
            .order_by(BUILDINGS.c.id, FLOORS.c.level, FLOORS.c.id)
        )
    ).all()
    floor_ids = [f.id for f in floors]
    # names=False: the people table is not even joined.
    desks = (
        await map_desks(conn, [DESKS.c.floor_id.in_(floor_ids)], at, names=False)
        if floor_ids
        else []
    )
    floor_of: dict[str, str] = (
        {
            r.id: r.floor_id
            for r in await conn.execute(
                select(DESKS.c.id, DESKS.c.floor_id).where(DESKS.c.floor_id.in_(floor_ids))
            )
        }
        if floor_ids
        else {}
    )
    per_floor: dict[str, dict[str, int]] = {f: dict.fromkeys(STATES, 0) for f in floor_ids}
    for desk in desks:
        per_floor[floor_of[desk.id]][desk.state] += 1
    buildings: dict[str, KioskBuilding] = {}
    for f in floors:
        c = per_floor[f.id]
        building = buildings.setdefault(
            f.building_id, KioskBuilding(id=f.building_id, name=f.building_name, floors=[])
        )
        building.floors.append(
            KioskFloor(
                id=f.id,
                name=f.name,
                level=f.level,
                total=sum(c.values()),
                free=c["free"],
                booked=c["booked"],
                checked_in=c["checked_in"] + c["away"],
                occupied=c["occupied"],
                unavailable=c["unavailable"],
            )
        )
    # The lobby clock shows the building's time whatever zone the screen is set to.
    zone_of = select(SITES.c.timezone).order_by(SITES.c.id).limit(1)
    timezone = await conn.scalar(zone_of.where(SITES.c.id == site) if site else zone_of)
    return KioskAvailability(
        generated_at=at,
        site=site,
        timezone=timezone,
        buildings=list(buildings.values()),
        # Without the live service (a bare API in a test) there is no board to show.
        shuttles=await kiosk_departures(conn, site, at, live) if live is not None else [],
        shuttle_alerts=await kiosk_alerts(conn, site, at, live) if live is not None else [],
    )
