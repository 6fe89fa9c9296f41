"""Webhook subscriptions and the dispatcher delivering integration events to them.

The dispatcher reads the `integration_events` outbox after each subscription's
cursor, turns every matching event into a `webhook_deliveries` row (UNIQUE per
subscription and event, so re-reading is harmless) and POSTs due deliveries,
signed with HMAC-SHA256 of the raw body. A non-2xx answer or a network error is
retried with jittered exponential backoff until `webhook_max_attempts`, then the
delivery gives up. Every attempt is written to the delivery row: that row is the
delivery log. Delivery is at least once (a crash between the POST and the log
update repeats it); receivers dedupe by the `X-Ruang-Delivery` id.

One dispatcher per database is assumed: two cloud instances would both send.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Row, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.db.job_errors import log_failed_pass
from cloud.db.tables import INTEGRATION_EVENTS as EVENTS
from cloud.db.tables import WEBHOOK_DELIVERIES as DELIVERIES
from cloud.db.tables import WEBHOOK_SUBSCRIPTIONS as SUBSCRIPTIONS
from cloud.errors import Invalid
from cloud.integrations.events import KINDS
from cloud.integrations.webhook_targets import TargetPolicy, TargetRefused
from cloud.settings import CloudSettings
from ruang.tasks import cancel_and_wait

log = logging.getLogger(__name__)


POLL_S = 0.5
REQUEST_TIMEOUT_S = 10.0
MAX_BACKOFF_S = 600.0
BATCH = 200
# An id gap younger than this may be a transaction still committing (ids are
# handed out before commit); the cursor waits at the gap until it is older.
GAP_GRACE = timedelta(seconds=30)
SIGNATURE_HEADER = "X-Ruang-Signature"


def sign(secret: str, body: bytes) -> str:
    """The X-Ruang-Signature value of a body: `sha256=` + hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def ensure_target_allowed(settings: CloudSettings, url: str) -> None:
    """422 unless `url` resolves only to public (or allow-listed) addresses."""
    try:
        await TargetPolicy(settings.webhook_allowed_hosts).check(url)
    except TargetRefused as exc:
        raise Invalid(str(exc), title="Webhook target refused") from None


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def backoff_s(attempts: int, base: float, rand: Callable[[], float] = random.random) -> float:
    """Delay before the retry that follows attempt number `attempts` (1-based).

    Doubling from `base`, capped, then scaled into [50 %, 100 %] so receivers
    failing together are not hit again in lockstep.
    """
    delay = min(MAX_BACKOFF_S, base * 2 ** (attempts - 1))
    return float(delay * (0.5 + rand() / 2))


