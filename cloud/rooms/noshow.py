"""Room no-shows by radar: warn the organiser, then release a booking nobody turned up to.

A booked meeting counts as attended when someone checked in at the panel or the
room's radar sensed the room occupied after (or shortly before) it started
(`sensed_at`, set by ingestion through `record_readings` below, or here when the room
already reads occupied). Otherwise, with the site's check-in grace G:

* from start + G/2 the organiser gets one `room_noshow_warning` (in the same
  transaction that records `warned_at`, so it is sent exactly when recorded);
* from start + G the booking becomes `no_show` and the room is free again, and the
  organiser gets `room_released`.

A room with no sensor (occupied never reported) is never released by this job:
nobody can tell it is empty. `room_noshow_pass(engine, now)` does one pass (tests
give their own `now`); `RoomNoShowJob` runs it beside the desks' auto-release.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.bookings.store import BookingStore
from cloud.db.job_errors import log_failed_pass
from cloud.db.tables import ROOM_BOOKINGS, ROOM_PRESENCE_CHANGES
from cloud.integrations.events import record_event
from cloud.notifications.outbox import notify
from cloud.rooms.reads import ROOM_SITE, _context
from ruang.tasks import cancel_and_wait

log = logging.getLogger(__name__)


async def room_noshow_pass(
    engine: AsyncEngine, now: datetime | None = None, *, store: BookingStore | None = None
) -> tuple[int, int]:
    """One pass; returns (warned, released)."""
    at = now or datetime.now(UTC)

    async def run(conn: AsyncConnection) -> tuple[int, int]:
        site = ROOM_SITE.subquery()
        rows = (
            await conn.execute(
                select(ROOM_BOOKINGS, *[c for c in site.c if c.name != "id"])
                .select_from(ROOM_BOOKINGS.join(site, site.c.id == ROOM_BOOKINGS.c.room_id))
                .where(
                    ROOM_BOOKINGS.c.status == "booked",
                    ROOM_BOOKINGS.c.sensed_at.is_(None),
                    ROOM_BOOKINGS.c.starts_at <= at,
                )
            )
        ).all()
        warned = released = 0
        for row in rows:
            ctx = _context(SimpleNamespace(**{**row._mapping, "id": row.room_id}))
            if row.occupied is None:
                continue  # no radar: attendance cannot be told
            if row.occupied:
                # Someone is in the room already (no change since before the start).
                await conn.execute(
                    update(ROOM_BOOKINGS)
                    .where(ROOM_BOOKINGS.c.id == row.id, ROOM_BOOKINGS.c.sensed_at.is_(None))
                    .values(sensed_at=at)
                )
                continue
            grace = timedelta(minutes=ctx.rules.checkin_grace_min)
            data = {
                "room": ctx.name,
                "room_id": ctx.id,
                "booking_id": row.id,
                "starts_at": row.starts_at.isoformat(),
                "release_at": (row.starts_at + grace).isoformat(),
                "timezone": ctx.rules.timezone,
            }
            if row.starts_at + grace <= at:
                done = await conn.execute(
                    update(ROOM_BOOKINGS)
                    .where(ROOM_BOOKINGS.c.id == row.id, ROOM_BOOKINGS.c.status == "booked")
                    .values(status="no_show", ended_at=at, release_reason="no_show")
                )
                if done.rowcount:
                    # Same transaction as the release: integrations hear of it exactly once.
                    event = {
                        **row._mapping,
                        "status": "no_show",
                        "ended_at": at,
                        "release_reason": "no_show",
                    }
                    await record_event(conn, "room_booking.released", event)
                if done.rowcount and row.person_id is not None:
                    await notify(
                        conn, person_id=row.person_id, kind="room_released", data=data,
                        dedup_key=f"room_released:{row.id}",
                    )  # fmt: skip
                released += int(done.rowcount or 0)
            elif row.warned_at is None and row.starts_at + grace / 2 <= at:
                await conn.execute(
                    update(ROOM_BOOKINGS).where(ROOM_BOOKINGS.c.id == row.id).values(warned_at=at)
                )
                if row.person_id is not None:
                    await notify(
                        conn, person_id=row.person_id, kind="room_noshow_warning", data=data,
                        dedup_key=f"room_noshow_warning:{row.id}",
                    )  # fmt: skip
                warned += 1
        return warned, released

    return await (store or BookingStore(engine)).write(run)


async def record_readings(conn: AsyncConnection, changes: list[dict[str, Any]]) -> None:
    """Ingestion's changed room readings ({room, occupied, at}), in its transaction: the
    history analytics reads, and meetings running when a room turned occupied attended."""
    await conn.execute(
        insert(ROOM_PRESENCE_CHANGES),
        [{"room_id": c["room"], "occupied": c["occupied"], "ts": c["at"]} for c in changes],
    )
    for change in changes:
        if change["occupied"]:
            await _mark_sensed(conn, change["room"], change["at"])


async def _mark_sensed(conn: AsyncConnection, room_id: str, at: datetime) -> None:
    await conn.execute(
        update(ROOM_BOOKINGS)
        .where(
            ROOM_BOOKINGS.c.room_id == room_id,
            ROOM_BOOKINGS.c.status.in_(("booked", "checked_in")),
            ROOM_BOOKINGS.c.sensed_at.is_(None),
            ROOM_BOOKINGS.c.starts_at <= at + timedelta(minutes=5),
            ROOM_BOOKINGS.c.ends_at > at,
        )
        .values(sensed_at=at)
    )


class RoomNoShowJob:
    """Runs `room_noshow_pass` every `interval_s` through the app's booking store."""

    def __init__(self, store: BookingStore, interval_s: float) -> None:
        self._store = store
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ruang-room-noshow")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                warned, released = await room_noshow_pass(self._store.engine, store=self._store)
            except Exception as exc:
                # A database hiccup: the next pass sees the same bookings.
                log_failed_pass(log, "room no-show pass failed", exc)
                continue
            if warned or released:
                log.info("room no-shows: %d warned, %d released", warned, released)
