"""Booking writes: create (one or a weekly series), cancel and extend, each through the store.

The site's rules (cloud/bookings/site_rules.py) are checked before the write; the
database's constraints decide races (cloud/bookings/store.py). Each write records
its webhook event in the same transaction, so the event exists exactly when the
change does.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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
    desk_contexts,
)
from cloud.bookings.store import BookingStore, Row
from cloud.db.bulk import BulkInsert
from cloud.db.models import ACTIVE_BOOKING_STATUSES
from cloud.db.tables import BOOKING_SERIES as SERIES
from cloud.db.tables import BOOKINGS
from cloud.errors import Conflict, DomainError, Invalid
from cloud.integrations.events import record_event, record_events


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


# Built once: the values travel as parameters, so SQLAlchemy finds the compiled
# statement in its cache without rebuilding a cache key from the values each time.
_INSERT_BOOKING = insert(BOOKINGS).returning(BOOKINGS)
# Many rows, results in the rows' order (the batched writer, cloud/bookings/store.py);
# one SQL text for any batch size (cloud/db/bulk.py).
_INSERT_BOOKINGS = BulkInsert(
    BOOKINGS,
    (
        "desk_id",
        "person_id",
        "starts_at",
        "ends_at",
        "status",
        "exclusive_person",
        "created_at",
        "series_id",
    ),
    returning=tuple(BOOKINGS.c),
    ordered=True,
)


# Not a column: the site's time zone a single booking's confirmation is written in
# (a weekly series sends none). Carried in the row so the batched writer's shared
# `one`/`many` functions stay the same objects for every request.
CONFIRM_TZ = "_confirm_tz"


def _values(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != CONFIRM_TZ}


async def _insert(conn: AsyncConnection, row: dict[str, Any]) -> BookingPublic:
    # On SQLite the INSERT is the write transaction's first statement: that takes
    # the write lock at once, so no read snapshot can go stale underneath.
    created = (await conn.execute(_INSERT_BOOKING, _values(row))).one()
    booking = BookingPublic.model_validate(created._mapping)
    # Same transaction: the webhook event and the confirmation exist exactly when
    # the booking does.
    await record_event(conn, "booking.created", booking.model_dump(mode="json"))
    if row.get(CONFIRM_TZ):
        await notices.booking_confirmed(conn, created, row[CONFIRM_TZ])
    return booking


async def _insert_many(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[BookingPublic]:
    created = await _INSERT_BOOKINGS.execute(conn, rows)
    bookings = [BookingPublic.model_validate(r._mapping) for r in created]
    # Same transaction: each event exists exactly when its booking does.
    await record_events(conn, "booking.created", [b.model_dump(mode="json") for b in bookings])
    await notices.bookings_confirmed(
        conn,
        [
            (made, row[CONFIRM_TZ])
            for row, made in zip(rows, created, strict=True)
            if row.get(CONFIRM_TZ)
        ],
    )
    return bookings


async def _insert_booking(store: BookingStore, row: dict[str, Any]) -> BookingPublic:
    return await store.write(
        lambda conn: _insert(conn, row), desks=[row["desk_id"]], people=[row["person_id"]]
    )


Authorize = Callable[[AsyncConnection], Awaitable[None]]


@dataclass(frozen=True)
class _NewBooking:
    """A request to book one desk, as it waits for the store's writer."""

    body: BookingCreate
    authorize: Authorize | None
    now: datetime


async def _check_new(conn: AsyncConnection, requests: list[_NewBooking]) -> list[Row | DomainError]:
    """The store's `read_many` for new bookings: each request's row, or its refusal.

    The desks and people of all the requests are read in two statements; the
    caller's right (`authorize`) runs on the same connection, first."""
    contexts = await desk_contexts(conn, [(r.body.desk_id, r.body.person_id) for r in requests])
    out: list[Row | DomainError] = []
    for r, ctx in zip(requests, contexts, strict=True):
        try:
            if r.authorize is not None:
                await r.authorize(conn)
            if isinstance(ctx, DomainError):
                raise ctx
            check_desk_and_person(ctx)
            check_times(ctx.rules, r.body.starts_at, r.body.ends_at, r.now, person=ctx.person)
        except DomainError as refusal:
            out.append(refusal)
        else:
            out.append(
                {
                    **_booking_row(ctx, r.body.starts_at, r.body.ends_at, r.now),
                    CONFIRM_TZ: ctx.rules.timezone,
                }
            )
    return out


async def create_booking(
    store: BookingStore, body: BookingCreate, authorize: Authorize | None = None
) -> BookingPublic:
    """Books one desk; `authorize` (the caller's right to book for that person at that
    desk) runs on the same connection as the site rules and the write."""
    return await store.read_then_insert(
        _NewBooking(body, authorize, now_utc()),
        _check_new,
        _insert,
        _insert_many,
        desks=[body.desk_id],
        people=[body.person_id],
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
