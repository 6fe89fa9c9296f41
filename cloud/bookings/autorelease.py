"""Auto-release of no-shows: a booking nobody checked into within its site's grace frees the desk.

`release_no_shows(engine, now)` does one pass (tests call it with their own
`now`); `AutoReleaser` runs it every `autorelease_interval_s` in the app's
lifespan, through the app's booking store. Released bookings stay in the table as
history (status `no_show`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.bookings import notices
from cloud.bookings.checkins import event_data
from cloud.bookings.site_rules import DESK_SITE, rules_of
from cloud.bookings.store import BookingStore
from cloud.db.job_errors import log_failed_pass
from cloud.db.tables import BOOKINGS
from cloud.integrations.events import record_event
from ruang.tasks import cancel_and_wait

log = logging.getLogger(__name__)


async def release_no_shows(
    engine: AsyncEngine, now: datetime | None = None, *, store: BookingStore | None = None
) -> list[str]:
    """Marks overdue `booked` bookings no_show; returns the desks that were freed.

    `store` is the app's booking store, so that on SQLite the pass queues with the
    API's booking writes; without one (a single pass, as in tests) it gets its own.
    """
    at = now or datetime.now(UTC)

    async def run(conn: AsyncConnection) -> list[str]:
        site = DESK_SITE.subquery()
        candidates = await conn.execute(
            select(
                BOOKINGS.c.id,
                BOOKINGS.c.desk_id,
                BOOKINGS.c.starts_at,
                site.c.timezone,
                site.c.checkin_grace_min,
                site.c.away_release_min,
            )
            .select_from(BOOKINGS.outerjoin(site, site.c.id == BOOKINGS.c.desk_id))
            .where(BOOKINGS.c.status == "booked", BOOKINGS.c.starts_at < at)
        )
        desks: list[str] = []
        for row in candidates.all():
            grace = timedelta(minutes=rules_of(row).checkin_grace_min)
            if row.starts_at + grace >= at:
                continue
            released = (
                await conn.execute(
                    update(BOOKINGS)
                    .where(BOOKINGS.c.id == row.id, BOOKINGS.c.status == "booked")
                    .values(status="no_show", released_at=at, release_reason="no_show")
                    .returning(BOOKINGS)
                )
            ).first()
            if released is not None:
                await record_event(conn, "booking.released", event_data(released))
                await notices.booking_released(conn, released, rules_of(row).timezone)
                desks.append(released.desk_id)
        return desks

    # Through the booking store: on SQLite it queues with the API's booking writes.
    return await (store or BookingStore(engine)).write(run)


class AutoReleaser:
    """Runs `release_no_shows` periodically and tells the snapshot publisher what changed."""

    def __init__(
        self, store: BookingStore, interval_s: float, on_released: Callable[[list[str]], None]
    ) -> None:
        self._store = store
        self._interval = interval_s
        self._on_released = on_released
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ruang-autorelease")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                desks = await release_no_shows(self._store.engine, store=self._store)
            except Exception as exc:
                # A database hiccup: the next pass picks the same bookings up.
                log_failed_pass(log, "auto-release pass failed", exc)
                continue
            if desks:
                log.info("released %d no-show booking(s)", len(desks))
                self._on_released(desks)
