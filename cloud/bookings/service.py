"""Desk bookings: rules, the serialised write path, availability search and recurring series.

The database is what prevents double booking (see migration 0002); this module
checks the site's rules first, turns the database's refusal into a 409, and
keeps contention bounded:

* PostgreSQL: each booking write takes transaction-scoped advisory locks on
  its desk and person (in key order) before touching `bookings`, so racing
  requests queue on the lock instead of deadlocking inside the exclusion
  constraint check; a deadlock or serialisation failure that still happens is
  retried a few times and then answered with 409, never 500.
* SQLite: one writer at a time anyway, so writes of this process queue on one
  FIFO asyncio.Lock per engine (fair, unlike busy_timeout polling, which starved
  writers in the measurements); the wait is bounded and answered with 503.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Row,
    and_,
    bindparam,
    exists,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.bookings.schemas import (
    AvailabilityPublic,
    AvailableDesk,
    AvailableRoom,
    BookingCreate,
    BookingPublic,
    RecurringBookingCreate,
    RecurringBookingPublic,
    RecurringConflict,
)
from cloud.db.models import (
    ACTIVE_BOOKING_STATUSES,
)
from cloud.db.tables import BOOKING_SERIES as SERIES
from cloud.db.tables import BOOKINGS, BUILDINGS, DESKS, FLOORS, PEOPLE, ROOMS, SITES, ZONES
from cloud.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unavailable
from cloud.integrations.events import record_event
from ruang.site_defaults import DEFAULT_TIMEZONE

DESK_TAKEN = "Desk already booked for that time"
PERSON_TAKEN = "You already have a desk for that time"
SQLITE_WRITE_WAIT_S = 10.0
PG_RETRIES = 4
# PostgreSQL SQLSTATEs worth retrying: deadlock_detected, serialization_failure.
_RETRYABLE = {"40P01", "40001"}
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

T = TypeVar("T")


@dataclass(frozen=True)
class Rules:
    """The booking limits in force for a desk (its site's, or the defaults)."""

    timezone: str = DEFAULT_TIMEZONE
    max_booking_hours: int = 10
    max_days_ahead: int = 14
    one_desk_per_person_per_slot: bool = True
    checkin_grace_min: int = 15


def _sqlstate(exc: DBAPIError) -> str | None:
    orig: Any = exc.orig
    for candidate in (orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if code:
            return str(code)
    return None


def conflict_problem(exc: IntegrityError) -> DomainError | None:
    """The 409 for an overlap refused by the database, or None for another integrity error."""
    message = str(exc.orig)
    if "ex_bookings_desk_overlap" in message:
        return Conflict("another active booking holds this desk in that time range",
                            title=DESK_TAKEN)
    if "ex_bookings_person_overlap" in message:
        return Conflict("you hold another desk in that time range; one desk per "
                            "person per slot", title=PERSON_TAKEN)
    return None


def _lock_key(kind: str, ident: str) -> int:
    # A stable signed 63-bit key; crc32 twice keeps it well spread and cheap.
    raw = f"{kind}:{ident}".encode()
    return (zlib.crc32(raw) << 31) ^ zlib.crc32(raw[::-1])


class BookingStore:
    """Runs booking writes with the per-database contention policy described above."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def _sqlite_turn(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(SQLITE_WRITE_WAIT_S):
                await self._lock.acquire()
        except TimeoutError:
            raise Unavailable(f"the booking store is busy (waited {SQLITE_WRITE_WAIT_S:g} "
                               "s); retry shortly", title="Booking store busy") from None
        try:
            yield
        finally:
            self._lock.release()

    async def write(self, fn: Callable[[AsyncConnection], Awaitable[T]], *,
                    desks: Sequence[str] = (), people: Sequence[str] = ()) -> T:
        """Runs `fn` in one write transaction; overlaps become Conflict errors."""
        if self.sqlite:
            async with self._sqlite_turn():
                return await self._attempt(fn, ())
        keys = sorted({_lock_key("desk", d) for d in desks} | {_lock_key("person", p)
                                                               for p in people})
        for attempt in range(PG_RETRIES + 1):
            try:
                return await self._attempt(fn, keys)
            except DBAPIError as exc:
                if isinstance(exc, IntegrityError) or _sqlstate(exc) not in _RETRYABLE:
                    raise
                if attempt == PG_RETRIES:
                    raise Conflict("the desk was contended too long; try again",
                                       title=DESK_TAKEN) from exc
                await asyncio.sleep(0.01 * 2**attempt)
        raise AssertionError("unreachable")

    async def _attempt(self, fn: Callable[[AsyncConnection], Awaitable[T]],
                       keys: Sequence[int]) -> T:
        try:
            async with self.engine.begin() as conn:
                for key in keys:
                    # Sorted keys: two writers never wait on each other crosswise.
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
                return await fn(conn)
        except IntegrityError as exc:
            problem = conflict_problem(exc)
            if problem is None:
                raise
            raise problem from None


_stores: weakref.WeakKeyDictionary[AsyncEngine, BookingStore] = weakref.WeakKeyDictionary()


def store_for(engine: AsyncEngine) -> BookingStore:
    """The one store (hence one SQLite write queue) of an engine."""
    store = _stores.get(engine)
    if store is None:
        store = _stores[engine] = BookingStore(engine)
    return store


def now_utc() -> datetime:
    return datetime.now(UTC)


# --- rule checks ---------------------------------------------------------------

_DESK_CONTEXT = (
    select(
        DESKS.c.id, DESKS.c.mode, DESKS.c.assigned_person_id,
        ZONES.c.reserved_for_agency,
        SITES.c.timezone, SITES.c.max_booking_hours, SITES.c.max_days_ahead,
        SITES.c.one_desk_per_person_per_slot, SITES.c.checkin_grace_min,
    )
    .select_from(
        DESKS.outerjoin(ZONES, ZONES.c.id == DESKS.c.zone_id)
        .outerjoin(FLOORS, FLOORS.c.id == DESKS.c.floor_id)
        .outerjoin(BUILDINGS, BUILDINGS.c.id == FLOORS.c.building_id)
        .outerjoin(SITES, SITES.c.id == BUILDINGS.c.site_id)
    )
)


@dataclass(frozen=True)
class DeskContext:
    desk: Any  # Row of _DESK_CONTEXT
    person: Any  # Row of people
    rules: Rules


async def desk_context(conn: AsyncConnection, desk_id: str, person_id: str) -> DeskContext:
    desk = (await conn.execute(_DESK_CONTEXT.where(DESKS.c.id == desk_id))).first()
    if desk is None:
        raise NotFound(f"desk {desk_id!r} is unknown", title="Desk not found")
    person = (await conn.execute(select(PEOPLE).where(PEOPLE.c.id == person_id))).first()
    if person is None:
        raise NotFound(f"person {person_id!r} is unknown", title="Person not found")
    rules = Rules() if desk.timezone is None else Rules(
        desk.timezone, desk.max_booking_hours, desk.max_days_ahead,
        desk.one_desk_per_person_per_slot, desk.checkin_grace_min)
    return DeskContext(desk, person, rules)


def check_desk_and_person(ctx: DeskContext) -> None:
    desk, person = ctx.desk, ctx.person
    if desk.mode == "unavailable":
        raise Conflict(f"desk {desk.id} is out of service", title="Desk unavailable")
    if desk.mode == "drop_in":
        raise Conflict(f"desk {desk.id} is first come, first served: check in at the "
                           "desk instead of booking ahead", title="Drop-in desk")
    if desk.mode == "assigned" and desk.assigned_person_id != person.id:
        raise Forbidden(f"desk {desk.id} is assigned to someone else",
                           title="Desk assigned to someone else")
    agency = desk.reserved_for_agency
    if agency is not None and person.agency != agency:
        raise Forbidden(f"desk {desk.id} is in a zone reserved for {agency}",
                           title="Zone reserved for another agency")


def check_times(rules: Rules, starts_at: datetime, ends_at: datetime, now: datetime, *,
                person: Row[Any] | None = None, check_start: bool = True) -> None:
    if ends_at - starts_at > timedelta(hours=rules.max_booking_hours):
        raise Invalid(f"a booking may last at most {rules.max_booking_hours} h",
                           title="Booking too long")
    if check_start and starts_at < now - timedelta(minutes=rules.checkin_grace_min):
        raise Invalid("the booking starts in the past", title="Booking in the past")
    if ends_at <= now:
        raise Invalid("the booking ends in the past", title="Booking in the past")
    tz = ZoneInfo(rules.timezone)
    horizon = now.astimezone(tz).date() + timedelta(days=rules.max_days_ahead)
    if starts_at.astimezone(tz).date() > horizon:
        raise Invalid(f"bookings open {rules.max_days_ahead} days ahead "
                           f"(until {horizon.isoformat()})", title="Too far ahead")
    if person is not None and person.kind == "guest":
        if (person.valid_from and starts_at < person.valid_from) or (
                person.valid_until and ends_at > person.valid_until):
            raise Forbidden("the guest pass does not cover that time",
                               title="Guest pass not valid then")


# --- writes ----------------------------------------------------------------------

def _booking_row(ctx: DeskContext, starts_at: datetime, ends_at: datetime, now: datetime,
                 series_id: str | None = None) -> dict[str, Any]:
    return {
        "desk_id": ctx.desk.id, "person_id": ctx.person.id,
        "starts_at": starts_at.astimezone(UTC), "ends_at": ends_at.astimezone(UTC),
        "status": "booked", "exclusive_person": ctx.rules.one_desk_per_person_per_slot,
        "created_at": now, "series_id": series_id,
    }


async def _insert_booking(store: BookingStore, row: dict[str, Any]) -> BookingPublic:
    async def run(conn: AsyncConnection) -> BookingPublic:
        # The INSERT is the transaction's first statement: on SQLite that takes
        # the write lock at once, so no read snapshot can go stale underneath.
        created = (await conn.execute(insert(BOOKINGS).values(row).returning(BOOKINGS))).one()
        booking = BookingPublic.model_validate(created._mapping)
        # Same transaction: the webhook event exists exactly when the booking does.
        await record_event(conn, "booking.created", booking.model_dump(mode="json"))
        return booking

    return await store.write(run, desks=[row["desk_id"]], people=[row["person_id"]])


async def create_booking(engine: AsyncEngine, body: BookingCreate) -> BookingPublic:
    now = now_utc()
    async with engine.connect() as conn:
        ctx = await desk_context(conn, body.desk_id, body.person_id)
    check_desk_and_person(ctx)
    check_times(ctx.rules, body.starts_at, body.ends_at, now, person=ctx.person)
    return await _insert_booking(store_for(engine), _booking_row(ctx, body.starts_at,
                                                                 body.ends_at, now))


async def get_booking(conn: AsyncConnection, booking_id: int) -> Row[Any]:
    """One booking row; 404 problem when there is none."""
    return await _get(conn, booking_id)


async def _get(conn: AsyncConnection, booking_id: int) -> Row[Any]:
    row = (await conn.execute(select(BOOKINGS).where(BOOKINGS.c.id == booking_id))).first()
    if row is None:
        raise NotFound(f"booking {booking_id} is unknown", title="Booking not found")
    return row


async def cancel_booking(engine: AsyncEngine, booking_id: int) -> BookingPublic:
    now = now_utc()

    async def run(conn: AsyncConnection) -> BookingPublic:
        # Conditional UPDATE first: it both takes the write lock and makes a
        # concurrent check-in and cancel unable to both win.
        row = (await conn.execute(
            update(BOOKINGS)
            .where(BOOKINGS.c.id == booking_id, BOOKINGS.c.status == "booked")
            .values(status="cancelled", cancelled_at=now)
            .returning(BOOKINGS)
        )).first()
        if row is None:
            current = await _get(conn, booking_id)
            raise Conflict(f"booking {booking_id} is {current.status}; only a booked "
                               "(not yet checked-in) booking can be cancelled",
                               title="Booking not cancellable")
        booking = BookingPublic.model_validate(row._mapping)
        await record_event(conn, "booking.cancelled", booking.model_dump(mode="json"))
        return booking

    return await store_for(engine).write(run)


async def extend_booking(engine: AsyncEngine, booking_id: int, ends_at: datetime) -> BookingPublic:
    now = now_utc()
    async with engine.connect() as conn:
        current = await _get(conn, booking_id)
        ctx = await desk_context(conn, current.desk_id, current.person_id)
    if current.status not in ACTIVE_BOOKING_STATUSES:
        raise Conflict(f"booking {booking_id} is {current.status}",
                           title="Booking not active")
    if ends_at <= current.ends_at:
        raise Invalid("the new end must be later than the current one",
                           title="Not an extension")
    check_times(ctx.rules, current.starts_at, ends_at, now, person=ctx.person, check_start=False)

    async def run(conn: AsyncConnection) -> BookingPublic:
        row = (await conn.execute(
            update(BOOKINGS)
            .where(BOOKINGS.c.id == booking_id,
                   BOOKINGS.c.status.in_(ACTIVE_BOOKING_STATUSES))
            .values(ends_at=ends_at.astimezone(UTC))
            .returning(BOOKINGS)
        )).first()
        if row is None:
            raise Conflict(f"booking {booking_id} ended meanwhile",
                               title="Booking not active")
        booking = BookingPublic.model_validate(row._mapping)
        await record_event(conn, "booking.extended", booking.model_dump(mode="json"))
        return booking

    return await store_for(engine).write(run, desks=[current.desk_id],
                                         people=[current.person_id])


async def create_recurring(engine: AsyncEngine,
                           body: RecurringBookingCreate) -> RecurringBookingPublic:
    """Books every chosen weekday; a day that cannot be booked is listed, not fatal."""
    now = now_utc()
    async with engine.connect() as conn:
        ctx = await desk_context(conn, body.desk_id, body.person_id)
    check_desk_and_person(ctx)
    tz = ZoneInfo(ctx.rules.timezone)
    wanted = {_WEEKDAYS.index(d) for d in body.weekdays}
    days = [body.first_day + timedelta(days=i)
            for i in range((body.last_day - body.first_day).days + 1)]
    days = [d for d in days if d.weekday() in wanted]
    if len(days) > 366:
        raise Invalid("a series covers at most 366 days", title="Series too long")
    series_id = str(uuid.uuid4())
    store = store_for(engine)

    async def add_series(conn: AsyncConnection) -> None:
        await conn.execute(insert(SERIES).values(
            id=series_id, desk_id=body.desk_id, person_id=body.person_id,
            weekdays=sorted(wanted), first_day=body.first_day.isoformat(),
            last_day=body.last_day.isoformat(), start_time=body.start_time.strftime("%H:%M"),
            end_time=body.end_time.strftime("%H:%M"), timezone=ctx.rules.timezone,
            created_at=now))

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
            created.append(await _insert_booking(store, _booking_row(ctx, starts, ends, now,
                                                                      series_id)))
        except DomainError as problem:
            conflicts.append(RecurringConflict(day=day, title=problem.title,
                                               detail=problem.detail or problem.title))
    return RecurringBookingPublic(series_id=series_id, created=created, conflicts=conflicts)


# --- reads ---------------------------------------------------------------------------

def booking_filter(person: str | None, desk: str | None, start: datetime | None,
                   end: datetime | None) -> list[Any]:
    where: list[Any] = []
    if person is not None:
        where.append(BOOKINGS.c.person_id == person)
    if desk is not None:
        where.append(BOOKINGS.c.desk_id == desk)
    if start is not None:
        where.append(BOOKINGS.c.ends_at > start)
    if end is not None:
        where.append(BOOKINGS.c.starts_at < end)
    return where


async def list_bookings(conn: AsyncConnection, *, person: str | None = None,
                        desk: str | None = None, start: datetime | None = None,
                        end: datetime | None = None, limit: int = 1000) -> list[BookingPublic]:
    stmt = (select(BOOKINGS, DESKS.c.label.label("desk_label"),
                   FLOORS.c.name.label("floor_name"), ZONES.c.name.label("zone_name"))
            .select_from(BOOKINGS.outerjoin(DESKS, DESKS.c.id == BOOKINGS.c.desk_id)
                         .outerjoin(FLOORS, FLOORS.c.id == DESKS.c.floor_id)
                         .outerjoin(ZONES, ZONES.c.id == DESKS.c.zone_id))
            .where(*booking_filter(person, desk, start, end))
            .order_by(BOOKINGS.c.starts_at, BOOKINGS.c.id).limit(limit))
    return [BookingPublic.model_validate(r._mapping) for r in await conn.execute(stmt)]


def _features_clause(conn: AsyncConnection, column: Any, features: Sequence[str]) -> list[Any]:
    if not features:
        return []
    if conn.dialect.name == "postgresql":
        return [sql_cast(column, JSONB).contains(list(features))]
    # SQLite: one json_each probe per requested feature (there are at most four).
    return [
        exists(
            select(text("1")).select_from(func.json_each(column).table_valued("value"))
            .where(text(f"value = :feature_{i}").bindparams(bindparam(f"feature_{i}", f)))
        )
        for i, f in enumerate(features)
    ]


async def availability(conn: AsyncConnection, *, start: datetime, end: datetime,
                       floor: str | None = None, zone: str | None = None,
                       features: Sequence[str] = (), capacity: int | None = None,
                       ) -> AvailabilityPublic:
    """Desks with no active booking overlapping [start, end): one query, index-backed."""
    taken = exists().where(
        BOOKINGS.c.desk_id == DESKS.c.id,
        BOOKINGS.c.status.in_(ACTIVE_BOOKING_STATUSES),
        BOOKINGS.c.starts_at < end,
        BOOKINGS.c.ends_at > start,
    )
    where: list[Any] = [DESKS.c.mode != "unavailable", ~taken]
    room_where: list[Any] = []
    if floor is not None:
        where.append(DESKS.c.floor_id == floor)
        room_where.append(ZONES.c.floor_id == floor)
    if zone is not None:
        where.append(DESKS.c.zone_id == zone)
        room_where.append(ROOMS.c.zone_id == zone)
    where += _features_clause(conn, DESKS.c.features, features)
    desk_rows = await conn.execute(
        select(DESKS.c.id, DESKS.c.label, DESKS.c.mode, DESKS.c.features, DESKS.c.floor_id,
               DESKS.c.zone_id, ZONES.c.reserved_for_agency, DESKS.c.x, DESKS.c.y, DESKS.c.w,
               DESKS.c.h)
        .select_from(DESKS.outerjoin(ZONES, ZONES.c.id == DESKS.c.zone_id))
        .where(and_(*where)).order_by(DESKS.c.id)
    )
    if capacity is not None:
        room_where.append(ROOMS.c.capacity >= capacity)
    room_rows = await conn.execute(
        select(ROOMS.c.id, ROOMS.c.name, ROOMS.c.capacity, ROOMS.c.features,
               ZONES.c.floor_id, ROOMS.c.zone_id)
        .select_from(ROOMS.join(ZONES, ZONES.c.id == ROOMS.c.zone_id))
        .where(*room_where).order_by(ROOMS.c.id)
    )
    return AvailabilityPublic(
        start=start, end=end,
        desks=[AvailableDesk.model_validate(r._mapping) for r in desk_rows],
        rooms=[AvailableRoom.model_validate(r._mapping) for r in room_rows],
    )


async def desk_places(conn: AsyncConnection, desk_ids: Sequence[str]) -> dict[str, str]:
    """A human location per desk ("Gedung A1, Lantai 1, Zona X") for exports."""
    if not desk_ids:
        return {}
    rows = await conn.execute(
        select(DESKS.c.id, BUILDINGS.c.name.label("building"), FLOORS.c.name.label("floor"),
               ZONES.c.name.label("zone"))
        .select_from(DESKS.outerjoin(ZONES, ZONES.c.id == DESKS.c.zone_id)
                     .outerjoin(FLOORS, FLOORS.c.id == DESKS.c.floor_id)
                     .outerjoin(BUILDINGS, BUILDINGS.c.id == FLOORS.c.building_id))
        .where(DESKS.c.id.in_(list(set(desk_ids))))
    )
    return {r.id: ", ".join(p for p in (r.building, r.floor, r.zone) if p) or r.id
            for r in rows}


def weekday_names() -> tuple[str, ...]:
    return _WEEKDAYS

