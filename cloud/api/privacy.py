"""Data-subject rights and the personal-data access audit (UU PDP; docs/privacy.md).

`GET /me/export`: a signed-in person downloads everything held about them (JSON).
`POST /people/{person_id}/erase`: an admin anonymises a person; every node's snapshot
is re-published so their badges leave the edge. Both are written to the admin audit log
in the transaction of the export or erasure itself.
`GET /privacy/access-log`: who read whose personal data, for the `dpo` role and admins.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.admin import audit
from cloud.api.snapshots import PublisherDep
from cloud.api_types import AwareDateTime, Problem
from cloud.deps import BookingStoreDep, DbDep, EngineDep
from cloud.people import access
from cloud.people.auth import CurrentUser, require_roles
from cloud.privacy import access_audit, erase, export, lookup
from cloud.privacy.schemas import ErasurePublic, PersonalReadPage, PersonExport

router = APIRouter(tags=["privacy"])
_UNKNOWN: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "no person with that id"}
}


@router.get("/me/export", response_model=PersonExport, responses=_UNKNOWN)
async def export_me(engine: EngineDep, user: CurrentUser, response: Response) -> PersonExport:
    """All data held about the caller, table by table (a download: `ruang-data-<id>.json`)."""
    async with engine.begin() as conn:
        found = await export.export_person(conn, user.subject)
        site = (await access.person_sites(conn, [user.subject])).get(user.subject)
        await audit.record(
            conn,
            actor=user,
            action="person.export",
            target=f"person:{user.subject}",
            detail={"tables": {k: len(v) for k, v in found.tables.items() if v}},
            site=site,
        )
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in user.subject)
    response.headers["Content-Disposition"] = f'attachment; filename="ruang-data-{safe}.json"'
    return found


@router.post(
    "/people/{person_id}/erase",
    response_model=ErasurePublic,
    dependencies=[require_roles("admin")],
    responses=_UNKNOWN,
)
async def erase_person(
    person_id: str, store: BookingStoreDep, user: CurrentUser, snapshots: PublisherDep
) -> ErasurePublic:
    """Anonymises a person: identity and badges removed, history kept under a pseudonym."""

    async def run(conn: AsyncConnection) -> ErasurePublic:
        person = await lookup.person_row(conn, person_id)
        done = await erase.erase_person(conn, person_id)
        await audit.record(
            conn,
            actor=user,
            action="person.erase",
            target=f"person:{done.pseudonym}",
            detail={"badges_removed": done.badges_removed, "rows": done.rows_anonymised},
            site=person["site_id"] if person else None,
        )
        return done

    # Through the booking store: it rewrites bookings, so it queues with booking writes
    # (SQLite) or holds the person's booking lock (PostgreSQL) like any of them.
    done = await store.write(run, people=[person_id])
    # Their badges were in allow-lists of any node: every snapshot is rebuilt.
    snapshots.mark_dirty()
    return done


@router.get(
    "/privacy/access-log",
    response_model=PersonalReadPage,
    dependencies=[require_roles("dpo", "admin")],
    responses={422: {"model": Problem, "description": "bad filter or time range"}},
)
async def search_reads(
    conn: DbDep,
    actor: Annotated[str | None, Query(max_length=64, description="reader's person id")] = None,
    subject: Annotated[str | None, Query(max_length=64, description="person read about")] = None,
    what: Annotated[str | None, Query(max_length=64, description="e.g. person.private")] = None,
    role: Annotated[str | None, Query(max_length=32, description="role used")] = None,
    site: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[
        AwareDateTime | None, Query(description="from (inclusive), RFC 3339 with offset")
    ] = None,
    until: Annotated[
        AwareDateTime | None, Query(description="to (exclusive), RFC 3339 with offset")
    ] = None,
    before: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="the previous page's next_before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=access_audit.MAX_PAGE)] = 100,
) -> PersonalReadPage:
    """Reads of other people's personal data, newest first (data-protection officer, admins)."""
    return await access_audit.search(
        conn, actor=actor, subject=subject, what=what, role=role, site=site,
        since=since, until=until, before=before, limit=limit,
    )  # fmt: skip
