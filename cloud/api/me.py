"""The caller's own record, personal data included (the NIP is shown only here and to admins)."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.api_types import Problem
from cloud.deps import DbDep, EngineDep
from cloud.people import roster as people
from cloud.people.auth import CurrentUser, require_roles
from cloud.people.schemas import PersonPrivate
from cloud.privacy.access_audit import record_read

router = APIRouter(tags=["people"])


@router.get(
    "/me",
    response_model=PersonPrivate,
    responses={404: {"model": Problem, "description": "no person with the token's id"}},
)
async def me(conn: DbDep, user: CurrentUser) -> PersonPrivate:
    return await people.private_person(conn, user.subject)


@router.get(
    "/people/{person_id}/private",
    response_model=PersonPrivate,
    dependencies=[require_roles("admin")],
    responses={404: {"model": Problem, "description": "no such person"}},
)
async def private(
    person_id: str, conn: DbDep, engine: EngineDep, user: CurrentUser
) -> PersonPrivate:
    found = await people.private_person(conn, person_id)
    await record_read(engine, user, "person.private", subject=person_id)
    return found
