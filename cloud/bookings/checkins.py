"""Booking lifecycle driven by the desks themselves: check-in, walk-up, check-out, away release.

Called by `cloud.ingest.apply.Applier` inside the transaction that records the edge's
event, so the booking change, its integration event and the event row commit
together (and a replayed event, refused by the events table, changes nothing).

Offline conflict rule: a node decides taps from its last snapshot, so while its
uplink is down someone may book a desk online that a person has meanwhile
claimed at the desk. When that walk-up reaches the cloud, the person physically
checked in keeps the desk; the online booking(s) overlapping the check-in are
released with reason `displaced_by_offline_checkin` (see docs/desk-booking.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.bookings import notices
from cloud.bookings.site_rules import desk_rules, end_of_local_day
from cloud.db.models import ACTIVE_BOOKING_STATUSES
from cloud.db.tables import BADGES, BOOKINGS, PEOPLE
from cloud.integrations.events import record_event
from ruang import contract
from ruang.site_defaults import EARLY_CHECKIN_S

log = logging.getLogger(__name__)


DISPLACED = "displaced_by_offline_checkin"
DESK_OVERLAP = "ex_bookings_desk_overlap"
# Same window as the edge (edge.snapshot.EARLY_CHECKIN_S): a tap this early counts.
EARLY_CHECKIN = timedelta(seconds=EARLY_CHECKIN_S)


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def event_data(row: Any, node: str | None = None) -> dict[str, Any]:
    """What integrations hear about a booking (JSON-safe)."""

    def iso(value: datetime | None) -> str | None:
        return value.astimezone(UTC).isoformat() if value is not None else None

    return {
        "booking_id": row.id,
        "desk_id": row.desk_id,
        "person_id": row.person_id,
        "starts_at": iso(row.starts_at),
        "ends_at": iso(row.ends_at),
        "status": row.status,
        "walk_up": bool(row.walk_up),
        "checked_in_at": iso(row.checked_in_at),
        "checked_out_at": iso(row.checked_out_at),
        "released_at": iso(row.released_at),
        "release_reason": row.release_reason,
        "node": node,
    }


async def _person_for(conn: AsyncConnection, msg: contract.CheckIn) -> str | None:
    if msg.person is not None:
        known = await conn.scalar(select(PEOPLE.c.id).where(PEOPLE.c.id == msg.person))
        if known is not None:
            return str(known)
    person = await conn.scalar(
        select(BADGES.c.person_id).where(BADGES.c.uid == msg.badge, BADGES.c.status == "active")
    )
    return None if person is None else str(person)


async def check_in_booking(
    conn: AsyncConnection, booking_id: int, ts: datetime, node: str | None
) -> Any | None:
    """Marks a `booked` booking checked in at `ts`; the updated row, or None if it was not booked.

    Shared by the edge's taps and the cloud's QR check-in (cloud/bookings/qrcheckin.py).
    """
    row = (
        await conn.execute(
            update(BOOKINGS)
            .where(BOOKINGS.c.id == booking_id, BOOKINGS.c.status == "booked")
            .values(status="checked_in", checked_in_at=ts)
            .returning(BOOKINGS)
        )
    ).first()
    if row is None:
        return None
    await record_event(conn, "booking.checked_in", event_data(row, node))
    return row


async def _check_in(conn: AsyncConnection, booking_id: int, ts: datetime, node: str) -> bool:
    return await check_in_booking(conn, booking_id, ts, node) is not None


async def people_for(
    conn: AsyncConnection, msgs: Sequence[contract.CheckIn]
) -> dict[str, str | None]:
    """The person each check-in names (by message id), as `apply_checkin` would find them.

    Two queries for a whole flush instead of one or two per event: people and
    badges are not changed by events, so reading them up front sees the same.
    """
    named = {m.person for m in msgs if m.person is not None}
    known: set[str] = set()
    if named:
        known = {
            str(p) for p in await conn.scalars(select(PEOPLE.c.id).where(PEOPLE.c.id.in_(named)))
        }
    badges = {m.badge for m in msgs}
    holders: dict[str, str] = {}
    if badges:
        rows = await conn.execute(
            select(BADGES.c.uid, BADGES.c.person_id).where(
                BADGES.c.uid.in_(badges), BADGES.c.status == "active"
            )
        )
        holders = {row.uid: str(row.person_id) for row in rows if row.person_id is not None}
    return {m.id: m.person if m.person in known else holders.get(m.badge) for m in msgs}


async def desks_checked_in(conn: AsyncConnection, desks: Sequence[str]) -> set[str]:
    """Those of `desks` with a checked-in booking: a check-out elsewhere changes no booking."""
    if not desks:
        return set()
    rows = await conn.scalars(
        select(BOOKINGS.c.desk_id)
        .where(BOOKINGS.c.desk_id.in_(set(desks)), BOOKINGS.c.status == "checked_in")
        .distinct()
    )
    return {str(d) for d in rows}


_LOOK_UP = object()


async def apply_checkin(
    conn: AsyncConnection, msg: contract.CheckIn, now: datetime, person: object = _LOOK_UP
) -> bool:
    """Marks the booking checked in, or records a walk-up; True when bookings changed.

    `person`: who the check-in names when already known (see `people_for`).
    """
    ts = _utc(msg.ts)
    if person is _LOOK_UP:
        person = await _person_for(conn, msg)
    assert person is None or isinstance(person, str)
    if msg.booking is not None and msg.booking.isdigit():
        row = (
            await conn.execute(
                select(BOOKINGS).where(
                    BOOKINGS.c.id == int(msg.booking), BOOKINGS.c.desk_id == msg.desk
                )
            )
        ).first()
        if row is not None:
            if row.status == "booked":
                return await _check_in(conn, row.id, ts, msg.node)
            if row.status == "checked_in":
                return False
            # Released or cancelled while the node was offline, yet the person is at
            # the desk: what happened physically wins, as a walk-up below.
            person = person or row.person_id
    if person is None:
        # A badge the cloud cannot tie to anyone: the desk state shows it, no booking.
        return False
    # The cloud may know a booking the node's snapshot did not have yet.
    own = await conn.scalar(
        select(BOOKINGS.c.id)
        .where(
            BOOKINGS.c.desk_id == msg.desk,
            BOOKINGS.c.person_id == person,
            BOOKINGS.c.status.in_(ACTIVE_BOOKING_STATUSES),
            BOOKINGS.c.starts_at <= ts + EARLY_CHECKIN,
            BOOKINGS.c.ends_at > ts,
        )
        .order_by(BOOKINGS.c.starts_at)
        .limit(1)
    )
    if own is not None:
        return await _check_in(conn, own, ts, msg.node)
    _, changed = await walk_up(conn, msg.desk, person, ts, now, msg.node)
    return changed


async def walk_up(
    conn: AsyncConnection, desk: str, person: str, ts: datetime, now: datetime, node: str | None
) -> tuple[Any | None, bool]:
    """Records `person` sitting at a free `desk` from `ts`: a `checked_in`, `walk_up` booking.

    It lasts until the desk's next booking or the end of the local day. Returns
    the created row (None if there was no room before the next booking) and
    whether any booking changed (overlaps displaced, see the module docstring).
    Used by the edge's taps and by the QR check-in, which refuses a held desk first.
    """
    rules = await desk_rules(conn, desk)
    ends_at = end_of_local_day(ts, rules.tz)
    next_start = await conn.scalar(
        select(func.min(BOOKINGS.c.starts_at)).where(
            BOOKINGS.c.desk_id == desk,
            BOOKINGS.c.status.in_(ACTIVE_BOOKING_STATUSES),
            BOOKINGS.c.starts_at > ts,
        )
    )
    if next_start is not None:
        ends_at = min(ends_at, next_start.replace(tzinfo=next_start.tzinfo or UTC))
    if ends_at <= ts:
        return None, False
    row = {
        "desk_id": desk,
        "person_id": person,
        "starts_at": ts,
        "ends_at": ends_at,
        "status": "checked_in",
        "created_at": now,
        "checked_in_at": ts,
        "walk_up": True,
        # A walk-up records where someone physically sits; it must not be refused
        # because the same person also holds a booking elsewhere.
        "exclusive_person": False,
    }
    stmt = insert(BOOKINGS).values(row).returning(BOOKINGS)
    try:
        # A savepoint, so a refusal does not abort the transaction holding the event.
        async with conn.begin_nested():
            created = (await conn.execute(stmt)).one()
    except IntegrityError as exc:
        if DESK_OVERLAP not in str(exc.orig):
            raise
        displaced = (
            await conn.execute(
                update(BOOKINGS)
                .where(
                    BOOKINGS.c.desk_id == desk,
                    BOOKINGS.c.status.in_(ACTIVE_BOOKING_STATUSES),
                    BOOKINGS.c.starts_at < ends_at,
                    BOOKINGS.c.ends_at > ts,
                )
                .values(status="released", released_at=now, release_reason=DISPLACED)
                .returning(BOOKINGS)
            )
        ).all()
        for gone in displaced:
            log.info("booking %s on %s displaced by an offline check-in", gone.id, desk)
            await record_event(conn, "booking.released", event_data(gone, node))
            await notices.booking_released(conn, gone, rules.timezone)
        try:
            async with conn.begin_nested():
                created = (await conn.execute(stmt)).one()
        except IntegrityError:
            # Nothing left should overlap; never let one event block the ingest queue.
            log.exception("walk-up on %s refused even after releasing overlaps", desk)
            return None, bool(displaced)
    await record_event(conn, "booking.checked_in", event_data(created, node))
    return created, True


async def apply_checkout(conn: AsyncConnection, msg: contract.CheckOut, now: datetime) -> bool:
    """Completes (tap) or releases (away) the desk's checked-in booking; True when changed."""
    ts = _utc(msg.ts)
    row = (
        await conn.execute(
            select(BOOKINGS)
            .where(
                BOOKINGS.c.desk_id == msg.desk,
                BOOKINGS.c.status == "checked_in",
                BOOKINGS.c.checked_in_at <= ts,
            )
            .order_by(BOOKINGS.c.checked_in_at.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return False
    values: dict[str, Any] = {"checked_out_at": ts}
    if row.starts_at < ts < row.ends_at:
        # The rest of the slot was not used: history shows the real stay.
        values["ends_at"] = ts
    if msg.reason in ("left", "released"):
        values |= {
            "status": "released",
            "released_at": ts,
            "release_reason": "away" if msg.reason == "left" else "released_at_desk",
        }
        kind = "booking.released"
    else:
        values["status"] = "completed"
        kind = "booking.checked_out"
    updated = (
        await conn.execute(
            update(BOOKINGS)
            .where(BOOKINGS.c.id == row.id, BOOKINGS.c.status == "checked_in")
            .values(**values)
            .returning(BOOKINGS)
        )
    ).first()
    if updated is None:
        return False
    await record_event(conn, kind, event_data(updated, msg.node))  # type: ignore[arg-type]
    if updated.status == "released":
        await notices.booking_released(conn, updated)
    return True
