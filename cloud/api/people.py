"""People and badge routes: roster CSV import, listing without NIP, badge lifecycle, allowlist."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status

from cloud.admin import audit
from cloud.admin.schemas import ImportPreview
from cloud.api.params import RowId
from cloud.api.snapshots import PublisherDep
from cloud.api_types import Problem
from cloud.deps import DbDep, EngineDep
from cloud.errors import Invalid
from cloud.people import access
from cloud.people import roster as people
from cloud.people.auth import CurrentUser, Principal
from cloud.people.schemas import (
    AllowlistPublic,
    BadgeCreate,
    BadgePublic,
    BadgeReplace,
    BadgeReplacementPublic,
    PeopleImportPublic,
    PersonKind,
    PersonPublic,
    RowError,
)
from cloud.privacy.access_audit import record_read

router = APIRouter(tags=["people"])

_CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "UTF-8 CSV with a header row. Columns: "
        + ", ".join(people.CSV_COLUMNS)
        + " (the first four required). All rows are applied, or none.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}
_BADGE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such badge or person"},
    409: {"model": Problem, "description": "badge not active, or uid active elsewhere"},
}


@router.post(
    "/people/import",
    response_model=PeopleImportPublic,
    openapi_extra=_CSV_BODY,
    responses={
        413: {"model": Problem, "description": "file too large"},
        422: {
            "model": Problem,
            "description": "refused; `errors` lists {line, reason} for every bad row",
        },
    },
)
async def import_people(
    request: Request, engine: EngineDep, user: CurrentUser, snapshots: PublisherDep
) -> PeopleImportPublic:
    # Read as raw text/csv: the roster is one document, not form fields.
    data = await request.body()

    async def describe(conn: Any, result: PeopleImportPublic) -> audit.Described:
        return "people:roster", {**result.model_dump(), "bytes": len(data)}, _one_site(user)

    imported = await people.import_people(
        engine,
        data,
        sites=access.site_scope(user, access.MANAGER_ROLES),
        hook=audit.hook(user, "people.import", describe),
    )
    snapshots.mark_dirty()  # guest passes and drop-in holders may have changed
    return imported


def _one_site(user: Principal) -> str | None:
    # A facility manager of one site imports into it; otherwise the entry is admins' only.
    return next(iter(user.sites)) if len(user.sites) == 1 and not user.is_admin else None


@router.post(
    "/people/import/preview",
    response_model=ImportPreview,
    openapi_extra=_CSV_BODY,
    responses={
        413: {"model": Problem, "description": "file too large"},
        422: {"model": Problem, "description": "no CSV roster in the body (encoding, header)"},
    },
)
async def preview_import(request: Request, engine: EngineDep, user: CurrentUser) -> ImportPreview:
    """Runs the import and rolls it back: every bad row, or what the import would do."""
    data = await request.body()
    if not data.strip():
        # No document at all is a bad request, not a roster with problems.
        raise Invalid("send the CSV as the request body", title="Empty import")
    try:
        result = await people.import_people(
            engine,
            data,
            sites=access.site_scope(user, access.MANAGER_ROLES),
            dry_run=True,
        )
    except Invalid as exc:
        errors = [RowError.model_validate(e) for e in exc.extensions.get("errors", [])]
        if all(e.line == 1 for e in errors):
            # Not a roster at all (not UTF-8, wrong header): refused like the import.
            raise
        return ImportPreview(ok=False, errors=errors)
    return ImportPreview(ok=True, **result.model_dump())


@router.get("/people", response_model=list[PersonPublic])
async def list_people(
    conn: DbDep,
    engine: EngineDep,
    user: CurrentUser,
    agency: Annotated[str | None, Query(description="instansi")] = None,
    kind: Annotated[PersonKind | None, Query()] = None,
    q: Annotated[
        str | None, Query(max_length=100, description="id, name or agency contains")
    ] = None,
) -> list[PersonPublic]:
    found = await people.list_people(conn, agency=agency, kind=kind, q=q)
    shown = await access.only_people(conn, user, found, lambda p: p.id)
    others = [p for p in shown if p.id != user.subject]
    subject = others[0].id if len(others) == 1 else None
    await record_read(engine, user, "person.list", subject=subject, records=len(others))
    return shown


@router.get("/badges", response_model=list[BadgePublic])
async def list_badges(
    conn: DbDep,
    engine: EngineDep,
    user: CurrentUser,
    person: Annotated[str | None, Query(description="person id")] = None,
) -> list[BadgePublic]:
    shown = await access.only_people(
        conn, user, await people.list_badges(conn, person), lambda b: b.person_id
    )
    # Raw badge uids of other people: audited like the people list.
    others = [b for b in shown if b.person_id != user.subject]
    await record_read(engine, user, "badge.list", subject=person, records=len(others))
    return shown


@router.post(
    "/badges",
    response_model=BadgePublic,
    status_code=status.HTTP_201_CREATED,
    responses=_BADGE_ERRORS,
)
async def issue_badge(
    body: BadgeCreate, engine: EngineDep, user: CurrentUser, snapshots: PublisherDep
) -> BadgePublic:
    async with engine.connect() as conn:
        await access.ensure_in_scope(conn, user, access.MANAGER_ROLES, "person_id", body.person_id)
    issued = await people.issue_badge(engine, body, audit.hook(user, "badge.issue", _badge))
    # Any node's allow-list may carry this person's badges.
    snapshots.mark_dirty()
    return issued


async def _badge(conn: Any, badge: BadgePublic) -> audit.Described:
    site = (await access.person_sites(conn, [badge.person_id])).get(badge.person_id)
    detail = {
        "person_id": badge.person_id,
        "kind": badge.kind,
        "uid": audit.masked_uid(badge.uid),
        "status": badge.status,
    }
    return f"badge:{badge.id}", detail, site


async def _replacement(conn: Any, pair: BadgeReplacementPublic) -> audit.Described:
    target, detail, site = await _badge(conn, pair.old)
    return (
        target,
        {**detail, "new_badge": pair.new.id, "new_uid": audit.masked_uid(pair.new.uid)},
        site,
    )


@router.post("/badges/{badge_id}/revoke", response_model=BadgePublic, responses=_BADGE_ERRORS)
async def revoke_badge(
    badge_id: RowId, engine: EngineDep, user: CurrentUser, snapshots: PublisherDep
) -> BadgePublic:
    revoked = await people.end_badge(
        engine, badge_id, "revoked", audit.hook(user, "badge.revoke", _badge)
    )
    snapshots.mark_dirty()
    return revoked


@router.post("/badges/{badge_id}/lost", response_model=BadgePublic, responses=_BADGE_ERRORS)
async def report_lost(
    badge_id: RowId, engine: EngineDep, user: CurrentUser, snapshots: PublisherDep
) -> BadgePublic:
    lost = await people.end_badge(engine, badge_id, "lost", audit.hook(user, "badge.lost", _badge))
    snapshots.mark_dirty()
    return lost


@router.post(
    "/badges/{badge_id}/replace",
    response_model=BadgeReplacementPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_BADGE_ERRORS,
)
async def replace_badge(
    badge_id: RowId,
    body: BadgeReplace,
    engine: EngineDep,
    user: CurrentUser,
    snapshots: PublisherDep,
) -> BadgeReplacementPublic:
    replaced = await people.replace_badge(
        engine, badge_id, body, audit.hook(user, "badge.replace", _replacement)
    )
    snapshots.mark_dirty()
    return replaced


@router.get(
    "/badges/allowlist",
    response_model=AllowlistPublic,
    responses={404: {"model": Problem, "description": "node serves no desks"}},
)
async def badge_allowlist(
    conn: DbDep, node: Annotated[str, Query(description="edge node id")]
) -> AllowlistPublic:
    return await people.allowlist(conn, node, datetime.now(UTC))
