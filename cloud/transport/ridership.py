"""Ridership: allowed boardings per trip instance, stop and local hour, from `transport_boardings`.

A boarding counts once per message id (the table's primary key), only if the
vehicle's node let the rider on, and whatever the cloud found applying it (a
walk-on beyond the free seats still rode the bus). Hours are the local (WITA)
hour of the tap, stored when the event was applied. Refusals are counted apart,
by reason, so "full" and "no trip" show up as demand the service did not carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import TRANSPORT_BOARDINGS

B = TRANSPORT_BOARDINGS


@dataclass(frozen=True, slots=True)
class RidershipRow:
    trip_id: str | None
    service_date: str | None
    stop_id: str | None  # None: the vehicle was not at a known stop
    hour: int
    boardings: int


@dataclass(frozen=True, slots=True)
class RefusalRow:
    reason: str
    trip_id: str | None
    count: int


def _window(start: datetime, end: datetime, vehicle: str | None) -> list[object]:
    where: list[object] = [B.c.ts >= start, B.c.ts < end]
    if vehicle is not None:
        where.append(B.c.vehicle_id == vehicle)
    return where


async def ridership(
    conn: AsyncConnection, start: datetime, end: datetime, *, vehicle: str | None = None
) -> list[RidershipRow]:
    """Allowed boardings in [start, end) per (trip, service day, stop, hour), sorted by them."""
    keys = (B.c.trip_id, B.c.service_date, B.c.stop_id, B.c.hour)
    rows = await conn.execute(
        select(*keys, func.count().label("n"))
        .where(B.c.allowed.is_(True), *_window(start, end, vehicle))  # type: ignore[arg-type]
        .group_by(*keys)
    )
    out = [RidershipRow(r.trip_id, r.service_date, r.stop_id, r.hour, r.n) for r in rows]
    return sorted(
        out, key=lambda r: (r.service_date or "", r.trip_id or "", r.hour, r.stop_id or "")
    )


async def refusals(
    conn: AsyncConnection, start: datetime, end: datetime, *, vehicle: str | None = None
) -> list[RefusalRow]:
    """Refused taps in [start, end) per (reason, trip), sorted by them."""
    rows = await conn.execute(
        select(B.c.reason, B.c.trip_id, func.count().label("n"))
        .where(B.c.allowed.is_(False), *_window(start, end, vehicle))  # type: ignore[arg-type]
        .group_by(B.c.reason, B.c.trip_id)
    )
    out = [RefusalRow(r.reason, r.trip_id, r.n) for r in rows]
    return sorted(out, key=lambda r: (r.reason, r.trip_id or ""))


def per_trip(rows: list[RidershipRow]) -> dict[tuple[str | None, str | None], int]:
    """Total boardings per (trip, service day)."""
    out: dict[tuple[str | None, str | None], int] = {}
    for r in rows:
        key = (r.trip_id, r.service_date)
        out[key] = out.get(key, 0) + r.boardings
    return out
