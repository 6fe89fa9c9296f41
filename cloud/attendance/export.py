"""The attendance export of one opted-in agency: a page of people, every day of a range.

What the database holds goes to the pure rules (cloud/attendance/rules.py): the desk
check-ins and tapped check-outs in `events`, mapped to the person through the badge
they held at that moment (`badges.revoked_at`, `issued_at`), and the granted door
decisions of `access_log`, whose `person_id` ingestion resolved on arrival. Desks are
placed by the layout, doors by `access_doors.site_id`; a door of no site cannot be
placed in a day and does not count. BLE badge presence reaches only the time series
(cloud/telemetry/), not SQL, so it does not count either.

Pages hold up to `limit` people ordered by id (`after`: the last id of the previous
page); CSV and JSON are the same rows (`csv_text`). Each call writes one admin-audit
entry in its own transaction and one personal-data read (cloud/privacy/access_audit.py).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.admin import audit
from cloud.attendance import optin, rules
from cloud.attendance.schemas import AttendancePage, AttendanceRowPublic
from cloud.db.tables import ACCESS_DOORS, ACCESS_HOLIDAYS, ACCESS_LOG, BADGES, EVENTS, PEOPLE, SITES
from cloud.errors import Invalid
from cloud.people.access import desk_sites
from cloud.people.auth import Principal
from cloud.privacy import access_audit

# The roles that may export: admins and the data-protection officer; never operators.
EXPORT_ROLES = ("admin", "dpo")
MAX_PEOPLE = 1000
# Time zones are at most 14 h from UTC: events this far either side of the range's UTC
# days are read, and the rules keep those whose site-local day is in the range.
_SLACK = timedelta(hours=14)
CSV_COLUMNS = ("person_id", "agency", "site_id", "date", "status", "first_check_in",
               "last_presence")  # fmt: skip
IDENTITY_COLUMNS = ("name", "nip")


@dataclass(frozen=True, slots=True)
class Query:
    agency: str
    start: date
    end: date
    after: str | None = None
    limit: int = 200


def check_range(start: date, end: date) -> None:
    if end < start:
        raise Invalid("to is before from", title="Bad date range")
    if (end - start).days + 1 > rules.MAX_DAYS:
        raise Invalid(
            f"an export covers at most {rules.MAX_DAYS} days", title="Date range too long"
        )


async def build_page(conn: AsyncConnection, q: Query) -> AttendancePage:
    """The rows of the page's people; Forbidden for an agency that has not opted in."""
    check_range(q.start, q.end)
    terms = await optin.terms(conn, q.agency)
    p = PEOPLE.c
    stmt = (
        select(p.id, p.site_id, p.name, p.nip)
        .where(p.agency == q.agency, p.kind == "asn", p.removed_at.is_(None))
        .order_by(p.id)
        .limit(min(q.limit, MAX_PEOPLE) + 1)
    )
    if q.after is not None:
        stmt = stmt.where(p.id > q.after)
    people = (await conn.execute(stmt)).all()
    more = len(people) > min(q.limit, MAX_PEOPLE)
    people = people[: min(q.limit, MAX_PEOPLE)]
    ids = [r.id for r in people]
    lo = datetime.combine(q.start, time.min, UTC) - _SLACK
    hi = datetime.combine(q.end + timedelta(days=1), time.min, UTC) + _SLACK
    marks: dict[str, list[rules.Mark]] = {}
    for mark in [*await _desk_marks(conn, ids, lo, hi), *await _door_marks(conn, ids, lo, hi)]:
        marks.setdefault(mark.person_id, []).append(mark)
    calendar = await _calendar(conn, q.start, q.end, frozenset(terms.remote_weekdays))
    rows: list[AttendanceRowPublic] = []
    for person in people:
        for d in rules.person_days(
            person.id, person.site_id, marks.get(person.id, ()), calendar, q.start, q.end
        ):
            rows.append(
                AttendanceRowPublic(
                    person_id=d.person_id, agency=q.agency, site_id=d.site_id, date=d.day,
                    status=d.status,
                    first_check_in=d.first_check_in, last_presence=d.last_presence,
                    name=person.name if terms.include_identity else None,
                    nip=person.nip if terms.include_identity else None,
                )
            )  # fmt: skip
    # By alias: the query says `from`/`to`, and `from` is a Python keyword.
    return AttendancePage.model_validate(
        {"agency": q.agency, "from": q.start, "to": q.end, "rows": rows,
         "include_identity": terms.include_identity,
         "next_after": ids[-1] if more and ids else None}
    )  # fmt: skip


