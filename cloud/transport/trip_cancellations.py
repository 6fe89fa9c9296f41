"""What a dispatcher's trip cancellation does to the seats on it.

A cancelled trip instance takes no new reservations (`refuse_if_cancelled`, called
by `cloud.transport.reservations.reserve`), and cancelling it ends every confirmed
and waitlisted reservation on it in the same transaction as the cancellation row
(`end_reservations`): each rider gets a `seat_cancelled` notification instead of
finding out at the stop. The counter row is touched first, like every other seat
write, so a reservation racing the cancellation either lands before it (and is
ended here) or sees the cancellation and is refused. Seats freed this way go to
nobody: the waitlist of a trip that will not run is ended too.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import RESERVATIONS, TRANSPORT_ROUTES, TRANSPORT_TRIPS, TRIP_SEATS
from cloud.db.tables import TRANSPORT_TRIP_CANCELLATIONS as CANCELLATIONS
from cloud.errors import Conflict
from cloud.notifications.outbox import notify
from cloud.transport import schedule

TRIP_CANCELLED = "Trip cancelled"


async def is_cancelled(conn: AsyncConnection, trip_id: str, service_date: str) -> bool:
    row = await conn.scalar(
        select(CANCELLATIONS.c.trip_id).where(
            CANCELLATIONS.c.trip_id == trip_id, CANCELLATIONS.c.service_date == service_date
        )
    )
    return row is not None


async def refuse_if_cancelled(conn: AsyncConnection, trip_id: str, service_date: str) -> None:
    if await is_cancelled(conn, trip_id, service_date):
        raise Conflict(
            f"trip {trip_id} on {service_date} is cancelled by the dispatcher",
            title=TRIP_CANCELLED,
        )


async def end_reservations(
    conn: AsyncConnection, trip_id: str, service_date: str, at: datetime | None = None
) -> list[int]:
    """Ends the confirmed and waitlisted reservations of a cancelled trip; their ids."""
    when = at or datetime.now(UTC)
    # Touch the counter row first: it is the lock every seat write of this trip takes.
    await conn.execute(
        update(TRIP_SEATS)
        .where(TRIP_SEATS.c.trip_id == trip_id, TRIP_SEATS.c.service_date == service_date)
        .values(confirmed=TRIP_SEATS.c.confirmed)
    )
    R = RESERVATIONS
    rows = (
        await conn.execute(
            select(R.c.id, R.c.person_id, R.c.status, R.c.departs_at).where(
                R.c.trip_id == trip_id,
                R.c.service_date == service_date,
                R.c.status.in_(("confirmed", "waitlisted")),
            )
        )
    ).all()
    if not rows:
        return []
    ids = [r.id for r in rows]
    await conn.execute(update(R).where(R.c.id.in_(ids)).values(status="cancelled", ended_at=when))
    confirmed = sum(r.status == "confirmed" for r in rows)
    await conn.execute(
        update(TRIP_SEATS)
        .where(TRIP_SEATS.c.trip_id == trip_id, TRIP_SEATS.c.service_date == service_date)
        .values(confirmed=TRIP_SEATS.c.confirmed - confirmed)
    )
    route = (
        await conn.execute(
            select(TRANSPORT_ROUTES.c.short_name, TRANSPORT_ROUTES.c.route_id)
            .select_from(
                TRANSPORT_TRIPS.join(
                    TRANSPORT_ROUTES, TRANSPORT_ROUTES.c.route_id == TRANSPORT_TRIPS.c.route_id
                )
            )
            .where(TRANSPORT_TRIPS.c.trip_id == trip_id)
        )
    ).first()
    route_name = (route.short_name or route.route_id) if route is not None else trip_id
    zone = str(await schedule.timezone(conn))
    for r in rows:
        departs = r.departs_at if r.departs_at.tzinfo else r.departs_at.replace(tzinfo=UTC)
        await notify(
            conn,
            person_id=r.person_id,
            kind="seat_cancelled",
            data={
                "reservation_id": r.id,
                "route": route_name,
                "departs_at": departs.astimezone(UTC).isoformat(),
                "timezone": zone,
            },
            dedup_key=f"seat_cancelled:{r.id}",
        )
    return ids
