"""The live floor map: desk and room states of a floor, and the site tree behind its filters.

Map state of a desk, decided in this order (the first rule that holds wins):

1. `unavailable` — the desk's mode is `unavailable`, or its desk unit reported
   itself offline (`unit_online` false): nobody can check in there.
2. `away` — checked in (a `checked_in` booking holds the desk now, or the edge
   checked a badge in without a booking) but the presence sensor says nobody is
   there: the edge will release it after the site's away time.
3. `checked_in` — checked in, and present or presence unknown.
4. `booked` — a `booked` booking covers now, nobody checked in yet.
5. `occupied` — the presence sensor sees someone, with no booking or check-in.
6. `free` — none of the above.

A `checked_in` booking holds the desk from its check-in (up to 15 minutes
before its start, like the edge's early check-in) until it ends; a `booked`
one from its start until its end (no-shows are released by cloud/bookings/autorelease.py).

Privacy: the occupant's name is filled only for admins and facility managers of
the desk's site (`may_see_names`); technicians and the public kiosk get no
names, and nothing here ever returns a NIP, a badge UID or a person id.

A room's state is its sensor's latest reading (`rooms.occupied`, written by
ingestion from `room_presence` telemetry): `occupied`, `free`, or null before
any sensor reported.

Cost: a floor (500 desks or more) is read with four queries — the floor, its
desks, the bookings holding them now, its rooms — never one per desk.

The same states feed the SSE stream (cloud/buildings/floorstream.py), the desk
timeline (cloud/buildings/timeline.py) and the lobby kiosk (cloud/buildings/kiosk.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.bookings.checkins import EARLY_CHECKIN
from cloud.buildings.schemas import (
    BuildingNode,
    FloorMap,
    FloorNode,
    MapCounts,
    MapDesk,
    MapFloor,
    MapRoom,
    SiteNode,
    SiteTree,
    StateCounts,
    ZoneNode,
)
from cloud.db.tables import BOOKINGS, BUILDINGS, DESKS, FLOORS, PEOPLE, ROOMS, SITES, ZONES
from cloud.errors import NotFound
from cloud.people import access
from cloud.people.auth import Principal
from cloud.rooms.reads import room_booked_now

STATES = ("free", "booked", "checked_in", "occupied", "away", "unavailable")


def desk_state(
    *,
    mode: str,
    unit_online: bool | None,
    present: bool | None,
    edge_checked_in: bool,
    booking_status: str | None,
) -> str:
    """The map state from a desk's facts; the precedence is the module docstring's."""
    if mode == "unavailable" or unit_online is False:
        return "unavailable"
    if booking_status == "checked_in" or edge_checked_in:
        return "away" if present is False else "checked_in"
    if booking_status == "booked":
        return "booked"
    if present:
        return "occupied"
    return "free"


def may_see_names(viewer: Principal, site: str | None) -> bool:
    """Occupant names: admins, and facility managers of that site; never technicians."""
    return access.manages(viewer, site)


def current_time() -> datetime:
    """The current instant, the default `now` of the map, timeline and kiosk."""
    return datetime.now(UTC)


def floor_geometry(raw: Any) -> tuple[float | None, float | None, list[list[float]] | None]:
    """Width, height and outline from a floor's free-form `geometry` JSON."""
    if isinstance(raw, str):  # a JSON column read back as text by some drivers
        raw = json.loads(raw)
    if not isinstance(raw, dict):
        return None, None, None
    width = raw.get("width_m", raw.get("width"))
    height = raw.get("height_m", raw.get("height"))
    outline = raw.get("outline")
    return (
        float(width) if isinstance(width, int | float) else None,
        float(height) if isinstance(height, int | float) else None,
        outline if isinstance(outline, list) else None,
    )


# --- site tree ----------------------------------------------------------------------


