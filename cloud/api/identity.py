"""Sessions of a person: sign out everywhere (oneself, or an admin for anyone), deactivate.

Thin routes over cloud/people/sessions.py; the change reaches every replica within
`session_check_ttl_s` and this one at once.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from cloud.admin import audit
from cloud.api_types import Problem
from cloud.deps import DbDep
from cloud.people import sessions
from cloud.people.auth import CurrentUser, forget, require_roles

router = APIRouter(tags=["people"])
_NO_PERSON: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such person"}
}


class SessionStatePublic(BaseModel):
    person_id: str
    session_epoch: int
    active: bool


async def _state(conn: DbDep, person_id: str) -> SessionStatePublic:
    epoch, active = await sessions.session_state(conn, person_id)
    return SessionStatePublic(person_id=person_id, session_epoch=epoch, active=active)


@router.post("/me/sign-out-everywhere", response_model=SessionStatePublic, responses=_NO_PERSON)
async def sign_me_out_everywhere(
    request: Request, conn: DbDep, user: CurrentUser
) -> SessionStatePublic:
    await sessions.sign_out_everywhere(conn, user.subject)
    forget(request, user.subject)
    return await _state(conn, user.subject)


@router.post(
    "/people/{person_id}/sign-out-everywhere",
    response_model=SessionStatePublic,
    dependencies=[require_roles("admin")],
    responses=_NO_PERSON,
)
async def sign_out_everywhere(
    request: Request, person_id: str, conn: DbDep, user: CurrentUser
) -> SessionStatePublic:
    # Audited in the transaction the session change commits (sessions.py commits).
    await audit.record(
        conn, actor=user, action="person.sign_out_everywhere", target=f"person:{person_id}",
        detail={},
    )  # fmt: skip
    await sessions.sign_out_everywhere(conn, person_id)
    forget(request, person_id)
    return await _state(conn, person_id)


@router.post(
    "/people/{person_id}/deactivate",
    response_model=SessionStatePublic,
    dependencies=[require_roles("admin")],
    responses=_NO_PERSON,
)
async def deactivate(
    request: Request, person_id: str, conn: DbDep, user: CurrentUser
) -> SessionStatePublic:
    await audit.record(
        conn, actor=user, action="person.deactivate", target=f"person:{person_id}", detail={}
    )
    await sessions.set_active(conn, person_id, False)
    forget(request, person_id)
    return await _state(conn, person_id)


@router.post(
    "/people/{person_id}/activate",
    response_model=SessionStatePublic,
    dependencies=[require_roles("admin")],
    responses=_NO_PERSON,
)
async def activate(
    request: Request, person_id: str, conn: DbDep, user: CurrentUser
) -> SessionStatePublic:
    await audit.record(
        conn, actor=user, action="person.activate", target=f"person:{person_id}", detail={}
    )
    await sessions.set_active(conn, person_id, True)
    forget(request, person_id)
    return await _state(conn, person_id)