async def export(engine: AsyncEngine, user: Principal, q: Query, fmt: str) -> AttendancePage:
    """`build_page`, audited: who, which agency, which range, how many rows."""
    async with engine.begin() as conn:
        page = await build_page(conn, q)
        await audit.record(
            conn,
            actor=user,
            action="attendance.export",
            target=f"agency:{q.agency}",
            detail={"from": q.start.isoformat(), "to": q.end.isoformat(), "after": q.after,
                    "rows": len(page.rows), "format": fmt,
                    "identity": page.include_identity},
        )  # fmt: skip
    await access_audit.record_read(
        engine, user, "attendance.export", records=len(page.rows), roles=EXPORT_ROLES
    )
    return page


def csv_text(page: AttendancePage) -> str:
    """The page's rows as CSV, each value as the JSON answer writes it."""
    columns = CSV_COLUMNS + (IDENTITY_COLUMNS if page.include_identity else ())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in page.rows:
        data = row.model_dump(mode="json")
        writer.writerow(["" if data[c] is None else data[c] for c in columns])
    return out.getvalue()


async def _desk_marks(
    conn: AsyncConnection, people: list[str], lo: datetime, hi: datetime
) -> list[rules.Mark]:
    if not people:
        return []
    e, b = EVENTS.c, BADGES.c
    # A badge is its holder's until it ends (revoked, lost, replaced); a uid issued again
    # is the new holder's from then on: of the badges not ended yet at the event, the
    # earliest issued held it. History older than the badge's registration still counts.
    held = and_(b.uid == e.badge, or_(b.revoked_at.is_(None), e.ts < b.revoked_at))
    found = (
        await conn.execute(
            select(e.id, b.person_id, b.issued_at, e.desk, e.ts, e.kind, e.payload)
            .join(BADGES, held)
            .where(e.kind.in_(rules.DESK_KINDS), e.ts >= lo, e.ts < hi)
            .where(e.badge.in_(select(b.uid).where(b.person_id.in_(people))))
        )
    ).all()
    holder: dict[int, Any] = {}
    for r in found:
        if r.id not in holder or r.issued_at < holder[r.id].issued_at:
            holder[r.id] = r
    wanted = set(people)
    rows = [r for r in holder.values() if r.person_id in wanted]
    counted = [r for r in rows if rules.desk_event_counts(r.kind, (r.payload or {}).get("reason"))]
    sites = await desk_sites(conn, {r.desk for r in counted if r.desk is not None})
    return [
        rules.Mark(r.person_id, sites[r.desk], r.ts)
        for r in counted
        if r.desk is not None and r.desk in sites
    ]


async def _door_marks(
    conn: AsyncConnection, people: list[str], lo: datetime, hi: datetime
) -> list[rules.Mark]:
    if not people:
        return []
    a = ACCESS_LOG.c
    rows = await conn.execute(
        select(a.person_id, ACCESS_DOORS.c.site_id, a.ts)
        .join(ACCESS_DOORS, ACCESS_DOORS.c.id == a.door)
        .where(a.person_id.in_(people), a.granted.is_(True), a.ts >= lo, a.ts < hi)
    )
    return [rules.Mark(person, site, ts) for person, site, ts in rows]


async def _calendar(
    conn: AsyncConnection, start: date, end: date, remote_weekdays: frozenset[int]
) -> rules.Calendar:
    zones = {s: tz for s, tz in await conn.execute(select(SITES.c.id, SITES.c.timezone))}
    h = ACCESS_HOLIDAYS.c
    holidays: dict[str, set[date]] = {}
    for site, day in await conn.execute(
        select(h.site_id, h.day).where(h.day >= start, h.day <= end)
    ):
        holidays.setdefault(site, set()).add(day)
    return rules.Calendar(
        zones=zones,
        holidays={s: frozenset(d) for s, d in holidays.items()},
        remote_weekdays=remote_weekdays,
    )
