"""The seat job: no-shows released, waitlist places that never got a seat expired.

A confirmed reservation nobody boarded (no `boarding` event marked it, see
`reservations.mark_boarded`) by its stop's scheduled departure plus
`seat_noshow_grace_min` becomes `no_show`: its seat goes back to the trip and to
the waitlist, first in line first, among riders whose own stop the bus has not
left yet. A waitlisted reservation whose stop the bus has left becomes `expired`.
Both stay as history, counted by the analytics (no-show rate).

`release_seat_no_shows(store, now, grace)` is one pass (tests call it with their
own `now`); `SeatJob` runs it every `seat_job_interval_s` in the app's lifespan,
through the app's booking store (on SQLite it queues with the API's writes).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.bookings.store import BookingStore
from cloud.db.job_errors import log_failed_pass
from cloud.db.tables import RESERVATIONS, TRIP_SEATS
from cloud.integrations.events import record_events
from cloud.transport.reservations import promote
from ruang.tasks import cancel_and_wait

log = logging.getLogger(__name__)


@dataclass
class SeatPass:
    """What one pass did: reservation ids released as no-shows, expired, promoted."""

    no_shows: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    promoted: list[int] = field(default_factory=list)


async def release_seat_no_shows(
    store: BookingStore, now: datetime | None = None, *, grace: timedelta
) -> SeatPass:
    at = now or datetime.now(UTC)
    deadline = at - grace

    async with store.engine.connect() as conn:
        due = (
            await conn.execute(
                select(RESERVATIONS.c.trip_id, RESERVATIONS.c.service_date)
                .where(
                    RESERVATIONS.c.status.in_(("confirmed", "waitlisted")),
                    RESERVATIONS.c.departs_at < deadline,
                )
                .distinct()
                .order_by(RESERVATIONS.c.trip_id, RESERVATIONS.c.service_date)
            )
        ).all()
    done = SeatPass()
    for trip_id, service_date in due:
        # One transaction per trip instance: it holds one counter row at a time, so it
        # cannot deadlock with an ingestion batch boarding riders on several trips.
        one: SeatPass = await store.write(
            partial(
                _release_trip, trip_id=trip_id, service_date=service_date, at=at, deadline=deadline
            )
        )
        done.no_shows += one.no_shows
        done.expired += one.expired
        done.promoted += one.promoted
    return done


async def _release_trip(
    conn: AsyncConnection, trip_id: str, service_date: str, at: datetime, deadline: datetime
) -> SeatPass:
    done = SeatPass()
    # The counter row first: the same order as every other seat write.
    await conn.execute(
        select(TRIP_SEATS.c.trip_id)
        .where(TRIP_SEATS.c.trip_id == trip_id, TRIP_SEATS.c.service_date == service_date)
        .with_for_update()
    )
    key = (RESERVATIONS.c.trip_id == trip_id) & (RESERVATIONS.c.service_date == service_date)
    released = (
        await conn.execute(
            update(RESERVATIONS)
            .where(key, RESERVATIONS.c.status == "confirmed", RESERVATIONS.c.departs_at < deadline)
            .values(status="no_show", ended_at=at)
            .returning(RESERVATIONS)
        )
    ).all()
    if released:
        await record_events(conn, "transport.seat_no_show", [dict(r._mapping) for r in released])
    expired = (
        await conn.execute(
            update(RESERVATIONS)
            .where(key, RESERVATIONS.c.status == "waitlisted", RESERVATIONS.c.departs_at < deadline)
            .values(status="expired", ended_at=at)
            .returning(RESERVATIONS.c.id)
        )
    ).all()
    if released:
        await conn.execute(
            update(TRIP_SEATS)
            .where(TRIP_SEATS.c.trip_id == trip_id, TRIP_SEATS.c.service_date == service_date)
            .values(confirmed=TRIP_SEATS.c.confirmed - len(released))
        )
        done.promoted = await promote(conn, trip_id, service_date, at)
    done.no_shows = sorted(r.id for r in released)
    done.expired = sorted(r.id for r in expired)
    return done


class SeatJob:
    """Runs `release_seat_no_shows` periodically; `on_change` hears the trips' seats moved."""

    def __init__(self, store: BookingStore, interval_s: float, grace: timedelta) -> None:
        self._store = store
        self._interval = interval_s
        self._grace = grace
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ruang-seat-noshow")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                done = await release_seat_no_shows(self._store, grace=self._grace)
            except Exception as exc:
                # A database hiccup: the next pass picks the same reservations up.
                log_failed_pass(log, "seat no-show pass failed", exc)
                continue
            if done.no_shows or done.expired:
                log.info(
                    "seats: %d no-show(s) released, %d waitlist place(s) expired, %d promoted",
                    len(done.no_shows),
                    len(done.expired),
                    len(done.promoted),
                )
