"""Visitor routes (docs/visitors.md): hosts invite, edit and cancel their guests' visits; the
reception role of a site lists today's visitors, checks them in and out. The service is
cloud/visitors/service.py; snapshots are republished when a guest's card starts or stops
opening doors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import Response

from cloud.api.snapshots import PublisherDep
from cloud.api_types import Problem
from cloud.deps import DbDep, EngineDep
from cloud.people.auth import CurrentUser
from cloud.privacy.access_audit import record_read
from cloud.visitors import service
from cloud.visitors.passes import PassKeys, qr_svg
from cloud.visitors.schemas import CheckIn, VisitBase, VisitCreate, VisitPublic
from ruang.contract import ID_PATTERN

router = APIRouter(tags=["visitors"])

VisitId = Annotated[int, Path(ge=1, le=2**53)]
_ONE: dict[int | str, dict[str, object]] = {
    403: {"model": Problem}, 404: {"model": Problem}, 409: {"model": Problem},
}  # fmt: skip


def get_pass_keys(request: Request) -> PassKeys:
    keys: PassKeys = request.app.state.visitor_pass_keys
    return keys


PassKeysDep = Annotated[PassKeys, Depends(get_pass_keys)]


def _now() -> datetime:
    return datetime.now(UTC)


@router.post("/visits", response_model=VisitPublic, status_code=status.HTTP_201_CREATED,
             responses={403: {"model": Problem}, 422: {"model": Problem}})  # fmt: skip
async def invite(
    body: VisitCreate, conn: DbDep, user: CurrentUser, keys: PassKeysDep
) -> VisitPublic:
    """Invites a guest; the guest gets the QR pass and the ICS by email."""
    visit = await service.invite(conn, user, body, keys, _now())
    await conn.commit()
    return visit


@router.get("/visits", response_model=list[VisitPublic])
async def my_visits(conn: DbDep, user: CurrentUser) -> list[VisitPublic]:
    """The visits the caller hosts."""
    return await service.hosted_by(conn, user)


@router.get("/reception/visits", response_model=list[VisitPublic], responses=_ONE)
async def today(
    conn: DbDep,
    engine: EngineDep,
    user: CurrentUser,
    site_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    q: Annotated[str | None, Query(max_length=100, description="name or organisation")] = None,
) -> list[VisitPublic]:
    """Today's visitors of the caller's reception sites (names: reception and admins only)."""
    found = await service.today(conn, user, site_id, q, _now())
    # The visitor log names guests: each read of it is audited.
    await record_read(engine, user, "visitor_log", site=site_id, records=len(found),
                      roles=("admin", "reception"))  # fmt: skip
    return found


@router.get("/visits/{visit_id}", response_model=VisitPublic, responses=_ONE)
async def get_visit(
    visit_id: VisitId, conn: DbDep, engine: EngineDep, user: CurrentUser
) -> VisitPublic:
    found = await service.get(conn, user, visit_id)
    if found.host_person_id != user.subject:  # reception or an admin reading a host's guest
        await record_read(engine, user, "visitor_log", site=found.site_id,
                          roles=("admin", "reception"))  # fmt: skip
    return found


@router.put("/visits/{visit_id}", response_model=VisitPublic, responses=_ONE)
async def edit(
    visit_id: VisitId, body: VisitBase, conn: DbDep, user: CurrentUser, keys: PassKeysDep,
    snapshots: PublisherDep,
) -> VisitPublic:  # fmt: skip
    visit = await service.edit(conn, user, visit_id, body, keys, _now())
    await conn.commit()
    snapshots.mark_dirty()  # a checked-in guest's window may have moved
    return visit


@router.post("/visits/{visit_id}/cancel", response_model=VisitPublic, responses=_ONE)
async def cancel(
    visit_id: VisitId, conn: DbDep, user: CurrentUser, keys: PassKeysDep
) -> VisitPublic:
    visit = await service.cancel(conn, user, visit_id, keys, _now())
    await conn.commit()
    return visit


@router.get(
    "/visits/{visit_id}/pass.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}, **_ONE},
)
async def pass_qr(visit_id: VisitId, conn: DbDep, user: CurrentUser, keys: PassKeysDep) -> Response:
    """The QR pass of one of the caller's visits, to show or forward again."""
    token = await service.pass_token(conn, user, visit_id, keys)
    return Response(qr_svg(token), media_type="image/svg+xml")


@router.post("/reception/checkin", response_model=VisitPublic, responses=_ONE)
async def check_in(
    body: CheckIn, conn: DbDep, user: CurrentUser, keys: PassKeysDep, snapshots: PublisherDep
) -> VisitPublic:
    """Reception: the scanned pass, a typed code or a visit found by search; the host is told."""
    visit = await service.check_in(conn, user, body, keys, _now())
    await conn.commit()
    if visit.card_uid is not None:
        snapshots.mark_dirty()  # the card opens the visit's doors within seconds
    return visit


@router.post("/reception/visits/{visit_id}/checkout", response_model=VisitPublic, responses=_ONE)
async def check_out(
    visit_id: VisitId, conn: DbDep, user: CurrentUser, snapshots: PublisherDep
) -> VisitPublic:
    """Reception: the guest leaves; their card is taken out of every node's snapshot."""
    visit = await service.check_out(conn, user, visit_id, _now())
    await conn.commit()
    snapshots.mark_dirty()
    return visit
