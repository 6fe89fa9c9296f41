"""Importing finished past bookings (history migrated from a previous booking system).

An admin sends rows that already ran their course; they are stored the way the
rest of the code leaves a finished booking, so the analytics (cloud/analytics/)
count them like any other:

* completed: status `completed`, `checked_in_at` (default: the start) and
  `checked_out_at` at the end, as a check-out by tap leaves it;
* no_show: status `no_show`, released at the start plus the site's check-in
  grace with reason `no_show`, as the auto-releaser (autorelease.py) leaves it;
* cancelled: status `cancelled`, `cancelled_at` at the start.

All or nothing: every row is checked first and every problem is reported by row
index and field; one error and nothing is written. Overlaps are checked here, both
among the rows and against the desk's existing bookings, because the database's
exclusion constraint only covers active bookings. A row identical to a stored one
(desk, person, start, end, status) is skipped, so re-running an import is harmless.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.bookings.site_rules import DESK_SITE, rules_of
from cloud.bookings.store import BookingStore
from cloud.db.tables import BOOKINGS, DESKS, PEOPLE
from cloud.errors import Invalid

MAX_ROWS = 5000
Outcome = Literal["completed", "no_show", "cancelled"]


class ImportRow(BaseModel):
    """One finished booking of the previous system."""

    desk_id: str = Field(min_length=1, max_length=64)
    person_id: str = Field(min_length=1, max_length=64)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    outcome: Outcome
    checked_in_at: AwareDatetime | None = None


class ImportRequest(BaseModel):
    """The rows of one import, written together or not at all."""

    rows: list[ImportRow] = Field(min_length=1, max_length=MAX_ROWS)


class ImportResult(BaseModel):
    """How many rows were stored and how many were already there."""

    created: int
    skipped: int


@dataclass(frozen=True)
class _Span:
    index: int
    desk: str
    person: str
    start: datetime
    end: datetime
    status: str


def _check_fields(i: int, row: ImportRow, now: datetime) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []

    def err(field: str, message: str) -> None:
        errors.append({"index": i, "field": field, "message": message})

    if row.starts_at >= row.ends_at:
        err("ends_at", "must be after starts_at")
    if row.ends_at > now:
        err("ends_at", "only finished bookings (ended in the past) can be imported")
    if row.checked_in_at is not None:
        if row.outcome != "completed":
            err("checked_in_at", f"a {row.outcome} booking has no check-in")
        elif not row.starts_at - timedelta(hours=1) <= row.checked_in_at < row.ends_at:
            err("checked_in_at", "must lie within the booking (or up to an hour before)")
    return errors


def _stored_row(row: ImportRow, grace: timedelta, now: datetime) -> dict[str, Any]:
    start, end = row.starts_at.astimezone(UTC), row.ends_at.astimezone(UTC)
    values: dict[str, Any] = {
        "desk_id": row.desk_id,
        "person_id": row.person_id,
        "starts_at": start,
        "ends_at": end,
        "status": row.outcome,
        # Not active, so the per-person constraint never applies to it anyway.
        "exclusive_person": False,
        "created_at": now,
        "walk_up": False,
        # Every key in every row: one executemany needs the same columns throughout.
        "checked_in_at": None,
        "checked_out_at": None,
        "released_at": None,
        "release_reason": None,
        "cancelled_at": None,
    }
    if row.outcome == "completed":
        checked_in = (row.checked_in_at or row.starts_at).astimezone(UTC)
        values |= {"checked_in_at": checked_in, "checked_out_at": end}
    elif row.outcome == "no_show":
        values |= {"released_at": min(start + grace, end), "release_reason": "no_show"}
    else:
        values["cancelled_at"] = start
    return values


async def import_bookings(
    store: BookingStore,
    rows: list[ImportRow],
    *,
    audit: Callable[[AsyncConnection, ImportResult], Awaitable[None]],
    now: datetime | None = None,
) -> ImportResult:
    """Checks and stores `rows` in one transaction; raises Invalid with per-row errors.

    `audit` records the import in that same transaction (the route passes the
    admin audit log, cloud/admin/audit.py, which this package does not import:
    admin depends on more of the cloud than bookings may).
    """
    at = now or datetime.now(UTC)
    desks = sorted({r.desk_id for r in rows})
    people = sorted({r.person_id for r in rows})

    async def run(conn: AsyncConnection) -> ImportResult:
        errors: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            errors += _check_fields(i, row, at)
        known_desks = {r.id: r for r in await conn.execute(DESK_SITE.where(DESKS.c.id.in_(desks)))}
        known_people = set(
            (await conn.execute(select(PEOPLE.c.id).where(PEOPLE.c.id.in_(people)))).scalars()
        )
        for i, row in enumerate(rows):
            if row.desk_id not in known_desks:
                errors.append({"index": i, "field": "desk_id", "message": "no such desk"})
            if row.person_id not in known_people:
                errors.append({"index": i, "field": "person_id", "message": "no such person"})
        spans = [
            _Span(
                i,
                r.desk_id,
                r.person_id,
                r.starts_at.astimezone(UTC),
                r.ends_at.astimezone(UTC),
                r.outcome,
            )
            for i, r in enumerate(rows)
            if r.starts_at < r.ends_at
        ]
        existing = await _existing(conn, spans)
        identical = {(e.desk, e.person, e.start, e.end, e.status) for e in existing}
        incoming: list[_Span] = []
        seen: set[tuple[str, str, datetime, datetime, str]] = set()
        for s in spans:
            key = (s.desk, s.person, s.start, s.end, s.status)
            if key in identical or key in seen:
                continue
            seen.add(key)
            incoming.append(s)
        errors += _overlaps(incoming, existing)
        if errors:
            errors.sort(key=lambda e: (e["index"], e["field"]))
            raise Invalid(
                f"{len({e['index'] for e in errors})} of {len(rows)} rows refused; "
                "nothing imported",
                title="Import refused",
                errors=errors,
            )
        values = []
        for s in incoming:
            ctx = known_desks[s.desk]
            grace = timedelta(minutes=rules_of(ctx).checkin_grace_min)
            values.append(_stored_row(rows[s.index], grace, at))
        if values:
            await conn.execute(insert(BOOKINGS), values)
        result = ImportResult(created=len(values), skipped=len(rows) - len(values))
        await audit(conn, result)
        return result

    return await store.write(run, desks=desks, people=people)


async def _existing(conn: AsyncConnection, spans: list[_Span]) -> list[_Span]:
    """Stored bookings (not cancelled) of the rows' desks that overlap the rows' range."""
    if not spans:
        return []
    first, last = min(s.start for s in spans), max(s.end for s in spans)
    found = await conn.execute(
        select(
            BOOKINGS.c.desk_id,
            BOOKINGS.c.person_id,
            BOOKINGS.c.starts_at,
            BOOKINGS.c.ends_at,
            BOOKINGS.c.status,
        ).where(
            BOOKINGS.c.desk_id.in_({s.desk for s in spans}),
            BOOKINGS.c.starts_at < last,
            BOOKINGS.c.ends_at > first,
        )
    )
    return [_Span(-1, r.desk_id, r.person_id, r.starts_at, r.ends_at, r.status) for r in found]


def _overlaps(incoming: list[_Span], existing: list[_Span]) -> list[dict[str, Any]]:
    """Rows that share time on a desk with another row or a stored booking.

    Cancelled bookings never held the desk, so they overlap nothing.
    """
    errors: list[dict[str, Any]] = []
    held = [s for s in incoming if s.status != "cancelled"]
    stored = [e for e in existing if e.status != "cancelled"]
    by_desk: dict[str, list[_Span]] = {}
    for s in held:
        by_desk.setdefault(s.desk, []).append(s)
    for desk_rows in by_desk.values():
        desk_rows.sort(key=lambda s: s.start)
        latest = desk_rows[0]  # the row reaching furthest so far
        for b in desk_rows[1:]:
            if b.start < latest.end:
                errors.append(
                    {
                        "index": b.index,
                        "field": "starts_at",
                        "message": f"overlaps row {latest.index} on desk {b.desk}",
                    }
                )
            if b.end > latest.end:
                latest = b
    for s in held:
        if any(e.desk == s.desk and e.start < s.end and s.start < e.end for e in stored):
            errors.append(
                {
                    "index": s.index,
                    "field": "starts_at",
                    "message": f"overlaps a stored booking of desk {s.desk}",
                }
            )
    return errors
