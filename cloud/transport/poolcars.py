"""Pool-car bookings: request, approval by the agency's approver, pick-up and return, alarms.

Two active bookings of one car never overlap: the database refuses it (migration
0012: an exclusion constraint on PostgreSQL, triggers on SQLite), and the writes
queue through the booking store as desk bookings do. `requested`, `approved` and
`picked_up` hold the car; a rejection, cancellation or return frees it.

Approvers: a token with the `approver` role decides the requests of people of the
approver's own agency (their roster record's `agency`); admins decide any.
Pick-up and return come from the car's node (`poolcar` events, applied by the
ingestion through `record_pickup` / `record_return`), with the edge's times.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Row, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.bookings.store import BookingStore
from cloud.db.models_transport_seats import CAR_OVERLAP
from cloud.db.tables import CAR_BOOKINGS, PEOPLE
from cloud.errors import Conflict, Forbidden, Invalid, NotFound
from cloud.integrations.events import EventKind, record_event
from cloud.people.auth import Principal
from cloud.transport.car_trips import finish_trip_log
from cloud.transport.schemas_cars import CarAlarm, CarBookingCreate, CarBookingPublic
from cloud.transport.seat_facts import vehicle_info

CAR_TAKEN = "Car already booked for that time"
PickupResult = Literal["picked_up", "duplicate", "unknown_booking", "not_approved", "wrong_car"]
ReturnResult = Literal["returned", "duplicate", "unknown_booking", "not_picked_up", "wrong_car"]


def now_utc() -> datetime:
    return datetime.now(UTC)


def alarm_of(row: Any, now: datetime, unreturned_after: timedelta) -> CarAlarm | None:
    """A picked-up car past its end is overdue; long past it, unreturned."""
    if row.status != "picked_up" or now <= row.ends_at:
        return None
    return "unreturned" if now > row.ends_at + unreturned_after else "overdue"


def to_public(row: Row[Any], now: datetime, unreturned_after: timedelta) -> CarBookingPublic:
    out = CarBookingPublic.model_validate(row._mapping)
    out.alarm = alarm_of(row, now, unreturned_after)
    return out


async def _write(store: BookingStore, fn: Any) -> Any:
    try:
        return await store.write(fn)
    except IntegrityError as exc:
        if CAR_OVERLAP not in str(exc.orig):
            raise
        raise Conflict(
            "another active booking holds this car in that time range", title=CAR_TAKEN
        ) from None


async def _event(conn: AsyncConnection, row: Row[Any]) -> None:
    # Kind by the status the booking now has; same transaction as the change.
    kind: EventKind = f"transport.car_{row.status}"  # type: ignore[assignment]
    await record_event(conn, kind, dict(row._mapping))


async def get_car_booking(conn: AsyncConnection, booking_id: int) -> Row[Any]:
    row = (await conn.execute(select(CAR_BOOKINGS).where(CAR_BOOKINGS.c.id == booking_id))).first()
    if row is None:
        raise NotFound(f"car booking {booking_id} is unknown", title="Car booking not found")
    return row


async def create(
    store: BookingStore, body: CarBookingCreate, person_id: str, unreturned_after: timedelta
) -> CarBookingPublic:
    now = now_utc()
    if body.ends_at <= now:
        raise Invalid("the booking must end in the future", title="Booking in the past")
    async with store.engine.connect() as conn:
        vehicle = await vehicle_info(conn, body.vehicle_id)
        agency = await conn.scalar(select(PEOPLE.c.agency).where(PEOPLE.c.id == person_id))
        known = await conn.scalar(select(PEOPLE.c.id).where(PEOPLE.c.id == person_id))
    if vehicle is None or vehicle.kind != "poolcar":
        raise NotFound(f"pool car {body.vehicle_id!r} is unknown", title="Pool car not found")
    if known is None:
        raise NotFound(f"person {person_id!r} is unknown", title="Person not found")

    async def run(conn: AsyncConnection) -> CarBookingPublic:
        row = (
            await conn.execute(
                insert(CAR_BOOKINGS)
                .values(
                    vehicle_id=body.vehicle_id,
                    person_id=person_id,
                    agency=agency,
                    purpose=body.purpose,
                    destination=body.destination,
                    starts_at=body.starts_at.astimezone(UTC),
                    ends_at=body.ends_at.astimezone(UTC),
                    status="requested",
                    created_at=now,
                )
                .returning(CAR_BOOKINGS)
            )
        ).one()
        await _event(conn, row)
        return to_public(row, now, unreturned_after)

    result: CarBookingPublic = await _write(store, run)
    return result


async def may_decide(conn: AsyncConnection, user: Principal, booking: Row[Any]) -> bool:
    """Admins decide every request; an approver those of their own agency."""
    if user.is_admin:
        return True
    if not user.has("approver") or booking.agency is None:
        return False
    mine = await conn.scalar(select(PEOPLE.c.agency).where(PEOPLE.c.id == user.subject))
    return mine is not None and mine == booking.agency


async def _transition(
    store: BookingStore,
    booking_id: int,
    from_statuses: tuple[str, ...],
    values: dict[str, Any],
    unreturned_after: timedelta,
    what: str,
) -> CarBookingPublic:
    now = now_utc()

    async def run(conn: AsyncConnection) -> CarBookingPublic:
        row = (
            await conn.execute(
                update(CAR_BOOKINGS)
                .where(CAR_BOOKINGS.c.id == booking_id, CAR_BOOKINGS.c.status.in_(from_statuses))
                .values(values)
                .returning(CAR_BOOKINGS)
            )
        ).first()
        if row is None:
            current = await get_car_booking(conn, booking_id)
            raise Conflict(
                f"car booking {booking_id} is {current.status}; only "
                f"{' or '.join(from_statuses)} can be {what}",
                title=f"Car booking not {what}",
            )
        await _event(conn, row)
        return to_public(row, now, unreturned_after)

    result: CarBookingPublic = await _write(store, run)
    return result


async def decide(
    store: BookingStore,
    booking_id: int,
    user: Principal,
    *,
    approve: bool,
    note: str | None,
    unreturned_after: timedelta,
) -> CarBookingPublic:
    async with store.engine.connect() as conn:
        booking = await get_car_booking(conn, booking_id)
        allowed = await may_decide(conn, user, booking)
    if not allowed:
        raise Forbidden(
            "Only an approver of the booker's agency (or an admin) decides this request.",
            title="Not your agency's request",
        )
    now = now_utc()
    return await _transition(
        store,
        booking_id,
        ("requested",),
        {
            "status": "approved" if approve else "rejected",
            "decided_by": user.subject,
            "decided_at": now,
            "decision_note": note,
        },
        unreturned_after,
        "approved" if approve else "rejected",
    )


async def cancel(
    store: BookingStore, booking_id: int, unreturned_after: timedelta
) -> CarBookingPublic:
    return await _transition(
        store,
        booking_id,
        ("requested", "approved"),
        {"status": "cancelled", "cancelled_at": now_utc()},
        unreturned_after,
        "cancelled",
    )


async def list_bookings(
    conn: AsyncConnection,
    *,
    visible: ColumnElement[Any] | None,
    vehicle_id: str | None,
    status: str | None,
    alarm: CarAlarm | None,
    unreturned_after: timedelta,
    limit: int,
) -> list[CarBookingPublic]:
    now = now_utc()
    stmt = select(CAR_BOOKINGS)
    if visible is not None:
        stmt = stmt.where(visible)
    if vehicle_id is not None:
        stmt = stmt.where(CAR_BOOKINGS.c.vehicle_id == vehicle_id)
    if status is not None:
        stmt = stmt.where(CAR_BOOKINGS.c.status == status)
    if alarm is not None:
        stmt = stmt.where(CAR_BOOKINGS.c.status == "picked_up", CAR_BOOKINGS.c.ends_at < now)
    rows = await conn.execute(stmt.order_by(CAR_BOOKINGS.c.starts_at.desc()).limit(limit))
    out = [to_public(r, now, unreturned_after) for r in rows.all()]
    return [b for b in out if alarm is None or b.alarm == alarm]


async def car_alarms(
    conn: AsyncConnection, unreturned_after: timedelta, now: datetime | None = None
) -> list[CarBookingPublic]:
    """Every picked-up car past its end (overdue or unreturned), for the dispatcher's view."""
    at = now or now_utc()
    rows = await conn.execute(
        select(CAR_BOOKINGS)
        .where(CAR_BOOKINGS.c.status == "picked_up", CAR_BOOKINGS.c.ends_at < at)
        .order_by(CAR_BOOKINGS.c.ends_at)
    )
    return [to_public(r, at, unreturned_after) for r in rows.all()]


