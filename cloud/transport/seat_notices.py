"""Seat reminders: a passenger with a confirmed shuttle seat hears about it before departure.

`remind_seats(store, now, lead=...)` is one pass (tests call it with their own
`now`): each confirmed reservation (cloud/transport/reservations.py) whose
scheduled departure from its stop is within `lead` gets a `seat_reminder`
naming the route, the stop and the time, in the schedule's time zone. The de-dup
key (`seat_reminder:<reservation id>`) makes later passes add nothing.
`SeatReminder` runs passes every `seat_job_interval_s` in the app's lifespan.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.bookings.store import BookingStore
from cloud.db.job_errors import log_failed_pass
from cloud.db.tables import RESERVATIONS, TRANSPORT_ROUTES, TRANSPORT_STOPS, TRANSPORT_TRIPS
from cloud.notifications.outbox import notify
from cloud.transport import schedule
from ruang.tasks import cancel_and_wait

log = logging.getLogger(__name__)


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


async def remind_seats(
    store: BookingStore, now: datetime | None = None, *, lead: timedelta
) -> list[int]:
    """Writes reminders for confirmed seats departing within `lead`; the reservation ids."""
    at = now or datetime.now(UTC)
    R = RESERVATIONS

    async def run(conn: AsyncConnection) -> list[int]:
        zone = str(await schedule.timezone(conn))
        rows = await conn.execute(
            select(
                R.c.id,
                R.c.person_id,
                R.c.departs_at,
                R.c.from_stop,
                TRANSPORT_ROUTES.c.route_id,
                TRANSPORT_ROUTES.c.short_name,
                TRANSPORT_ROUTES.c.long_name,
                TRANSPORT_STOPS.c.name.label("stop_name"),
            )
            .select_from(
                R.join(TRANSPORT_TRIPS, TRANSPORT_TRIPS.c.trip_id == R.c.trip_id)
                .join(TRANSPORT_ROUTES, TRANSPORT_ROUTES.c.route_id == TRANSPORT_TRIPS.c.route_id)
                .outerjoin(TRANSPORT_STOPS, TRANSPORT_STOPS.c.stop_id == R.c.from_stop)
            )
            .where(
                R.c.status == "confirmed",
                R.c.departs_at > at,
                R.c.departs_at <= at + lead,
            )
            .order_by(R.c.id)
        )
        reminded = []
        for row in rows.all():
            await seat_reminder(
                conn,
                reservation_id=row.id,
                person_id=row.person_id,
                route=row.short_name or row.long_name or row.route_id,
                stop=row.stop_name or row.from_stop,
                departs_at=row.departs_at,
                timezone=zone,
            )
            reminded.append(int(row.id))
        return reminded

    return await store.write(run)


class SeatReminder:
    """Runs `remind_seats` every `interval_s` in the app's lifespan."""

    def __init__(self, store: BookingStore, interval_s: float, lead: timedelta) -> None:
        self._store = store
        self._interval = interval_s
        self._lead = lead
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ruang-seat-reminder")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await remind_seats(self._store, lead=self._lead)
            except Exception as exc:
                # A database hiccup: the next pass writes the same reminders.
                log_failed_pass(log, "seat reminder pass failed", exc)
