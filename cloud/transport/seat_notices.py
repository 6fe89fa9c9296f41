"""What a passenger is told about a reserved shuttle seat: the `seat_reminder` notification.

The hook for the seat reservations (cloud/transport/reservations.py, on its own
branch when this was written): their reminder pass calls `seat_reminder` in its
transaction for each confirmed reservation departing within the lead time
(`reminder_due`). The de-dup key makes a repeated pass remind once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.notifications.outbox import notify


def reminder_due(departs_at: datetime, now: datetime, lead: timedelta) -> bool:
    """True from `lead` before the departure until the departure."""
    return departs_at - lead <= now < departs_at


async def seat_reminder(
    conn: AsyncConnection,
    *,
    reservation_id: int,
    person_id: str,
    route: str,
    stop: str,
    departs_at: datetime,
    timezone: str,
) -> None:
    await notify(
        conn,
        person_id=person_id,
        kind="seat_reminder",
        data={
            "reservation_id": reservation_id,
            "route": route,
            "stop": stop,
            "departs_at": departs_at.astimezone(UTC).isoformat(),
            "timezone": timezone,
        },
        dedup_key=f"seat_reminder:{reservation_id}",
    )
