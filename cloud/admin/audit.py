"""The audit log of admin actions: who did what to which target, when.

Every mutating admin route (people import, badges, enrolment tokens, node config,
webhooks, access groups, ...) calls `record(...)` on the connection (or session) of
its own change, so the entry commits or rolls back with it: there is no action
without its entry and no entry for an action that did not happen.

`actor` is the token's subject (a person id) or the `Principal` itself (then its
roles are recorded too). `action` is `domain.verb` (`badge.revoke`); `target` is
`kind:id` (`badge:12`, `node:ikn-node-01`). `detail` says what changed; keys that
name secrets (tokens, passwords, secrets, keys, hashes, NIP) are replaced by
"[redacted]" before anything is written, and long values are cut.

Readers: admins see everything; the security role sees entries of its sites
(`GET /api/v1/audit`). Entries older than `audit_retention_days` (a security-policy
setting, two years by default) are deleted by `AuditRetention` (docs/privacy.md), with
the personal-data access audit's rows (cloud/privacy/access_audit.py) of the same age.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from cloud.admin.schemas import AuditEntryPublic, AuditPage
from cloud.db.job_errors import log_failed_pass
from cloud.db.tables import ADMIN_AUDIT, PRIVACY_READS
from cloud.errors import Invalid
from cloud.people.access import Scope
from cloud.people.auth import Principal

log = logging.getLogger(__name__)

ACTION = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")
REDACTED = "[redacted]"
# Parts of a detail key that name a secret; such values never reach the log.
SECRET_WORDS = ("secret", "token", "password", "passwd", "hash", "key", "nip", "credential")
MAX_TEXT = 200
MAX_ITEMS = 50
MAX_DEPTH = 4
MAX_PAGE = 500


def _secret(key: str) -> bool:
    words = re.split(r"[^a-z]+", key.lower())
    return any(w.startswith(s) or w.endswith(s) for w in words if w for s in SECRET_WORDS)


def scrub(value: Any, depth: int = 0) -> Any:
    """`value` as JSON-safe data with secrets redacted and sizes bounded."""
    if depth > MAX_DEPTH:
        return "..."
    if isinstance(value, dict):
        return {
            str(k)[:MAX_TEXT]: REDACTED if _secret(str(k)) else scrub(v, depth + 1)
            for k, v in list(value.items())[:MAX_ITEMS]
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
        return [scrub(v, depth + 1) for v in items[:MAX_ITEMS]]
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)[:MAX_TEXT]


async def record(
    conn: AsyncConnection | AsyncSession,
    *,
    actor: str | Principal,
    action: str,
    target: str,
    detail: dict[str, Any],
    site: str | None = None,
    roles: Iterable[str] | None = None,
) -> None:
    """Writes one audit entry in the caller's transaction (commit is the caller's).

    `site`: the target's site, so site-scoped readers (the security role) see it;
    None makes the entry admins' only.
    """
    if not ACTION.match(action):
        raise ValueError(f"audit action {action!r} is not domain.verb")
    if isinstance(actor, Principal):
        subject, held = actor.subject, sorted(actor.roles)
    else:
        subject, held = actor, sorted(roles or ())
    await conn.execute(
        ADMIN_AUDIT.insert().values(
            at=datetime.now(UTC),
            actor=subject[:64],
            actor_roles=",".join(held)[:200],
            action=action,
            target=target[:MAX_TEXT],
            site_id=site,
            detail=scrub(detail),
        )
    )


def _like_prefix(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _aware(when: datetime | None) -> datetime | None:
    # A time without an offset is read as UTC, like every stored time.
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


async def search(
    conn: AsyncConnection,
    *,
    scope: Scope,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    site: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
    limit: int = 100,
) -> AuditPage:
    """Entries newest first. `action` matches itself and its sub-actions (`badge` finds
    `badge.revoke`); `target` matches by prefix (`badge:` finds every badge); `scope`
    None reads every site, else only entries of those sites."""
    since, until = _aware(since), _aware(until)
    if since is not None and until is not None and since > until:
        raise Invalid("since is after until", title="Bad time range")
    t = ADMIN_AUDIT.c
    stmt = select(ADMIN_AUDIT).order_by(t.id.desc()).limit(min(limit, MAX_PAGE) + 1)
    if scope is not None:
        stmt = stmt.where(t.site_id.in_(sorted(scope)))
    if site is not None:
        stmt = stmt.where(t.site_id == site)
    if actor is not None:
        stmt = stmt.where(t.actor == actor)
    if action is not None:
        stmt = stmt.where(or_(t.action == action, t.action.like(_like_prefix(action + "."), "\\")))
    if target is not None:
        stmt = stmt.where(t.target.like(_like_prefix(target), "\\"))
    if since is not None:
        stmt = stmt.where(t.at >= since)
    if until is not None:
        stmt = stmt.where(t.at < until)
    if before is not None:
        stmt = stmt.where(t.id < before)
    rows = (await conn.execute(stmt)).all()
    page = rows[: min(limit, MAX_PAGE)]
    items = [
        AuditEntryPublic.model_validate(
            {**r._mapping, "actor_roles": [x for x in r.actor_roles.split(",") if x]}
        )
        for r in page
    ]
    more = len(rows) > len(page)
    return AuditPage(items=items, next_before=items[-1].id if more and items else None)


async def purge(conn: AsyncConnection, *, older_than: datetime) -> int:
    """Deletes entries recorded before `older_than`; how many went."""
    result = await conn.execute(delete(ADMIN_AUDIT).where(ADMIN_AUDIT.c.at < older_than))
    return int(result.rowcount or 0)


async def purge_reads(conn: AsyncConnection, *, older_than: datetime) -> int:
    """Deletes personal-data read records made before `older_than`; how many went."""
    result = await conn.execute(delete(PRIVACY_READS).where(PRIVACY_READS.c.at < older_than))
    return int(result.rowcount or 0)


class AuditRetention:
    """Deletes entries past the retention period, at start and then every `interval_s`."""

    def __init__(self, engine: AsyncEngine, retention_days: int, interval_s: float) -> None:
        self._engine, self._days, self._interval = engine, retention_days, interval_s
        self._task: asyncio.Task[None] | None = None

    async def run_once(self, now: datetime | None = None) -> int:
        cutoff = (now or datetime.now(UTC)) - timedelta(days=self._days)
        async with self._engine.begin() as conn:
            gone = await purge(conn, older_than=cutoff)
            # The personal-data access audit (cloud/privacy/access_audit.py) is kept as long.
            gone += await purge_reads(conn, older_than=cutoff)
        if gone:
            log.info("audit retention: %d entries older than %s deleted", gone, cutoff)
        return gone

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # a busy database must not end the job: try again later
                log_failed_pass(log, "audit retention run failed", exc)
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="audit-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


Described = tuple[str, dict[str, Any], str | None]  # (target, detail, site)


def hook(
    actor: Principal,
    action: str,
    describe: Callable[[AsyncConnection, Any], Awaitable[Described]],
) -> Callable[[AsyncConnection, Any], Awaitable[None]]:
    """A write hook (cloud/people/roster.py `Hook`) recording `action` in the write's own
    transaction; `describe` turns the write's result into target, detail and site."""

    async def run(conn: AsyncConnection, result: Any) -> None:
        target, detail, site = await describe(conn, result)
        await record(conn, actor=actor, action=action, target=target, detail=detail, site=site)

    return run


def masked_uid(uid: str) -> str:
    """A badge UID as the log keeps it: enough to tell two cards apart, not to clone one."""
    return f"…{uid[-4:]}" if len(uid) > 4 else "…"


def safe_url(url: str) -> str:
    """A URL as the log keeps it: scheme, host, port and path; no user info, query or fragment
    (where tokens hide)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
