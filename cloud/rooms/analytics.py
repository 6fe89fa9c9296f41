"""Room analytics: booked against sensed hours, no-shows, "in use, not booked", right-sizing.

Per room over [start, end):

* booked hours: active or held bookings (booked, checked in, completed) clipped to
  the range; no-shows are counted apart and not as booked hours they never used;
* sensed hours: the room radar's occupied intervals (room_presence_changes, the
  reading in force at `start` included), clipped to the range and to `now`;
* sensed-not-booked hours: sensed time outside every held booking;
* right-sizing: the room radars report presence, not head counts, so the size check
  uses the attendees organisers declared against capacity: a mean under half the
  seats is `too_big`, over the seats `too_small`, else `fits`; `unknown` without data.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import ROOM_BOOKINGS, ROOM_PRESENCE_CHANGES
from cloud.rooms.reads import ROOM_SITE
from cloud.rooms.schemas import RoomAnalyticsPublic, RoomUsage

HELD = ("booked", "checked_in", "completed")
Span = tuple[datetime, datetime]


def _hours(spans: Iterable[Span]) -> float:
    return round(sum((b - a).total_seconds() for a, b in spans) / 3600, 3)


def _merge(spans: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _minus(spans: Sequence[Span], holes: Sequence[Span]) -> list[Span]:
    """`spans` with every part covered by `holes` removed (both merged and sorted)."""
    out: list[Span] = []
    for a, b in spans:
        cursor = a
        for h0, h1 in holes:
            if h1 <= cursor or h0 >= b:
                continue
            if h0 > cursor:
                out.append((cursor, h0))
            cursor = max(cursor, h1)
        if cursor < b:
            out.append((cursor, b))
    return out


def sensed_spans(
    changes: Sequence[tuple[datetime, bool]], start: datetime, end: datetime
) -> list[Span]:
    """Occupied intervals within [start, end) from ordered (ts, occupied) changes."""
    spans: list[Span] = []
    since: datetime | None = None
    for ts, occupied in changes:
        at = max(ts, start)
        if at >= end:
            break
        if occupied and since is None:
            since = at
        elif not occupied and since is not None:
            if at > since:
                spans.append((since, at))
            since = None
    if since is not None and since < end:
        spans.append((since, end))
    return spans


def right_size(
    capacity: int, attendees: Sequence[int]
) -> Literal["too_big", "fits", "too_small", "unknown"]:
    if not attendees:
        return "unknown"
    mean = sum(attendees) / len(attendees)
    if mean > capacity:
        return "too_small"
    return "too_big" if mean * 2 < capacity else "fits"


async def room_usage(
    conn: AsyncConnection,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    sites: Sequence[str] | None = None,
) -> RoomAnalyticsPublic:
    """The report; `sites` limits it to rooms of those sites (None: every room)."""
    site = ROOM_SITE.subquery()
    stmt = select(site.c.id, site.c.name, site.c.capacity).order_by(site.c.id)
    if sites is not None:
        stmt = stmt.where(site.c.site_id.in_(list(sites)))
    rooms = (await conn.execute(stmt)).all()
    ids = [r.id for r in rooms]
    horizon = min(end, now)
    bookings: dict[str, list[Any]] = defaultdict(list)
    for b in await conn.execute(
        select(ROOM_BOOKINGS).where(
            ROOM_BOOKINGS.c.room_id.in_(ids),
            ROOM_BOOKINGS.c.starts_at < end,
            ROOM_BOOKINGS.c.ends_at > start,
        )
    ):
        bookings[b.room_id].append(b)
    changes: dict[str, list[tuple[datetime, bool]]] = defaultdict(list)
    # The reading in force at `start` is the last change before it.
    for c in await conn.execute(
        select(ROOM_PRESENCE_CHANGES)
        .where(ROOM_PRESENCE_CHANGES.c.room_id.in_(ids), ROOM_PRESENCE_CHANGES.c.ts < horizon)
        .order_by(ROOM_PRESENCE_CHANGES.c.room_id, ROOM_PRESENCE_CHANGES.c.ts)
    ):
        changes[c.room_id].append((c.ts, c.occupied))
    out: list[RoomUsage] = []
    for room in rooms:
        held = [b for b in bookings[room.id] if b.status in HELD]
        booked = _merge((max(b.starts_at, start), min(b.ends_at, end)) for b in held)
        sensed = _merge(sensed_spans(changes[room.id], start, horizon))
        declared = [int(b.attendees) for b in held if b.attendees]
        out.append(
            RoomUsage(
                room_id=room.id,
                name=room.name,
                capacity=room.capacity,
                booked_hours=_hours(booked),
                sensed_hours=_hours(sensed),
                sensed_unbooked_hours=_hours(_minus(sensed, booked)),
                bookings=len(held),
                no_shows=sum(1 for b in bookings[room.id] if b.status == "no_show"),
                mean_attendees=round(sum(declared) / len(declared), 2) if declared else None,
                right_size=right_size(room.capacity, declared),
            )
        )
    return RoomAnalyticsPublic(start=start, end=end, rooms=out)


MAX_RANGE = timedelta(days=366)
