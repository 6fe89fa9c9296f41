"""The dispatcher's decisions, stored: trip assignments, cancellations, service alerts.

Plain async functions on a connection; the live service (cloud/transport/live.py) keeps
a copy in memory and is told after each committed change.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import (
    TRANSPORT_SERVICE_ALERTS as ALERTS,
)
from cloud.db.tables import (
    TRANSPORT_TRIP_ASSIGNMENTS as ASSIGNMENTS,
)
from cloud.db.tables import (
    TRANSPORT_TRIP_CANCELLATIONS as CANCELLATIONS,
)
from cloud.db.tables import (
    TRANSPORT_TRIPS as TRIPS,
)
from cloud.db.tables import (
    TRANSPORT_VEHICLES as VEHICLES,
)
from cloud.errors import Invalid, NotFound
from cloud.integrations.events import record_event
from cloud.transport.schemas_live import (
    AlertCreate,
    AlertPublic,
    AssignmentCreate,
    AssignmentPublic,
    CancellationCreate,
    CancellationPublic,
)
from cloud.transport.seat_facts import CapacityRule
from cloud.transport.seat_vehicles import assign_vehicle, unassign_vehicle
from cloud.transport.trip_cancellations import end_reservations


def _now() -> datetime:
    return datetime.now(UTC)


async def _trip_exists(conn: AsyncConnection, trip_id: str) -> None:
    found = await conn.scalar(select(TRIPS.c.trip_id).where(TRIPS.c.trip_id == trip_id))
    if found is None:
        raise NotFound(f"no trip {trip_id!r} in the schedule")


async def assign(
    conn: AsyncConnection, body: AssignmentCreate, capacity: CapacityRule
) -> AssignmentPublic:
    """Put a vehicle on a trip of a day; a trip has one vehicle, re-assigning replaces it.
    The trip's seat counter takes the vehicle's capacity (cloud/transport/seat_vehicles.py)."""
    vehicle = await conn.scalar(select(VEHICLES.c.id).where(VEHICLES.c.id == body.vehicle))
    if vehicle is None:
        raise NotFound(f"no vehicle {body.vehicle!r}")
    await _trip_exists(conn, body.trip_id)
    at = _now()
    key = (ASSIGNMENTS.c.trip_id == body.trip_id) & (
        ASSIGNMENTS.c.service_date == body.service_date
    )
    await conn.execute(delete(ASSIGNMENTS).where(key))
    await conn.execute(
        ASSIGNMENTS.insert().values(
            **body.model_dump(exclude={"vehicle"}), vehicle_id=body.vehicle, assigned_at=at
        )
    )
    await assign_vehicle(conn, body.trip_id, body.service_date, body.vehicle, capacity)
    return AssignmentPublic(**body.model_dump(), assigned_at=at)


async def unassign(
    conn: AsyncConnection, trip_id: str, service_date: str, capacity: CapacityRule
) -> None:
    result = await conn.execute(
        delete(ASSIGNMENTS).where(
            ASSIGNMENTS.c.trip_id == trip_id, ASSIGNMENTS.c.service_date == service_date
        )
    )
    if not result.rowcount:
        raise NotFound(f"trip {trip_id!r} on {service_date} has no assignment")
    await unassign_vehicle(conn, trip_id, service_date, capacity)


async def assignments(
    conn: AsyncConnection, service_date: str | None = None
) -> list[AssignmentPublic]:
    q = select(ASSIGNMENTS).order_by(ASSIGNMENTS.c.service_date, ASSIGNMENTS.c.trip_id)
    if service_date is not None:
        q = q.where(ASSIGNMENTS.c.service_date == service_date)
    return [
        AssignmentPublic(
            vehicle=r.vehicle_id,
            trip_id=r.trip_id,
            service_date=r.service_date,
            assigned_at=r.assigned_at,
        )
        for r in await conn.execute(q)
    ]


async def cancel(conn: AsyncConnection, body: CancellationCreate) -> CancellationPublic:
    await _trip_exists(conn, body.trip_id)
    at = _now()
    await conn.execute(
        delete(CANCELLATIONS).where(
            CANCELLATIONS.c.trip_id == body.trip_id,
            CANCELLATIONS.c.service_date == body.service_date,
        )
    )
    await conn.execute(CANCELLATIONS.insert().values(**body.model_dump(), cancelled_at=at))
    # Riders hear now, not at the stop; the trip takes no new reservations either.
    ended = await end_reservations(conn, body.trip_id, body.service_date, at)
    cancelled = CancellationPublic(**body.model_dump(), cancelled_at=at)
    # Same transaction as the cancellation and the seats it ended.
    await record_event(
        conn,
        "transport.trip_cancelled",
        {**cancelled.model_dump(mode="json"), "reservations_ended": len(ended)},
    )
    return cancelled


async def uncancel(conn: AsyncConnection, trip_id: str, service_date: str) -> None:
    result = await conn.execute(
        delete(CANCELLATIONS).where(
            CANCELLATIONS.c.trip_id == trip_id, CANCELLATIONS.c.service_date == service_date
        )
    )
    if not result.rowcount:
        raise NotFound(f"trip {trip_id!r} on {service_date} is not cancelled")


async def cancellations(conn: AsyncConnection) -> list[CancellationPublic]:
    rows = await conn.execute(
        select(CANCELLATIONS).order_by(CANCELLATIONS.c.service_date, CANCELLATIONS.c.trip_id)
    )
    return [
        CancellationPublic(
            trip_id=r.trip_id,
            service_date=r.service_date,
            reason=r.reason,
            cancelled_at=r.cancelled_at,
        )
        for r in rows
    ]


def _alert(row: object, now: datetime) -> AlertPublic:
    r = row._mapping  # type: ignore[attr-defined]
    starts, ends = r["starts_at"], r["ends_at"]
    active = (starts is None or starts <= now) and (ends is None or now < ends)
    return AlertPublic(
        **{k: r[k] for k in AlertPublic.model_fields if k != "active"}, active=active
    )


async def create_alert(conn: AsyncConnection, body: AlertCreate) -> AlertPublic:
    if body.starts_at and body.ends_at and body.ends_at <= body.starts_at:
        raise Invalid("ends_at must be after starts_at")
    values = {**body.model_dump(), "id": str(uuid.uuid4()), "created_at": _now()}
    await conn.execute(ALERTS.insert().values(**values))
    row = (await conn.execute(select(ALERTS).where(ALERTS.c.id == values["id"]))).one()
    return _alert(row, _now())


async def delete_alert(conn: AsyncConnection, alert_id: str) -> None:
    result = await conn.execute(delete(ALERTS).where(ALERTS.c.id == alert_id))
    if not result.rowcount:
        raise NotFound(f"no alert {alert_id!r}")


async def alerts(conn: AsyncConnection, *, active_only: bool = False) -> list[AlertPublic]:
    now = _now()
    rows = await conn.execute(select(ALERTS).order_by(ALERTS.c.created_at, ALERTS.c.id))
    out = [_alert(r, now) for r in rows]
    return [a for a in out if a.active] if active_only else out