def payload(event_id: int, kind: str, created_at: datetime, data: Any) -> bytes:
    """The POST body; the signature covers exactly these bytes."""
    body = {
        "id": event_id,
        "kind": kind,
        "created_at": created_at.astimezone(UTC).isoformat(),
        "data": data,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


# --- subscriptions -----------------------------------------------------------------------


async def create_subscription(
    conn: AsyncConnection, *, url: str, secret: str, kinds: Sequence[str], now: datetime
) -> Row[Any]:
    # A new subscription hears about events from now on, not the whole history.
    latest = await conn.scalar(select(func.max(EVENTS.c.id)))
    result = await conn.execute(
        SUBSCRIPTIONS.insert()
        .values(
            url=url,
            secret=secret,
            kinds=list(kinds),
            active=True,
            cursor=latest or 0,
            created_at=now,
        )
        .returning(SUBSCRIPTIONS)
    )
    row: Row[Any] = result.one()
    return row


async def list_subscriptions(conn: AsyncConnection) -> list[Row[Any]]:
    return list(await conn.execute(select(SUBSCRIPTIONS).order_by(SUBSCRIPTIONS.c.id)))


async def deactivate(conn: AsyncConnection, subscription_id: int) -> bool:
    result = await conn.execute(
        update(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.id == subscription_id).values(active=False)
    )
    return bool(result.rowcount)


async def subscription_exists(conn: AsyncConnection, subscription_id: int) -> bool:
    return (
        await conn.scalar(select(SUBSCRIPTIONS.c.id).where(SUBSCRIPTIONS.c.id == subscription_id))
        is not None
    )


async def deliveries(conn: AsyncConnection, subscription_id: int, limit: int) -> list[Row[Any]]:
    return list(
        await conn.execute(
            select(DELIVERIES, EVENTS.c.kind)
            .join(EVENTS, EVENTS.c.id == DELIVERIES.c.event_id)
            .where(DELIVERIES.c.subscription_id == subscription_id)
            .order_by(DELIVERIES.c.id.desc())
            .limit(limit)
        )
    )


# --- dispatcher --------------------------------------------------------------------------


class WebhookDispatcher:
    """Background task: outbox → delivery rows → signed POSTs with retries."""

    def __init__(
        self,
        settings: CloudSettings,
        engine: AsyncEngine,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._engine = engine
        self._base = settings.webhook_backoff_base_s
        self._max_attempts = settings.webhook_max_attempts
        self._clock = clock
        self._rand = rand
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._targets = TargetPolicy(settings.webhook_allowed_hosts)
        insert: Any = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._add_delivery = insert(DELIVERIES).on_conflict_do_nothing(
            index_elements=[DELIVERIES.c.subscription_id, DELIVERIES.c.event_id]
        )

    def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, follow_redirects=False)
        self._task = asyncio.create_task(self._run(), name="webhook-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def wake(self) -> None:
        """Look at the outbox now instead of at the next poll."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            wait = POLL_S
            try:
                await self.enqueue()
                next_due = await self.deliver_due()
                if next_due is not None:
                    wait = min(wait, max(0.0, (next_due - self._clock()).total_seconds()))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A database hiccup must not end deliveries for good: log, try again.
                log_failed_pass(log, "webhook dispatch failed; retrying", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()

    async def enqueue(self) -> int:
        """Creates delivery rows for events after each active subscription's cursor."""
        added = 0
        now = self._clock()
        async with self._engine.begin() as conn:
            subs = list(
                await conn.execute(select(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.active.is_(True)))
            )
            for sub in subs:
                events = list(
                    await conn.execute(
                        select(EVENTS.c.id, EVENTS.c.kind, EVENTS.c.created_at)
                        .where(EVENTS.c.id > sub.cursor)
                        .order_by(EVENTS.c.id)
                        .limit(BATCH)
                    )
                )
                if not events:
                    continue
                wanted = [
                    {
                        "subscription_id": sub.id,
                        "event_id": e.id,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "gave_up": False,
                    }
                    for e in events
                    if e.kind in sub.kinds
                ]
                if wanted:
                    result = await conn.execute(self._add_delivery, wanted)
                    added += max(0, result.rowcount or 0)
                cursor = sub.cursor
                for e in events:
                    # Only advance over contiguous ids, or over a gap old enough
                    # that the missing id was rolled back rather than in flight.
                    if e.id != cursor + 1 and now - e.created_at < GAP_GRACE:
                        break
                    cursor = e.id
                if cursor != sub.cursor:
                    await conn.execute(
                        update(SUBSCRIPTIONS)
                        .where(SUBSCRIPTIONS.c.id == sub.id)
                        .values(cursor=cursor)
                    )
        return added

    async def deliver_due(self) -> datetime | None:
        """Attempts every due delivery once; returns when the next one falls due."""
        now = self._clock()
        pending = (
            DELIVERIES.c.delivered_at.is_(None),
            DELIVERIES.c.gave_up.is_(False),
            SUBSCRIPTIONS.c.active.is_(True),
        )
        async with self._engine.connect() as conn:
            due = list(
                await conn.execute(
                    select(
                        DELIVERIES.c.id,
                        DELIVERIES.c.attempts,
                        SUBSCRIPTIONS.c.url,
                        SUBSCRIPTIONS.c.secret,
                        EVENTS.c.id.label("event_id"),
                        EVENTS.c.kind,
                        EVENTS.c.created_at,
                        EVENTS.c.data,
                    )
                    .select_from(
                        DELIVERIES.join(
                            SUBSCRIPTIONS, SUBSCRIPTIONS.c.id == DELIVERIES.c.subscription_id
                        ).join(EVENTS, EVENTS.c.id == DELIVERIES.c.event_id)
                    )
                    .where(*pending, DELIVERIES.c.next_attempt_at <= now)
                    .order_by(DELIVERIES.c.next_attempt_at, DELIVERIES.c.id)
                    .limit(BATCH)
                )
            )
        if due:
            # Receivers are independent: one slow endpoint must not hold up the rest.
            await asyncio.gather(*(self._attempt(row) for row in due))
        async with self._engine.connect() as conn:
            nxt: datetime | None = await conn.scalar(
                select(func.min(DELIVERIES.c.next_attempt_at))
                .select_from(
                    DELIVERIES.join(
                        SUBSCRIPTIONS, SUBSCRIPTIONS.c.id == DELIVERIES.c.subscription_id
                    )
                )
                .where(*pending)
            )
        if nxt is not None and nxt.tzinfo is None:
            nxt = nxt.replace(tzinfo=UTC)
        return nxt

    async def _attempt(self, row: Any) -> None:
        assert self._client is not None
        body = payload(row.event_id, row.kind, row.created_at, row.data)
        headers = {
            "Content-Type": "application/json",
            "X-Ruang-Event": row.kind,
            "X-Ruang-Delivery": str(row.id),
            SIGNATURE_HEADER: sign(row.secret, body),
        }
        status: int | None = None
        error: str | None = None
        try:
            # Checked again now (DNS may have changed since the subscription), and the
            # connection goes to the checked address so it cannot change once more.
            target = await self._targets.check(row.url)
            response = await self._client.post(
                target.url,
                content=body,
                headers={**headers, "Host": target.host_header},
                extensions={"sni_hostname": target.host},
            )
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except TargetRefused as exc:
            error = f"not sent: {exc}"[:500]
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        attempts = row.attempts + 1
        now = self._clock()
        values: dict[str, Any] = {"attempts": attempts, "last_status": status, "last_error": error}
        if error is None:
            values.update(delivered_at=now, next_attempt_at=None)
        elif attempts >= self._max_attempts:
            values.update(gave_up=True, next_attempt_at=None)
            log.warning(
                "webhook delivery %s gave up after %d attempts: %s", row.id, attempts, error
            )
        else:
            values["next_attempt_at"] = now + timedelta(
                seconds=backoff_s(attempts, self._base, self._rand)
            )
        async with self._engine.begin() as conn:
            await conn.execute(update(DELIVERIES).where(DELIVERIES.c.id == row.id).values(**values))


def valid_kinds(kinds: Sequence[str] | None) -> list[str]:
    """The kinds to subscribe to: all when none are named."""
    return list(KINDS) if not kinds else sorted(set(kinds))