async def site_tree(conn: AsyncConnection) -> SiteTree:
    """Sites -> buildings -> floors -> zones, for the dashboards' filters (four queries)."""
    sites = (
        await conn.execute(select(SITES.c.id, SITES.c.name, SITES.c.timezone).order_by(SITES.c.id))
    ).all()
    buildings = (await conn.execute(select(BUILDINGS).order_by(BUILDINGS.c.id))).all()
    floors = (await conn.execute(select(FLOORS).order_by(FLOORS.c.level, FLOORS.c.id))).all()
    zones = (await conn.execute(select(ZONES).order_by(ZONES.c.id))).all()
    zones_of: dict[str, list[ZoneNode]] = {}
    for z in zones:
        zones_of.setdefault(z.floor_id, []).append(
            ZoneNode(id=z.id, name=z.name, reserved_for_agency=z.reserved_for_agency)
        )
    floors_of: dict[str, list[FloorNode]] = {}
    for f in floors:
        width, height, outline = floor_geometry(f.geometry)
        floors_of.setdefault(f.building_id, []).append(
            FloorNode(
                id=f.id,
                name=f.name,
                level=f.level,
                width=width,
                height=height,
                outline=outline,
                zones=zones_of.get(f.id, []),
            )
        )
    buildings_of: dict[str, list[BuildingNode]] = {}
    for b in buildings:
        buildings_of.setdefault(b.site_id, []).append(
            BuildingNode(id=b.id, name=b.name, floors=floors_of.get(b.id, []))
        )
    return SiteTree(
        sites=[
            SiteNode(
                id=s.id, name=s.name, timezone=s.timezone, buildings=buildings_of.get(s.id, [])
            )
            for s in sites
        ]
    )


# --- desk states --------------------------------------------------------------------


