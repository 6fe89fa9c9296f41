"""What people are told about their desk bookings, written in the booking's own transaction.

Each notice carries a de-dup key naming the booking and the event, so a
replayed edge event or a job's second pass tells nobody twice. Times travel as
UTC ISO strings with the site's time zone; the templates show them locally.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.bookings.site_rules import desk_rules
from cloud.notifications.outbox import Notice, notify, notify_many


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _confirmed(row: Any, timezone: str) -> Notice:
    return Notice(
        person_id=row.person_id,
        kind="booking_confirmed",
        data={
            "booking_id": row.id,
            "desk_id": row.desk_id,
            "starts_at": _iso(row.starts_at),
            "ends_at": _iso(row.ends_at),
            "timezone": timezone,
        },
        dedup_key=f"booking_confirmed:{row.id}",
    )


async def booking_confirmed(conn: AsyncConnection, row: Any, timezone: str) -> None:
    await notify_many(conn, [_confirmed(row, timezone)])


async def bookings_confirmed(conn: AsyncConnection, made: list[tuple[Any, str]]) -> None:
    """The confirmations of a batch of new bookings: (row, site time zone) each."""
    await notify_many(conn, [_confirmed(row, timezone) for row, timezone in made])


async def booking_reminder(
    conn: AsyncConnection, row: Any, deadline: datetime, timezone: str
) -> None:
    await notify(
        conn,
        person_id=row.person_id,
        kind="booking_reminder",
        data={
            "booking_id": row.id,
            "desk_id": row.desk_id,
            "starts_at": _iso(row.starts_at),
            "deadline_at": _iso(deadline),
            "timezone": timezone,
        },
        dedup_key=f"booking_reminder:{row.id}",
    )


async def booking_released(conn: AsyncConnection, row: Any, timezone: str | None = None) -> None:
    """Tells the holder their booking was released, with `release_reason` as the reason."""
    if timezone is None:
        timezone = (await desk_rules(conn, row.desk_id)).timezone
    await notify(
        conn,
        person_id=row.person_id,
        kind="booking_released",
        data={
            "booking_id": row.id,
            "desk_id": row.desk_id,
            "starts_at": _iso(row.starts_at),
            "reason": row.release_reason or "released_at_desk",
            "timezone": timezone,
        },
        dedup_key=f"booking_released:{row.id}",
    )
