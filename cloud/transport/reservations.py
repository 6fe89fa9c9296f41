"""Seat reservations on shuttle trip instances: reserve, cancel, waitlist promotion, boarding.

The database decides who gets the last seat (migration 0012): a reservation takes
a seat with one conditional UPDATE of the trip instance's counter row
(`confirmed + walk_ons < capacity`), and the row's CHECK constraint refuses any
write that would overbook. On PostgreSQL concurrent UPDATEs of that row queue on
its row lock and each re-checks the condition after the wait; on SQLite the
writes queue on the booking store's one lock (cloud/bookings/store.py). Every
write that changes a trip instance's seats touches the counter row first, so
cancels, promotions, no-shows and boardings of one trip never interleave.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.bookings.store import BookingStore
from cloud.db.models_transport_seats import RESERVATION_UNIQUE, SEATS_CHECK
from cloud.db.tables import PEOPLE, RESERVATIONS, TRIP_SEATS
from cloud.errors import Conflict, Full, Invalid, NotFound
from cloud.integrations.events import record_event
from cloud.transport.schemas_seats import ReservationCreate, ReservationPublic, TripSeatsPublic
from cloud.transport.seat_facts import (
    DEFAULT_RULE,
    CapacityRule,
    TripFacts,
    ensure_counter,
    trip_facts,
)
from cloud.transport.trip_cancellations import refuse_if_cancelled

TRIP_FULL = "Trip full"
ALREADY_RESERVED = "Already reserved"

BoardingResult = Literal[
    "reserved", "walk_on", "walk_on_over", "already_boarded", "unknown_trip", "unknown_person"
]


def now_utc() -> datetime:
    return datetime.now(UTC)


def counter_key(trip_id: str, service_date: str) -> Any:
    return (TRIP_SEATS.c.trip_id == trip_id) & (TRIP_SEATS.c.service_date == service_date)


def _res_key(trip_id: str, service_date: str) -> Any:
    return (RESERVATIONS.c.trip_id == trip_id) & (RESERVATIONS.c.service_date == service_date)


def integrity_problem(exc: IntegrityError) -> Conflict | None:
    """The 409 for a refusal by the seat constraints, or None for another integrity error."""
    message = str(exc.orig)
    if RESERVATION_UNIQUE in message or "transport_reservations.trip_id" in message:
        # SQLite names the columns of a violated unique index, PostgreSQL its name.
        return Conflict(
            "you already hold a seat or a waitlist place on this trip; one per person",
            title=ALREADY_RESERVED,
        )
    if SEATS_CHECK in message:
        return Full("no seat left on this trip", title=TRIP_FULL)
    return None


async def _write(store: BookingStore, fn: Any) -> Any:
    try:
        return await store.write(fn)
    except IntegrityError as exc:
        problem = integrity_problem(exc)
        if problem is None:
            raise
        raise problem from None


async def lock_counter(conn: AsyncConnection, trip_id: str, service_date: str) -> Row[Any] | None:
    """The counter row, locked until the transaction ends (PostgreSQL; SQLite holds its
    one write lock already)."""
    return (
        await conn.execute(
            select(TRIP_SEATS).where(counter_key(trip_id, service_date)).with_for_update()
        )
    ).first()


async def _take_seat(conn: AsyncConnection, trip_id: str, service_date: str) -> bool:
    taken = (
        await conn.execute(
            update(TRIP_SEATS)
            .where(
                counter_key(trip_id, service_date),
                TRIP_SEATS.c.confirmed + TRIP_SEATS.c.walk_ons < TRIP_SEATS.c.capacity,
            )
            .values(confirmed=TRIP_SEATS.c.confirmed + 1)
            .returning(TRIP_SEATS.c.confirmed)
        )
    ).first()
    return taken is not None


async def _count(conn: AsyncConnection, trip_id: str, service_date: str, column: str) -> None:
    col = TRIP_SEATS.c[column]
    await conn.execute(
        update(TRIP_SEATS).where(counter_key(trip_id, service_date)).values({col: col + 1})
    )


async def _free_seat(conn: AsyncConnection, trip_id: str, service_date: str) -> None:
    await conn.execute(
        update(TRIP_SEATS)
        .where(counter_key(trip_id, service_date))
        .values(confirmed=TRIP_SEATS.c.confirmed - 1)
    )


async def public(conn: AsyncConnection, row: Row[Any]) -> ReservationPublic:
    out = ReservationPublic.model_validate(row._mapping)
    if out.status == "waitlisted":
        ahead = await conn.scalar(
            select(func.count())
            .select_from(RESERVATIONS)
            .where(
                _res_key(out.trip_id, out.service_date),
                RESERVATIONS.c.status == "waitlisted",
                RESERVATIONS.c.id < out.id,
            )
        )
        out.waitlist_position = int(ahead or 0) + 1
    return out


async def promote(
    conn: AsyncConnection, trip_id: str, service_date: str, now: datetime
) -> list[int]:
    """Gives free seats to the waitlist, first in line first; call with the counter locked.

    A waitlisted rider whose stop the bus has already left is skipped (the no-show
    job expires them).
    """
    promoted: list[int] = []
    while True:
        first = (
            await conn.execute(
                select(RESERVATIONS.c.id)
                .where(
                    _res_key(trip_id, service_date),
                    RESERVATIONS.c.status == "waitlisted",
                    RESERVATIONS.c.departs_at > now,
                )
                .order_by(RESERVATIONS.c.id)
                .limit(1)
            )
        ).first()
        if first is None or not await _take_seat(conn, trip_id, service_date):
            return promoted
        row = (
            await conn.execute(
                update(RESERVATIONS)
                .where(RESERVATIONS.c.id == first.id)
                .values(status="confirmed", promoted_at=now)
                .returning(RESERVATIONS)
            )
        ).one()
        # The rider's own systems (and the notice) hear of the seat when it commits.
        await record_event(conn, "transport.seat_promoted", dict(row._mapping))
        promoted.append(first.id)


def _stop_departure(facts: TripFacts, body: ReservationCreate) -> datetime:
    order = [stop for stop, _ in facts.stops]
    if body.from_stop not in order:
        raise Invalid(
            f"trip {facts.trip_id} does not call at stop {body.from_stop!r}", title="Unknown stop"
        )
    if body.to_stop is not None and (
        body.to_stop not in order or order.index(body.to_stop) <= order.index(body.from_stop)
    ):
        raise Invalid(
            f"stop {body.to_stop!r} is not served after {body.from_stop!r} on this trip",
            title="Unknown stop",
        )
    return dict(facts.stops)[body.from_stop]


async def reserve(
    store: BookingStore,
    body: ReservationCreate,
    person_id: str,
    *,
    capacity: CapacityRule,
    now: datetime | None = None,
) -> ReservationPublic:
    """A confirmed seat, a waitlist place (when asked for and full), or a 409 saying why not."""
    at = now or now_utc()
    async with store.engine.connect() as conn:
        facts = await trip_facts(conn, body.trip_id, body.service_date, capacity)
        if await conn.scalar(select(PEOPLE.c.id).where(PEOPLE.c.id == person_id)) is None:
            raise NotFound(f"person {person_id!r} is unknown", title="Person not found")
    departs = _stop_departure(facts, body)
    if departs <= at:
        raise Conflict("the shuttle has already left that stop", title="Trip departed")

    async def run(conn: AsyncConnection) -> ReservationPublic:
        if not facts.counted:
            await ensure_counter(conn, facts)
        # From here to the commit this transaction holds the counter row's lock (PostgreSQL):
        # two statements, so racing requests for one trip queue as briefly as possible.
        if await _take_seat(conn, body.trip_id, body.service_date):
            status = "confirmed"
        elif body.waitlist:
            status = "waitlisted"
        else:
            seats = (
                await conn.execute(
                    select(TRIP_SEATS).where(counter_key(facts.trip_id, facts.service_date))
                )
            ).one()
            raise Full(
                f"all {seats.capacity} seats of trip {body.trip_id} on {body.service_date} are "
                "taken; ask again with waitlist=true to queue for a seat",
                title=TRIP_FULL,
                capacity=seats.capacity,
            )
        # Checked while holding the counter row's lock, which a cancellation takes too: a
        # reservation racing one either is ended by it or sees it here.
        await refuse_if_cancelled(conn, body.trip_id, body.service_date)
        row = (
            await conn.execute(
                insert(RESERVATIONS)
                .values(
                    trip_id=body.trip_id,
                    service_date=body.service_date,
                    person_id=person_id,
                    from_stop=body.from_stop,
                    to_stop=body.to_stop,
                    status=status,
                    walk_on=False,
                    departs_at=departs,
                    created_at=at,
                )
                .returning(RESERVATIONS)
            )
        ).one()
        made = await public(conn, row)
        # Same transaction: integrations hear of the seat exactly when it is taken.
        await record_event(conn, "transport.seat_reserved", made.model_dump(mode="json"))
        return made

    result: ReservationPublic = await _write(store, run)
    return result


async def get_reservation(conn: AsyncConnection, reservation_id: int) -> Row[Any]:
    row = (
        await conn.execute(select(RESERVATIONS).where(RESERVATIONS.c.id == reservation_id))
    ).first()
    if row is None:
        raise NotFound(f"reservation {reservation_id} is unknown", title="Reservation not found")
    return row


async def cancel(
    store: BookingStore, reservation_id: int, now: datetime | None = None
) -> ReservationPublic:
    """Cancels a confirmed or waitlisted reservation; a freed seat goes to the waitlist."""
    at = now or now_utc()
    async with store.engine.connect() as conn:
        current = await get_reservation(conn, reservation_id)

    async def run(conn: AsyncConnection) -> ReservationPublic:
        await lock_counter(conn, current.trip_id, current.service_date)
        status = await conn.scalar(
            select(RESERVATIONS.c.status).where(RESERVATIONS.c.id == reservation_id)
        )
        if status not in ("confirmed", "waitlisted"):
            raise Conflict(
                f"reservation {reservation_id} is {status}; only a confirmed or waitlisted "
                "reservation can be cancelled",
                title="Reservation not cancellable",
            )
        row = (
            await conn.execute(
                update(RESERVATIONS)
                .where(RESERVATIONS.c.id == reservation_id)
                .values(status="cancelled", ended_at=at)
                .returning(RESERVATIONS)
            )
        ).one()
        if status == "confirmed":
            await _free_seat(conn, current.trip_id, current.service_date)
            await promote(conn, current.trip_id, current.service_date, at)
        ended = await public(conn, row)
        await record_event(conn, "transport.seat_cancelled", ended.model_dump(mode="json"))
        return ended

    result: ReservationPublic = await _write(store, run)
    return result


async def list_for_person(
    conn: AsyncConnection, person_id: str, *, active_only: bool = False, limit: int = 200
) -> list[ReservationPublic]:
    stmt = select(RESERVATIONS).where(
        RESERVATIONS.c.person_id == person_id, RESERVATIONS.c.walk_on.is_(False)
    )
    if active_only:
        stmt = stmt.where(RESERVATIONS.c.status.in_(("confirmed", "waitlisted")))
    rows = await conn.execute(stmt.order_by(RESERVATIONS.c.departs_at.desc()).limit(limit))
    return [await public(conn, row) for row in rows.all()]


async def trip_seats(
    conn: AsyncConnection, trip_id: str, service_date: str, *, capacity: CapacityRule
) -> TripSeatsPublic:
    """Counts of one trip instance; a trip nobody reserved yet shows its full capacity."""
    row = (await conn.execute(select(TRIP_SEATS).where(counter_key(trip_id, service_date)))).first()
    if row is None:
        facts = await trip_facts(conn, trip_id, service_date, capacity)
        return TripSeatsPublic(
            trip_id=trip_id,
            service_date=service_date,
            vehicle_id=facts.vehicle_id,
            capacity=facts.capacity,
            confirmed=0,
            walk_ons=0,
            walk_ons_over=0,
            free=facts.capacity,
            waitlist=0,
            departs_at=facts.departs_at,
        )
    waitlist = await conn.scalar(
        select(func.count())
        .select_from(RESERVATIONS)
        .where(_res_key(trip_id, service_date), RESERVATIONS.c.status == "waitlisted")
    )
    return TripSeatsPublic(
        trip_id=trip_id,
        service_date=service_date,
        vehicle_id=row.vehicle_id,
        capacity=row.capacity,
        confirmed=row.confirmed,
        walk_ons=row.walk_ons,
        walk_ons_over=row.walk_ons_over,
        free=max(0, row.capacity - row.confirmed - row.walk_ons),
        waitlist=int(waitlist or 0),
        departs_at=row.departs_at,
    )


@dataclass(frozen=True)
class Boarded:
    """What `mark_boarded` did: the result and the reservation row it used or created."""

    result: BoardingResult
    reservation_id: int | None = None


async def _admit_walk_on(conn: AsyncConnection, trip_id: str, service_date: str) -> BoardingResult:
    taken = (
        await conn.execute(
            update(TRIP_SEATS)
            .where(
                counter_key(trip_id, service_date),
                TRIP_SEATS.c.confirmed + TRIP_SEATS.c.walk_ons < TRIP_SEATS.c.capacity,
            )
            .values(walk_ons=TRIP_SEATS.c.walk_ons + 1)
            .returning(TRIP_SEATS.c.walk_ons)
        )
    ).first()
    if taken is not None:
        return "walk_on"
    await _count(conn, trip_id, service_date, "walk_ons_over")
    return "walk_on_over"


async def mark_boarded(
    conn: AsyncConnection,
    trip_id: str,
    service_date: str,
    person_or_reservation: str | int,
    ts: datetime,
    *,
    stop: str | None = None,
    capacity: CapacityRule = DEFAULT_RULE,
) -> Boarded:
    """Applies an allowed `boarding` on the caller's transaction (the ridesedge applier's).

    `person_or_reservation`: an int is a reservation id, a str a person id. A held
    reservation becomes `boarded`; a rider without one is a walk-on, counted within
    free capacity or, when the vehicle admitted them on a stale snapshot, as
    `walk_on_over`. A reservation already released as a no-show (its boarding came
    in late, after an outage) counts as boarded after all. Replays are no-ops.
    """
    try:
        facts = await trip_facts(conn, trip_id, service_date, capacity)
    except NotFound:
        return Boarded("unknown_trip")
    await ensure_counter(conn, facts)
    await lock_counter(conn, trip_id, service_date)
    if isinstance(person_or_reservation, int):
        found = (
            await conn.execute(
                select(RESERVATIONS).where(
                    RESERVATIONS.c.id == person_or_reservation, _res_key(trip_id, service_date)
                )
            )
        ).first()
        if found is None:
            return Boarded("unknown_trip")
        person_id = str(found.person_id)
    else:
        person_id = person_or_reservation
        if await conn.scalar(select(PEOPLE.c.id).where(PEOPLE.c.id == person_id)) is None:
            return Boarded("unknown_person")
    rows = (
        await conn.execute(
            select(RESERVATIONS)
            .where(_res_key(trip_id, service_date), RESERVATIONS.c.person_id == person_id)
            .order_by(RESERVATIONS.c.id.desc())
        )
    ).all()
    active = next((r for r in rows if r.status in ("confirmed", "waitlisted", "boarded")), None)
    late = next((r for r in rows if r.status == "no_show"), None)
    if active is not None and active.status == "boarded":
        return Boarded("already_boarded", active.id)
    if active is not None and active.status == "confirmed":
        await _set_boarded(conn, active.id, ts)
        return Boarded("reserved", active.id)
    if active is None and late is not None:
        # Released while the vehicle could not report: the seat was used after all.
        taken = await _take_seat(conn, trip_id, service_date)
        if not taken:
            await _count(conn, trip_id, service_date, "walk_ons_over")
        await _set_boarded(conn, late.id, ts)
        return Boarded("reserved", late.id)
    result = await _admit_walk_on(conn, trip_id, service_date)
    if active is not None:  # waitlisted, boarded without a seat: a walk-on now
        await conn.execute(
            update(RESERVATIONS)
            .where(RESERVATIONS.c.id == active.id)
            .values(status="boarded", walk_on=True, boarded_at=ts)
        )
        return Boarded(result, active.id)
    departs = dict(facts.stops).get(stop or "", facts.departs_at)
    new_id = await conn.scalar(
        insert(RESERVATIONS)
        .values(
            trip_id=trip_id,
            service_date=service_date,
            person_id=person_id,
            from_stop=stop or facts.stops[0][0],
            status="boarded",
            walk_on=True,
            departs_at=departs,
            created_at=ts,
            boarded_at=ts,
        )
        .returning(RESERVATIONS.c.id)
    )
    return Boarded(result, new_id)


async def _set_boarded(conn: AsyncConnection, reservation_id: int, ts: datetime) -> None:
    await conn.execute(
        update(RESERVATIONS)
        .where(RESERVATIONS.c.id == reservation_id)
        .values(status="boarded", boarded_at=ts, ended_at=None)
    )
