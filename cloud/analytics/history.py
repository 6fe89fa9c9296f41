"""Recorded history of desks, read once per report: who was checked in, sensed, booked, released.

Three kinds of interval per desk are read from the database and clipped to the
requested range:

* occupied: check-in → check-out events (`events` kinds checkin/checkout); a
  check-in still open counts until the end of the range or now, whichever is
  earlier. This is what "used" means in utilisation figures.
* sensed: presence true → false rows of `presence_changes`.
* booked: `bookings` rows that held the desk (every status but cancelled).

Released bookings (status released / no_show with a `released_at`) are read
apart, by release time. Out-of-service desks are left out. The reports built on
this are in cloud/analytics/utilisation.py; definitions in docs/analytics.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.analytics.schemas import Level
from cloud.db.tables import BOOKINGS, BUILDINGS, DESKS, EVENTS, FLOORS, SITES
from cloud.db.tables import PRESENCE_CHANGES as PRESENCE

Interval = tuple[datetime, datetime]


# Statuses of bookings that held a desk; a cancelled booking never did.
COUNTED_STATUSES = ("booked", "checked_in", "completed", "released", "no_show")
RELEASED_STATUSES = ("released", "no_show")
DEFAULT_TZ = "UTC"


@dataclass(frozen=True)
class DeskInfo:
    id: str
    zone: str | None
    floor: str | None
    building: str | None
    tz: str

    def entity(self, level: Level) -> str | None:
        return {"desk": self.id, "zone": self.zone, "floor": self.floor, "building": self.building}[
            level
        ]


@dataclass
class BookingSpan:
    desk: str
    start: datetime
    end: datetime
    status: str
    walk_up: bool


@dataclass
class History:
    """Everything the reports need about [start, end), read once."""

    start: datetime
    end: datetime
    desks: list[DeskInfo]
    occupied: dict[str, list[Interval]] = field(default_factory=dict)
    sensed: dict[str, list[Interval]] = field(default_factory=dict)
    bookings: list[BookingSpan] = field(default_factory=list)


async def _desks(
    conn: AsyncConnection, building: str | None, sites: frozenset[str] | None = None
) -> list[DeskInfo]:
    stmt = (
        select(
            DESKS.c.id, DESKS.c.zone_id, DESKS.c.floor_id, FLOORS.c.building_id, SITES.c.timezone
        )
        .select_from(
            DESKS.outerjoin(FLOORS, FLOORS.c.id == DESKS.c.floor_id)
            .outerjoin(BUILDINGS, BUILDINGS.c.id == FLOORS.c.building_id)
            .outerjoin(SITES, SITES.c.id == BUILDINGS.c.site_id)
        )
        # An out-of-service desk cannot be used: counting it would dilute utilisation.
        .where(DESKS.c.mode != "unavailable")
        .order_by(DESKS.c.id)
    )
    if building is not None:
        stmt = stmt.where(FLOORS.c.building_id == building)
    if sites is not None:  # a site-scoped caller: desks of their sites only
        stmt = stmt.where(BUILDINGS.c.site_id.in_(sorted(sites)))
    return [
        DeskInfo(r.id, r.zone_id, r.floor_id, r.building_id, r.timezone or DEFAULT_TZ)
        for r in await conn.execute(stmt)
    ]


async def _toggles(
    conn: AsyncConnection,
    desk_ids: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    table: Table,
    desk_col: str,
    opened: Any,
    where: Sequence[Any],
) -> dict[str, list[tuple[datetime, bool]]]:
    """Open/close marks per desk: the last one before `start` (the state the range
    begins in) and every one inside [start, end), in time order."""
    desk, ts = table.c[desk_col], table.c.ts
    scope = and_(desk.in_(desk_ids), *where)
    last_before = (
        select(desk.label("desk"), func.max(ts).label("ts"))
        .where(scope, ts < start)
        .group_by(desk)
        .subquery()
    )
    before = (
        select(desk, ts, opened.label("open"), table.c.id)
        .join(last_before, and_(last_before.c.desk == desk, last_before.c.ts == ts))
        .where(scope)
    )
    inside = select(desk, ts, opened.label("open"), table.c.id).where(scope, ts >= start, ts < end)
    marks: dict[str, list[tuple[datetime, int, bool]]] = defaultdict(list)
    for stmt in (before, inside):
        for row in await conn.execute(stmt):
            marks[row[0]].append((row[1], row[3], bool(row[2])))
    # Ties on ts are broken by insertion order (the row id).
    return {d: [(t, o) for t, _, o in sorted(m)] for d, m in marks.items()}


def intervals_from_marks(
    marks: Iterable[tuple[datetime, bool]], start: datetime, end: datetime
) -> list[Interval]:
    """Pairs opens with closes, clipped to [start, end); an open end runs to `end`.

    A second open while open (a repeated check-in, a duplicate sample) keeps the
    first; a close while closed is ignored.
    """
    out: list[Interval] = []
    opened_at: datetime | None = None
    for ts, is_open in marks:
        if is_open and opened_at is None:
            opened_at = ts
        elif not is_open and opened_at is not None:
            out.append((opened_at, ts))
            opened_at = None
    if opened_at is not None:
        out.append((opened_at, end))
    clipped = [(max(a, start), min(b, end)) for a, b in out]
    return [(a, b) for a, b in clipped if b > a]


async def load_history(
    conn: AsyncConnection,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    building: str | None = None,
    sites: frozenset[str] | None = None,
) -> History:
    """Reads desks and their intervals for [start, end); open intervals stop at `now`."""
    desks = await _desks(conn, building, sites)
    ids = [d.id for d in desks]
    # Nothing after `now` has happened yet: an open check-in is not occupied in the future.
    stop = max(start, min(end, now))
    history = History(start, end, desks)
    if not ids:
        return history
    checkins = await _toggles(
        conn,
        ids,
        start,
        stop,
        table=EVENTS,
        desk_col="desk",
        opened=EVENTS.c.kind == "checkin",
        where=[EVENTS.c.kind.in_(("checkin", "checkout"))],
    )
    presence = await _toggles(
        conn,
        ids,
        start,
        stop,
        table=PRESENCE,
        desk_col="desk_id",
        opened=PRESENCE.c.present,
        where=[],
    )
    history.occupied = {d: intervals_from_marks(m, start, stop) for d, m in checkins.items()}
    history.sensed = {d: intervals_from_marks(m, start, stop) for d, m in presence.items()}
    rows = await conn.execute(
        select(
            BOOKINGS.c.desk_id,
            BOOKINGS.c.starts_at,
            BOOKINGS.c.ends_at,
            BOOKINGS.c.status,
            BOOKINGS.c.walk_up,
        )
        .where(
            BOOKINGS.c.desk_id.in_(ids),
            BOOKINGS.c.status.in_(COUNTED_STATUSES),
            BOOKINGS.c.starts_at < end,
            BOOKINGS.c.ends_at > start,
        )
        .order_by(BOOKINGS.c.starts_at, BOOKINGS.c.id)
    )
    history.bookings = [
        BookingSpan(r.desk_id, r.starts_at, r.ends_at, r.status, bool(r.walk_up)) for r in rows
    ]
    return history


@dataclass(frozen=True)
class Release:
    desk: str
    at: datetime
    reason: str | None


async def load_releases(
    conn: AsyncConnection,
    start: datetime,
    end: datetime,
    *,
    building: str | None = None,
    sites: frozenset[str] | None = None,
) -> tuple[list[DeskInfo], list[Release]]:
    """Desks (as for the other reports) and their bookings released in [start, end)."""
    desks = await _desks(conn, building, sites)
    ids = [d.id for d in desks]
    if not ids:
        return desks, []
    rows = await conn.execute(
        select(BOOKINGS.c.desk_id, BOOKINGS.c.released_at, BOOKINGS.c.release_reason)
        .where(
            BOOKINGS.c.desk_id.in_(ids),
            BOOKINGS.c.status.in_(RELEASED_STATUSES),
            BOOKINGS.c.released_at >= start,
            BOOKINGS.c.released_at < end,
        )
        .order_by(BOOKINGS.c.released_at, BOOKINGS.c.id)
    )
    return desks, [Release(r.desk_id, r.released_at, r.release_reason) for r in rows]
