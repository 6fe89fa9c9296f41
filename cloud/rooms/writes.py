"""Room booking writes: book, extend, end early, cancel, recurring series, check-in, book now.

Every write runs through the app's booking store (cloud/bookings/store.py), which
on PostgreSQL takes an advisory lock per room and on SQLite queues writers; the
database's overlap guard (migration 0021) decides every race, so two bookings of
one room never overlap whatever the timing. A booking's confirmation (with its ICS
invitation) is put in the notification outbox, and the integration event in its outbox,
in the same transaction as the row.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.bookings.store import ROOM_TAKEN, BookingStore
from cloud.db.models_rooms import ACTIVE_ROOM_STATUSES
from cloud.db.tables import ROOM_BOOKINGS
from cloud.errors import Conflict, DomainError, Invalid
from cloud.integrations.events import EventKind, record_event
from cloud.notifications.outbox import notify
from cloud.rooms.calendar import invitation
from cloud.rooms.reads import RoomContext, get_room_booking, person_exists, room_context
from cloud.rooms.schemas import (
    OccurrenceConflict,
    RecurringRoomBookingCreate,
    RecurringRoomBookingPublic,
    RoomBookingCreate,
    RoomBookingPublic,
)

MAX_OCCURRENCES = 366
# A meeting booked at the panel starts now; these are the lengths on its buttons.
PANEL_MINUTES = (15, 30, 60)
# A meeting booked at the panel is shortened to end at the next one, down to this.
MIN_PANEL_MINUTES = 5


def now_utc() -> datetime:
    return datetime.now(UTC)


def check_times(ctx: RoomContext, starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    if ends_at - starts_at > timedelta(hours=ctx.max_booking_hours):
        raise Invalid(
            f"a booking may last at most {ctx.max_booking_hours} h", title="Booking too long"
        )
    if starts_at < now - timedelta(minutes=ctx.rules.checkin_grace_min) or ends_at <= now:
        raise Invalid("the booking starts in the past", title="Booking in the past")
    tz = ctx.rules.tz
    horizon = now.astimezone(tz).date() + timedelta(days=ctx.max_days_ahead)
    if starts_at.astimezone(tz).date() > horizon:
        raise Invalid(
            f"bookings open {ctx.max_days_ahead} days ahead (until {horizon.isoformat()})",
            title="Too far ahead",
        )


async def _insert(
    store: BookingStore, ctx: RoomContext, row: dict[str, Any], *, confirm: bool = True
) -> RoomBookingPublic:
    async def run(conn: AsyncConnection) -> RoomBookingPublic:
        # The INSERT comes first: on SQLite it takes the write lock at once.
        created = (
            await conn.execute(insert(ROOM_BOOKINGS).values(row).returning(ROOM_BOOKINGS))
        ).one()
        booking = RoomBookingPublic.model_validate(created._mapping)
        # Same transaction: the webhook event exists exactly when the booking does.
        await record_event(conn, "room_booking.created", booking.model_dump(mode="json"))
        if confirm and booking.person_id is not None:
            await notify(
                conn,
                person_id=booking.person_id,
                kind="room_booked",
                data={
                    "room": ctx.name,
                    "room_id": ctx.id,
                    "booking_id": booking.id,
                    "starts_at": booking.starts_at.isoformat(),
                    "ends_at": booking.ends_at.isoformat(),
                    "timezone": ctx.rules.timezone,
                },
                dedup_key=f"room_booked:{booking.id}",
                attachments=[
                    ("rapat.ics", "text/calendar", invitation(booking, ctx.name, now_utc()))
                ],
            )
        return booking

    return await store.write(run, rooms=[row["room_id"]])


def _row(
    ctx: RoomContext,
    person_id: str | None,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
    *,
    title: str | None = None,
    attendees: int | None = None,
    series_id: str | None = None,
    walk_up: bool = False,
) -> dict[str, Any]:
    return {
        "room_id": ctx.id,
        "person_id": person_id,
        "starts_at": starts_at.astimezone(UTC),
        "ends_at": ends_at.astimezone(UTC),
        "status": "booked",
        "title": title,
        "attendees": attendees,
        "series_id": series_id,
        "walk_up": walk_up,
        "created_at": now,
    }


async def create(store: BookingStore, body: RoomBookingCreate) -> RoomBookingPublic:
    now = now_utc()
    async with store.engine.connect() as conn:
        ctx = await room_context(conn, body.room_id)
        await person_exists(conn, body.person_id)
    check_times(ctx, body.starts_at, body.ends_at, now)
    row = _row(
        ctx, body.person_id, body.starts_at, body.ends_at, now,
        title=body.title, attendees=body.attendees,
    )  # fmt: skip
    return await _insert(store, ctx, row)


def occurrence_days(body: RecurringRoomBookingCreate) -> list[Any]:
    span = (body.until - body.first_day).days + 1
    step = 7 if body.frequency == "weekly" else 1
    days = [body.first_day + timedelta(days=i) for i in range(0, span, step)]
    if body.frequency == "daily" and body.skip_weekends:
        days = [d for d in days if d.weekday() < 5]
    return days


async def create_recurring(
    store: BookingStore, body: RecurringRoomBookingCreate
) -> RecurringRoomBookingPublic:
    """Books each occurrence on its own; one that cannot be booked is reported, not fatal."""
    now = now_utc()
    async with store.engine.connect() as conn:
        ctx = await room_context(conn, body.room_id)
        await person_exists(conn, body.person_id)
    days = occurrence_days(body)
    if len(days) > MAX_OCCURRENCES:
        raise Invalid(f"a series has at most {MAX_OCCURRENCES} meetings", title="Series too long")
    tz = ZoneInfo(ctx.rules.timezone)
    series_id = str(uuid.uuid4())
    created: list[RoomBookingPublic] = []
    conflicts: list[OccurrenceConflict] = []
    for day in days:
        # Site-local wall-clock times, so the series keeps its hour in the site's zone.
        starts = datetime.combine(day, body.start_time, tz)
        ends = datetime.combine(day, body.end_time, tz)
        try:
            check_times(ctx, starts, ends, now)
            row = _row(
                ctx, body.person_id, starts, ends, now,
                title=body.title, attendees=body.attendees, series_id=series_id,
            )  # fmt: skip
            # One confirmation per series (the first occurrence), not one per meeting.
            created.append(await _insert(store, ctx, row, confirm=not created))
        except DomainError as problem:
            conflicts.append(
                OccurrenceConflict(day=day, title=problem.title, detail=problem.detail or "")
            )
    return RecurringRoomBookingPublic(series_id=series_id, created=created, conflicts=conflicts)


async def _change(
    store: BookingStore,
    booking_id: int,
    statuses: tuple[str, ...],
    values: dict[str, Any],
    kind: EventKind,
) -> RoomBookingPublic:
    """A conditional UPDATE of one booking; a booking no longer in `statuses` is a 409."""

    async def run(conn: AsyncConnection) -> RoomBookingPublic:
        row = (
            await conn.execute(
                update(ROOM_BOOKINGS)
                .where(ROOM_BOOKINGS.c.id == booking_id, ROOM_BOOKINGS.c.status.in_(statuses))
                .values(**values)
                .returning(ROOM_BOOKINGS)
            )
        ).first()
        if row is None:
            current = await get_room_booking(conn, booking_id)
            raise Conflict(
                f"room booking {booking_id} is {current.status}", title="Room booking not active"
            )
        booking = RoomBookingPublic.model_validate(row._mapping)
        await record_event(conn, kind, booking.model_dump(mode="json"))
        return booking

    async with store.engine.connect() as conn:
        current = await get_room_booking(conn, booking_id)
    return await store.write(run, rooms=[current.room_id])


async def cancel(store: BookingStore, booking_id: int) -> RoomBookingPublic:
    return await _change(
        store,
        booking_id,
        ("booked",),
        {"status": "cancelled", "ended_at": now_utc()},
        "room_booking.cancelled",
    )


async def end_early(store: BookingStore, booking_id: int) -> RoomBookingPublic:
    """Ends a running meeting now, freeing the rest of its slot."""
    now = now_utc()
    async with store.engine.connect() as conn:
        current = await get_room_booking(conn, booking_id)
    if current.starts_at > now:
        raise Conflict("the meeting has not started; cancel it instead", title="Not started")
    return await _change(
        store, booking_id, ACTIVE_ROOM_STATUSES,
        {"status": "completed", "ends_at": max(now, current.starts_at + timedelta(seconds=1)),
         "ended_at": now},
        "room_booking.ended",
    )  # fmt: skip


async def extend(store: BookingStore, booking_id: int, ends_at: datetime) -> RoomBookingPublic:
    now = now_utc()
    async with store.engine.connect() as conn:
        current = await get_room_booking(conn, booking_id)
        ctx = await room_context(conn, current.room_id)
    if ends_at <= current.ends_at:
        raise Invalid("the new end must be later than the current one", title="Not an extension")
    if ends_at - current.starts_at > timedelta(hours=ctx.max_booking_hours):
        raise Invalid(
            f"a booking may last at most {ctx.max_booking_hours} h", title="Booking too long"
        )
    if current.ends_at <= now:
        raise Conflict(f"room booking {booking_id} is over", title="Room booking not active")
    # The overlap guard refuses an extension into the next meeting (409 Room already booked).
    return await _change(
        store,
        booking_id,
        ACTIVE_ROOM_STATUSES,
        {"ends_at": ends_at.astimezone(UTC)},
        "room_booking.extended",
    )


async def check_in(
    store: BookingStore, room_id: str, now: datetime | None = None
) -> RoomBookingPublic:
    """Checks in the meeting of the room that runs now or starts within the grace."""
    at = now or now_utc()
    async with store.engine.connect() as conn:
        ctx = await room_context(conn, room_id)
        soon = at + timedelta(minutes=ctx.rules.checkin_grace_min)
        row = (
            await conn.execute(
                select(ROOM_BOOKINGS.c.id)
                .where(
                    ROOM_BOOKINGS.c.room_id == room_id,
                    ROOM_BOOKINGS.c.status == "booked",
                    ROOM_BOOKINGS.c.starts_at <= soon,
                    ROOM_BOOKINGS.c.ends_at > at,
                )
                .order_by(ROOM_BOOKINGS.c.starts_at)
                .limit(1)
            )
        ).first()
    if row is None:
        raise Conflict("no meeting to check in to now", title="Nothing to check in")
    return await _change(
        store,
        int(row.id),
        ("booked",),
        {"status": "checked_in", "checked_in_at": at},
        "room_booking.checked_in",
    )


async def book_now(store: BookingStore, room_id: str, minutes: int) -> RoomBookingPublic:
    """A meeting from now at the panel; it ends at the next meeting if that comes sooner."""
    if minutes not in PANEL_MINUTES:
        raise Invalid(f"book now takes {PANEL_MINUTES} minutes", title="Bad length")
    now = now_utc().replace(microsecond=0)
    ends = now + timedelta(minutes=minutes)
    async with store.engine.connect() as conn:
        ctx = await room_context(conn, room_id)
        upcoming = await conn.scalar(
            select(ROOM_BOOKINGS.c.starts_at)
            .where(
                ROOM_BOOKINGS.c.room_id == room_id,
                ROOM_BOOKINGS.c.status.in_(ACTIVE_ROOM_STATUSES),
                ROOM_BOOKINGS.c.starts_at > now,
                ROOM_BOOKINGS.c.starts_at < ends,
            )
            .order_by(ROOM_BOOKINGS.c.starts_at)
            .limit(1)
        )
    if upcoming is not None:
        if upcoming - now < timedelta(minutes=MIN_PANEL_MINUTES):
            raise Conflict("the next meeting starts in a few minutes", title=ROOM_TAKEN)
        ends = upcoming  # the guard decides if someone books in between meanwhile
    row = _row(ctx, None, now, ends, now, walk_up=True)
    # Someone stands at the door pressing the button: it counts as checked in.
    row |= {"status": "checked_in", "checked_in_at": now}
    return await _insert(store, ctx, row, confirm=False)