async def floor_info(conn: AsyncConnection, floor_id: str) -> MapFloor:
    """The floor with its building, site and drawing; 404 problem when unknown."""
    row = (
        await conn.execute(
            select(FLOORS, BUILDINGS.c.site_id)
            .select_from(FLOORS.join(BUILDINGS, BUILDINGS.c.id == FLOORS.c.building_id))
            .where(FLOORS.c.id == floor_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"floor {floor_id!r} is unknown", title="Floor not found")
    width, height, outline = floor_geometry(row.geometry)
    return MapFloor(
        id=row.id,
        name=row.name,
        level=row.level,
        building_id=row.building_id,
        site_id=row.site_id,
        width=width,
        height=height,
        outline=outline,
    )


def _holding_now(now: datetime) -> Any:
    """Active bookings that hold their desk at `now` (see the module docstring)."""
    return or_(
        and_(
            BOOKINGS.c.status == "checked_in",
            BOOKINGS.c.ends_at > now,
            BOOKINGS.c.starts_at <= now + EARLY_CHECKIN,
        ),
        and_(BOOKINGS.c.status == "booked", BOOKINGS.c.starts_at <= now, BOOKINGS.c.ends_at > now),
    )


async def map_desks(
    conn: AsyncConnection, where: Sequence[Any], now: datetime, *, names: bool
) -> list[MapDesk]:
    """Every desk matching `where` (clauses on desks/zones) with its map state: two queries."""
    desk_rows = (
        await conn.execute(
            select(
                DESKS.c.id,
                DESKS.c.label,
                DESKS.c.x,
                DESKS.c.y,
                DESKS.c.w,
                DESKS.c.h,
                DESKS.c.zone_id,
                DESKS.c.mode,
                DESKS.c.features,
                DESKS.c.state,
                DESKS.c.present,
                DESKS.c.unit_online,
            )
            .select_from(DESKS.outerjoin(ZONES, ZONES.c.id == DESKS.c.zone_id))
            .where(*where)
            .order_by(DESKS.c.id)
        )
    ).all()
    if not desk_rows:
        return []
    columns: list[Any] = [BOOKINGS.c.desk_id, BOOKINGS.c.status]
    source: Any = BOOKINGS.join(DESKS, DESKS.c.id == BOOKINGS.c.desk_id).outerjoin(
        ZONES, ZONES.c.id == DESKS.c.zone_id
    )
    if names:
        # Joined only for those allowed to see names: nobody else's query touches people.
        columns.append(PEOPLE.c.name)
        source = source.join(PEOPLE, PEOPLE.c.id == BOOKINGS.c.person_id)
    holding: dict[str, tuple[str, str | None]] = {}
    for row in await conn.execute(
        select(*columns).select_from(source).where(*where, _holding_now(now))
    ):
        # Early check-in can leave a checked-in booking next to a still-running
        # booked one; the check-in is what the desk shows.
        if row.desk_id not in holding or row.status == "checked_in":
            holding[row.desk_id] = (row.status, row.name if names else None)
    out: list[MapDesk] = []
    for d in desk_rows:
        status, person = holding.get(d.id, (None, None))
        state = desk_state(
            mode=d.mode,
            unit_online=d.unit_online,
            present=d.present,
            edge_checked_in=d.state == "occupied",
            booking_status=status,
        )
        features = json.loads(d.features) if isinstance(d.features, str) else d.features
        out.append(
            MapDesk(
                id=d.id,
                label=d.label,
                x=d.x,
                y=d.y,
                w=d.w,
                h=d.h,
                zone=d.zone_id,
                mode=d.mode,
                features=list(features or []),
                state=state,  # type: ignore[arg-type]
                occupant=person if state in ("booked", "checked_in", "away") else None,
            )
        )
    return out


def count(desks: Iterable[MapDesk]) -> MapCounts:
    floor: dict[str, int] = dict.fromkeys(STATES, 0)
    zones: dict[str, dict[str, int]] = {}
    for desk in desks:
        floor[desk.state] += 1
        if desk.zone is not None:
            zones.setdefault(desk.zone, dict.fromkeys(STATES, 0))[desk.state] += 1
    return MapCounts(
        floor=StateCounts(**floor), zones={z: StateCounts(**c) for z, c in sorted(zones.items())}
    )


async def floor_map(
    conn: AsyncConnection,
    floor_id: str,
    *,
    viewer: Principal,
    zone: str | None = None,
    agency: str | None = None,
    now: datetime | None = None,
) -> FloorMap:
    """The whole floor, optionally only one zone or the zones reserved for one agency.

    Names are shown when `viewer` manages the floor's site (see `may_see_names`).
    """
    at = now or current_time()
    floor = await floor_info(conn, floor_id)
    names = may_see_names(viewer, floor.site_id)
    where: list[Any] = [DESKS.c.floor_id == floor_id]
    zone_where: list[Any] = [ZONES.c.floor_id == floor_id]
    if zone is not None:
        where.append(DESKS.c.zone_id == zone)
        zone_where.append(ZONES.c.id == zone)
    if agency is not None:
        where.append(ZONES.c.reserved_for_agency == agency)
        zone_where.append(ZONES.c.reserved_for_agency == agency)
    desks = await map_desks(conn, where, at, names=names)
    zone_rows = (await conn.execute(select(ZONES).where(*zone_where).order_by(ZONES.c.id))).all()
    rooms = (
        await map_rooms(conn, [ROOMS.c.zone_id.in_([z.id for z in zone_rows])]) if zone_rows else []
    )
    return FloorMap(
        floor=floor,
        zones=[
            ZoneNode(id=z.id, name=z.name, reserved_for_agency=z.reserved_for_agency)
            for z in zone_rows
        ],
        desks=desks,
        rooms=rooms,
        counts=count(desks),
        generated_at=at,
    )


async def map_rooms(conn: AsyncConnection, where: Sequence[Any]) -> list[MapRoom]:
    """Rooms matching `where` (clauses on rooms/zones) with their sensor state: one query."""
    rows = (
        await conn.execute(
            select(ROOMS, room_booked_now(datetime.now(UTC)).label("booked"))
            .select_from(ROOMS.join(ZONES, ZONES.c.id == ROOMS.c.zone_id))
            .where(*where)
            .order_by(ROOMS.c.id)
        )
    ).all()
    return [
        MapRoom(
            id=r.id,
            name=r.name,
            capacity=r.capacity,
            zone=r.zone_id,
            state=None if r.occupied is None else ("occupied" if r.occupied else "free"),
            booked=bool(r.booked),
            in_use_not_booked=bool(r.occupied) and not r.booked,
            x=r.x,
            y=r.y,
            w=r.w,
            h=r.h,
        )
        for r in rows
    ]
