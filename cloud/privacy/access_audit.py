"""The personal-data access audit: who read whose personal data, when, with which role.

Routes that hand one person's personal data to someone else (the private person
record, the people and badge lists, names on the floor map and desk timeline, the access log of
doors, the visitor log) call `record_read` once per request: one INSERT in a short
transaction of its own, after the answer is built, so a read costs one row whatever
it returned. A person reading their own data is not recorded (nobody else's data).

Readers: the data-protection role (`dpo`) and admins (`GET /api/v1/privacy/access-log`).
Rows are kept as long as the admin audit log (`RUANG_AUDIT_RETENTION_DAYS`) and purged
by the same hourly job (cloud/admin/audit.py `AuditRetention`; docs/privacy.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.db.tables import PRIVACY_READS
from cloud.errors import Invalid
from cloud.people.auth import Principal
from cloud.privacy.schemas import PersonalReadPage, PersonalReadPublic

MAX_PAGE = 500
# The roles that may read other people's data, most privileged first: the role named in a
# row is the first of these the reader holds among those the route allows.
READER_ROLES = ("admin", "dpo", "security", "reception", "facility_manager", "approver")


def role_used(user: Principal, allowed: Sequence[str] = READER_ROLES) -> str:
    """The role through which `user` was let read: the first of `allowed` they hold."""
    for role in allowed:
        if role in user.roles:
            return role
    return ",".join(sorted(user.roles))[:32] or "-"


async def record_read(
    engine: AsyncEngine,
    user: Principal,
    what: str,
    *,
    subject: str | None = None,
    site: str | None = None,
    records: int = 1,
    roles: Sequence[str] = READER_ROLES,
) -> None:
    """One audit row for one read; nothing when the reader reads only themself or nothing."""
    if records == 0 or (subject is not None and subject == user.subject):
        return
    async with engine.begin() as conn:
        await conn.execute(
            PRIVACY_READS.insert().values(
                at=datetime.now(UTC),
                actor=user.subject[:64],
                role=role_used(user, roles),
                what=what[:64],
                subject=subject[:64] if subject else None,
                site_id=site,
                records=records,
            )
        )


async def search(
    conn: AsyncConnection,
    *,
    actor: str | None = None,
    subject: str | None = None,
    what: str | None = None,
    role: str | None = None,
    site: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
    limit: int = 100,
) -> PersonalReadPage:
    """Rows newest first, filtered; `next_before` pages on to older ones."""
    if since is not None and until is not None and since > until:
        raise Invalid("since is after until", title="Bad time range")
    t = PRIVACY_READS.c
    stmt = select(PRIVACY_READS).order_by(t.id.desc()).limit(min(limit, MAX_PAGE) + 1)
    for column, value in (
        (t.actor, actor),
        (t.subject, subject),
        (t.what, what),
        (t.role, role),
        (t.site_id, site),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if since is not None:
        stmt = stmt.where(t.at >= since)
    if until is not None:
        stmt = stmt.where(t.at < until)
    if before is not None:
        stmt = stmt.where(t.id < before)
    rows = (await conn.execute(stmt)).mappings().all()
    page = [PersonalReadPublic.model_validate(dict(r)) for r in rows[: min(limit, MAX_PAGE)]]
    more = len(rows) > min(limit, MAX_PAGE)
    return PersonalReadPage(entries=page, next_before=page[-1].id if more and page else None)
