"""The notification dispatcher: claims due email deliveries, sends them, logs every attempt.

Each pass claims the due `pending` rows of `notification_deliveries` by moving
their `next_attempt_at` a lease ahead (an UPDATE that re-checks the row, so two
dispatchers never claim the same one), renders each in the recipient's language
and hands it to the SMTP server. Success marks the row `sent`; a refused or
unreachable server counts an attempt, records the error and schedules a retry
with jittered exponential backoff, up to `notify_max_attempts` (then `gave_up`).
A crash between the send and the log update leaves the lease to expire and the
mail is sent again: delivery is at least once, never "at most".

The email channel is off for a person who switched it off (preferences), for one
without an email address, and for everybody when no SMTP server is configured:
those rows are closed as `skipped` with the reason, the in-app entry remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosmtplib
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.job_errors import log_failed_pass
from cloud.db.tables import NOTIFICATION_DELIVERIES as DELIVERIES
from cloud.db.tables import NOTIFICATION_PREFERENCES as PREFS
from cloud.db.tables import NOTIFICATIONS, PEOPLE
from cloud.notifications.email import SmtpServer, build_message, parse_smtp_url, send
from cloud.notifications.preferences import Preferences
from cloud.notifications.retention import purge_notifications
from cloud.notifications.templates import DEFAULT_LANGUAGE, KINDS, render
from cloud.settings import CloudSettings
from ruang.tasks import cancel_and_wait

log = logging.getLogger(__name__)

BATCH = 100
MAX_BACKOFF_S = 600.0
# A claimed row is retried after this long if its sender died before logging the result.
LEASE = timedelta(minutes=5)
PURGE_EVERY = timedelta(hours=1)
CONCURRENT_SENDS = 4
# How long a wake-up (a commit that notified) waits for the commits right behind it.
WAKE_COALESCE_S = 0.05


def backoff_s(attempts: int, base: float, rand: Callable[[], float] = random.random) -> float:
    """Delay after attempt number `attempts` (1-based): doubling, capped, jittered to 50-100 %."""
    delay = min(MAX_BACKOFF_S, base * 2 ** (attempts - 1))
    return float(delay * (0.5 + rand() / 2))


class NotificationDispatcher:
    """Background task of the cloud app: outbox -> SMTP, with retries and the delivery log."""

    def __init__(
        self,
        settings: CloudSettings,
        engine: AsyncEngine,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._clock = clock
        self._rand = rand
        self._server: SmtpServer | None = (
            parse_smtp_url(settings.smtp_url.get_secret_value()) if settings.smtp_url else None
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_purge: datetime | None = None
        self._sends = asyncio.Semaphore(CONCURRENT_SENDS)

    @property
    def email_enabled(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        if self._server is None:
            log.warning("notifications: no RUANG_SMTP_URL, email is off (in-app only)")
        else:
            log.info("notifications: email through %s", self._server.describe())
        self._task = asyncio.create_task(self._run(), name="notification-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    def wake(self) -> None:
        """Look at the outbox now instead of at the next poll (after a commit that notified)."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            wait = self._settings.notify_poll_s
            try:
                next_due = await self.deliver_due()
                if next_due is not None:
                    wait = min(wait, max(0.0, (next_due - self._clock()).total_seconds()))
                await self._maybe_purge()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A database hiccup must not end deliveries for good: log, try again.
                log_failed_pass(log, "notification dispatch failed; retrying", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
                # Woken by a commit: a burst of them (a booking rush) is one pass, not
                # one pass per commit, for a delay nobody waiting for a mail notices.
                await asyncio.sleep(WAKE_COALESCE_S)
            self._wake.clear()

    async def _maybe_purge(self) -> None:
        now = self._clock()
        if self._last_purge is not None and now - self._last_purge < PURGE_EVERY:
            return
        self._last_purge = now
        purged = await purge_notifications(self._engine, now, self._settings.notify_retention_days)
        if purged:
            log.info("notifications: purged %d past retention", purged)

    async def _claim(self, now: datetime) -> list[int]:
        # Read first: an idle outbox must not take SQLite's write lock every poll.
        async with self._engine.connect() as conn:
            due = list(
                (
                    await conn.scalars(
                        select(DELIVERIES.c.id)
                        .where(
                            DELIVERIES.c.status == "pending", DELIVERIES.c.next_attempt_at <= now
                        )
                        .order_by(DELIVERIES.c.next_attempt_at, DELIVERIES.c.id)
                        .limit(BATCH)
                    )
                ).all()
            )
        if not due:
            return []
        async with self._engine.begin() as conn:
            # The WHERE is checked again under the row lock: a row another dispatcher
            # claimed meanwhile has moved its next_attempt_at and is not returned.
            claimed = await conn.scalars(
                update(DELIVERIES)
                .where(
                    DELIVERIES.c.id.in_(due),
                    DELIVERIES.c.status == "pending",
                    DELIVERIES.c.next_attempt_at <= now,
                )
                .values(next_attempt_at=now + LEASE)
                .returning(DELIVERIES.c.id)
            )
            return list(claimed.all())

    async def deliver_due(self) -> datetime | None:
        """Attempts every due delivery once; returns when the next pending one falls due."""
        ids = await self._claim(self._clock())
        if ids:
            async with self._engine.connect() as conn:
                rows = list(
                    await conn.execute(
                        select(
                            DELIVERIES.c.id,
                            DELIVERIES.c.attempts,
                            NOTIFICATIONS.c.id.label("notification_id"),
                            NOTIFICATIONS.c.kind,
                            NOTIFICATIONS.c.data,
                            NOTIFICATIONS.c.attachments,
                            NOTIFICATIONS.c.address,
                            NOTIFICATIONS.c.language,
                            NOTIFICATIONS.c.person_id,
                            PEOPLE.c.email,
                            PREFS.c.language.label("pref_language"),
                            PREFS.c.email_enabled,
                            PREFS.c.email_off_kinds,
                        )
                        .select_from(
                            DELIVERIES.join(
                                NOTIFICATIONS, NOTIFICATIONS.c.id == DELIVERIES.c.notification_id
                            )
                            .outerjoin(PEOPLE, PEOPLE.c.id == NOTIFICATIONS.c.person_id)
                            .outerjoin(PREFS, PREFS.c.person_id == NOTIFICATIONS.c.person_id)
                        )
                        .where(DELIVERIES.c.id.in_(ids))
                    )
                )
            skipped: dict[str, list[int]] = {}
            to_send = []
            for row in rows:
                reason = self._skip_reason(row)
                if reason is None:
                    to_send.append(row)
                else:
                    skipped.setdefault(reason, []).append(row.id)
            # Skips are settled together (one UPDATE per reason): with email off,
            # every in-app notification would otherwise cost a transaction of its own.
            await self._log_skipped(skipped)
            await asyncio.gather(*(self._deliver(row) for row in to_send))
        async with self._engine.connect() as conn:
            nxt: datetime | None = await conn.scalar(
                select(func.min(DELIVERIES.c.next_attempt_at)).where(
                    DELIVERIES.c.status == "pending"
                )
            )
        if nxt is not None and nxt.tzinfo is None:
            nxt = nxt.replace(tzinfo=UTC)
        return nxt

    def _recipient(self, row: Any) -> tuple[str | None, str, str | None]:
        """(address, language, reason to skip) of one delivery row."""
        if row.person_id is None:
            language = row.language or DEFAULT_LANGUAGE
            if "@" not in (row.address or ""):
                return None, language, "no channel for this address (only email is built)"
            return row.address, language, None
        prefs = Preferences(
            row.pref_language or DEFAULT_LANGUAGE,
            True if row.email_enabled is None else bool(row.email_enabled),
            frozenset(row.email_off_kinds or ()),
        )
        if not prefs.wants_email(row.kind):
            return None, prefs.language, "email switched off in the person's preferences"
        if not row.email:
            return None, prefs.language, "the person has no email address"
        return row.email, prefs.language, None

    def _skip_reason(self, row: Any) -> str | None:
        """Why a delivery row is not sent at all, or None when it is to be sent."""
        address, _, skip = self._recipient(row)
        if skip is None and self._server is None:
            skip = "email channel disabled (no RUANG_SMTP_URL)"
        if skip is None and row.kind not in KINDS:
            skip = f"unknown kind {row.kind!r}"
        if skip is None and address is None:
            skip = "no address"
        return skip

    async def _log_skipped(self, skipped: dict[str, list[int]]) -> None:
        if not skipped:
            return
        async with self._engine.begin() as conn:
            for reason, ids in skipped.items():
                await conn.execute(
                    update(DELIVERIES)
                    .where(DELIVERIES.c.id.in_(ids))
                    .values(status="skipped", last_error=reason, next_attempt_at=None)
                )

    async def _deliver(self, row: Any) -> None:
        """Sends one delivery that `_skip_reason` let through, and logs the outcome."""
        address, language, _ = self._recipient(row)
        assert self._server is not None and address is not None
        try:
            msg = build_message(
                sender=self._settings.smtp_from,
                to=address,
                rendered=render(row.kind, row.data, language),
                notification_id=row.notification_id,
                language=language,
                attachments=list(row.attachments or ()),
            )
        except Exception as exc:
            # A malformed address or attachment will not get better on retry: give up at
            # once, logged, instead of failing every pass (and holding up the rest).
            reason = f"cannot build the message: {type(exc).__name__}: {exc}"[:500]
            log.warning("notification delivery %s: %s", row.id, reason)
            await self._log(
                row.id,
                status="gave_up",
                attempts=row.attempts + 1,
                last_error=reason,
                next_attempt_at=None,
            )
            return
        error: str | None = None
        try:
            async with self._sends:
                await send(self._server, msg, self._settings.smtp_timeout_s)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        attempts = row.attempts + 1
        now = self._clock()
        if error is None:
            await self._log(
                row.id,
                status="sent",
                attempts=attempts,
                last_error=None,
                next_attempt_at=None,
                delivered_at=now,
            )
        elif attempts >= self._settings.notify_max_attempts:
            log.warning(
                "notification delivery %s gave up after %d attempts: %s", row.id, attempts, error
            )
            await self._log(
                row.id,
                status="gave_up",
                attempts=attempts,
                last_error=error,
                next_attempt_at=None,
            )
        else:
            delay = backoff_s(attempts, self._settings.notify_backoff_base_s, self._rand)
            await self._log(
                row.id,
                attempts=attempts,
                last_error=error,
                next_attempt_at=now + timedelta(seconds=delay),
            )

    async def _log(self, delivery_id: int, **values: Any) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(DELIVERIES).where(DELIVERIES.c.id == delivery_id).values(**values)
            )