# --- applied from the car's `poolcar` events (the ingestion's transaction) -------------------


async def record_pickup(
    conn: AsyncConnection, booking_id: int, vehicle_id: str, ts: datetime
) -> PickupResult:
    """An `approved` booking becomes `picked_up` at the edge's `ts`; replays are no-ops."""
    row = (await conn.execute(select(CAR_BOOKINGS).where(CAR_BOOKINGS.c.id == booking_id))).first()
    if row is None:
        return "unknown_booking"
    if row.vehicle_id != vehicle_id:
        return "wrong_car"
    if row.status in ("picked_up", "returned"):
        return "duplicate"
    done = (
        await conn.execute(
            update(CAR_BOOKINGS)
            .where(CAR_BOOKINGS.c.id == booking_id, CAR_BOOKINGS.c.status == "approved")
            .values(status="picked_up", picked_up_at=ts)
            .returning(CAR_BOOKINGS)
        )
    ).first()
    if done is None:
        return "not_approved"
    await _event(conn, done)
    return "picked_up"


async def record_return(
    conn: AsyncConnection, booking_id: int, vehicle_id: str, ts: datetime
) -> ReturnResult:
    """A `picked_up` booking becomes `returned`; its trip log (distance, trace) is written."""
    row = (await conn.execute(select(CAR_BOOKINGS).where(CAR_BOOKINGS.c.id == booking_id))).first()
    if row is None:
        return "unknown_booking"
    if row.vehicle_id != vehicle_id:
        return "wrong_car"
    if row.status == "returned":
        return "duplicate"
    done = (
        await conn.execute(
            update(CAR_BOOKINGS)
            .where(CAR_BOOKINGS.c.id == booking_id, CAR_BOOKINGS.c.status == "picked_up")
            .values(status="returned", returned_at=ts)
            .returning(CAR_BOOKINGS)
        )
    ).first()
    if done is None:
        return "not_picked_up"
    await _event(conn, done)
    await finish_trip_log(conn, booking_id)
    return "returned"
