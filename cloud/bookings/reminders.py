"""Check-in reminders: a booking not checked into hears about it before it becomes a no-show.

`remind_before_deadline(engine, now, lead)` does one pass (tests call it with their
own `now`): every `booked` booking whose no-show deadline (start + the site's
check-in grace, as cloud/bookings/autorelease.py applies it) falls within
`lead` from now gets a `booking_reminder`. The de-dup key makes later passes
over the same booking add nothing. `CheckinReminder` runs passes in the app.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.bookings import notices
from cloud.bookings.site_rules import DESK_SITE, rules_of
from cloud.bookings.store import BookingStore
from cloud.db.job_errors import log_failed_pass
from cloud.db.tables import BOOKINGS
from ruang.tasks import cancel_and_wait

log = logging.getLogger(__name__)


async def remind_before_deadline(
    engine: AsyncEngine,
    now: datetime | None = None,
    *,
    lead: timedelta,
    store: BookingStore | None = None,
) -> int:
    """Writes reminders for bookings whose check-in deadline is within `lead`; returns how many
    bookings were looked at as due (repeats are absorbed by the de-dup key)."""
    at = now or datetime.now(UTC)

    async def run(conn: AsyncConnection) -> int:
        site = DESK_SITE.subquery()
        # The deadline is start + grace (grace >= 0): it can only be near when the
        # start is before now + lead.
        rows = await conn.execute(
            select(
                BOOKINGS,
                site.c.timezone,
                site.c.checkin_grace_min,
                site.c.away_release_min,
            )
            .select_from(BOOKINGS.outerjoin(site, site.c.id == BOOKINGS.c.desk_id))
            .where(BOOKINGS.c.status == "booked", BOOKINGS.c.starts_at <= at + lead)
        )
        due = 0
        for row in rows.all():
            rules = rules_of(row)
            deadline = row.starts_at + timedelta(minutes=rules.checkin_grace_min)
            if not deadline - lead <= at < deadline:
                continue
            await notices.booking_reminder(conn, row, deadline, rules.timezone)
            due += 1
        return due

    return await (store or BookingStore(engine)).write(run)


class CheckinReminder:
    """Runs `remind_before_deadline` every `interval_s` in the app's lifespan."""

    def __init__(self, store: BookingStore, interval_s: float, lead: timedelta) -> None:
        self._store = store
        self._interval = interval_s
        self._lead = lead
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ruang-checkin-reminder")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await remind_before_deadline(self._store.engine, lead=self._lead, store=self._store)
            except Exception as exc:
                # A database hiccup: the next pass writes the same reminders.
                log_failed_pass(log, "check-in reminder pass failed", exc)
