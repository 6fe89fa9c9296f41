"""Booking writes: create (one or a weekly series), cancel and extend, each through the store.

The site's rules (cloud/bookings/site_rules.py) are checked before the write; the
database's constraints decide races (cloud/bookings/store.py). Each write records
its webhook event in the same transaction, so the event exists exactly when the
change does.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.bookings import notices
from cloud.bookings.reads import get_booking
from cloud.bookings.schemas import (
    BookingCreate,
    BookingPublic,
    RecurringBookingCreate,
    RecurringBookingPublic,
    RecurringConflict,
)
from cloud.bookings.site_rules import (
    WEEKDAYS,
    DeskContext,
    check_desk_and_person,
    check_times,
    desk_context,
)
from cloud.bookings.store import BookingStore
from cloud.db.models import ACTIVE_BOOKING_STATUSES
from cloud.db.tables import BOOKING_SERIES as SERIES
from cloud.db.tables import BOOKINGS
from cloud.errors import Conflict, DomainError, Invalid
from cloud.integrations.events import record_event


def now_utc() -> datetime:
    return datetime.now(UTC)


def _booking_row(
    ctx: DeskContext,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
    series_id: str | None = None,
) -> dict[str, Any]:
    return {
        "desk_id": ctx.desk.id,
        "person_id": ctx.person.id,
        "starts_at": starts_at.astimezone(UTC),
        "ends_at": ends_at.astimezone(UTC),
        "status": "booked",
        "exclusive_person": ctx.rules.one_desk_per_person_per_slot,
        "created_at": now,
        "series_id": series_id,
    }


async def _insert_booking(
    store: BookingStore, row: dict[str, Any], *, confirm_in: str | None = None
) -> BookingPublic:
    """Inserts one booking; `confirm_in` (the site's time zone) also tells the person."""

    async def run(conn: AsyncConnection) -> BookingPublic:
        # The INSERT is the transaction's first statement: on SQLite that takes
        # the write lock at once, so no read snapshot can go stale underneath.
        created = (await conn.execute(insert(BOOKINGS).values(row).returning(BOOKINGS))).one()
        booking = BookingPublic.model_validate(created._mapping)
        # Same transaction: the webhook event exists exactly when the booking does.
        await record_event(conn, "booking.created", booking.model_dump(mode="json"))
        if confirm_in is not None:
            await notices.booking_confirmed(conn, created, confirm_in)
        return booking

    return await store.write(run, desks=[row["desk_id"]], people=[row["person_id"]])


async def create_booking(store: BookingStore, body: BookingCreate) -> BookingPublic:
    now = now_utc()
    async with store.engine.connect() as conn:
        ctx = await desk_context(conn, body.desk_id, body.person_id)
    check_desk_and_person(ctx)
    check_times(ctx.rules, body.starts_at, body.ends_at, now, person=ctx.person)
    return await _insert_booking(
        store,
        _booking_row(ctx, body.starts_at, body.ends_at, now),
        confirm_in=ctx.rules.timezone,
    )


async def cancel_booking(store: BookingStore, booking_id: int) -> BookingPublic:
    now = now_utc()

    async def run(conn: AsyncConnection) -> BookingPublic:
        # Conditional UPDATE first: it both takes the write lock and makes a
        # concurrent check-in and cancel unable to both win.
        row = (
            await conn.execute(
                update(BOOKINGS)
                .where(BOOKINGS.c.id == booking_id, BOOKINGS.c.status == "booked")
                .values(status="cancelled", cancelled_at=now)
                .returning(BOOKINGS)
            )
        ).first()
        if row is None:
            current = await get_booking(conn, booking_id)
            raise Conflict(
                f"booking {booking_id} is {current.status}; only a booked "
                "(not yet checked-in) booking can be cancelled",
                title="Booking not cancellable",
            )
        booking = BookingPublic.model_validate(row._mapping)
        await record_event(conn, "booking.cancelled", booking.model_dump(mode="json"))
        return booking

    return await store.write(run)


async def extend_booking(store: BookingStore, booking_id: int, ends_at: datetime) -> BookingPublic:
    now = now_utc()
    async with store.engine.connect() as conn:
        current = await get_booking(conn, booking_id)
        ctx = await desk_context(conn, current.desk_id, current.person_id)
    if current.status not in ACTIVE_BOOKING_STATUSES:
        raise Conflict(f"booking {booking_id} is {current.status}", title="Booking not active")
    if ends_at <= current.ends_at:
        raise Invalid("the new end must be later than the current one", title="Not an extension")
    check_times(ctx.rules, current.starts_at, ends_at, now, person=ctx.person, check_start=False)

    async def run(conn: AsyncConnection) -> BookingPublic:
        row = (
            await conn.execute(
                update(BOOKINGS)
                .where(BOOKINGS.c.id == booking_id, BOOKINGS.c.status.in_(ACTIVE_BOOKING_STATUSES))
                .values(ends_at=ends_at.astimezone(UTC))
                .returning(BOOKINGS)
            )
        ).first()
        if row is None:
            raise Conflict(f"booking {booking_id} ended meanwhile", title="Booking not active")
        booking = BookingPublic.model_validate(row._mapping)
        await record_event(conn, "booking.extended", booking.model_dump(mode="json"))
        return booking

    return await store.write(run, desks=[current.desk_id], people=[current.person_id])


async def create_recurring(
    store: BookingStore, body: RecurringBookingCreate
) -> RecurringBookingPublic:
    """Books every chosen weekday; a day that cannot be booked is listed, not fatal."""
    now = now_utc()
    async with store.engine.connect() as conn:
        ctx = await desk_context(conn, body.desk_id, body.person_id)
    check_desk_and_person(ctx)
    tz = ZoneInfo(ctx.rules.timezone)
    wanted = {WEEKDAYS.index(d) for d in body.weekdays}
    days = [
        body.first_day + timedelta(days=i) for i in range((body.last_day - body.first_day).days + 1)
    ]
    days = [d for d in days if d.weekday() in wanted]
    if len(days) > 366:
        raise Invalid("a series covers at most 366 days", title="Series too long")
    series_id = str(uuid.uuid4())

    async def add_series(conn: AsyncConnection) -> None:
        await conn.execute(
            insert(SERIES).values(
                id=series_id,
                desk_id=body.desk_id,
                person_id=body.person_id,
                weekdays=sorted(wanted),
                first_day=body.first_day.isoformat(),
                last_day=body.last_day.isoformat(),
                start_time=body.start_time.strftime("%H:%M"),
                end_time=body.end_time.strftime("%H:%M"),
                timezone=ctx.rules.timezone,
                created_at=now,
            )
        )

    await store.write(add_series)
    created: list[BookingPublic] = []
    conflicts: list[RecurringConflict] = []
    for day in days:
        # Wall-clock times in the site's zone, so a series keeps 08:00 local
        # even where a zone has daylight saving (Indonesia has none today).
        starts = datetime.combine(day, body.start_time, tz)
        ends = datetime.combine(day, body.end_time, tz)
        try:
            check_times(ctx.rules, starts, ends, now, person=ctx.person)
            created.append(
                await _insert_booking(store, _booking_row(ctx, starts, ends, now, series_id))
            )
        except DomainError as problem:
            conflicts.append(
                RecurringConflict(
                    day=day, title=problem.title, detail=problem.detail or problem.title
                )
            )
    return RecurringBookingPublic(series_id=series_id, created=created, conflicts=conflicts)
