"""The audit log of admin actions, searchable by the admin and security roles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cloud.admin import audit
from cloud.admin.schemas import AuditPage
from cloud.api_types import AwareDateTime, Problem
from cloud.deps import DbDep
from cloud.people import access
from cloud.people.auth import CurrentUser

router = APIRouter(tags=["audit"])


@router.get(
    "/audit",
    response_model=AuditPage,
    responses={422: {"model": Problem, "description": "bad filter or time range"}},
)
async def search_audit(
    conn: DbDep,
    user: CurrentUser,
    actor: Annotated[str | None, Query(max_length=64, description="person id")] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="action or its domain (`badge`)")
    ] = None,
    target: Annotated[str | None, Query(max_length=200, description="target prefix")] = None,
    site: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[
        AwareDateTime | None, Query(description="from (inclusive), RFC 3339 with offset")
    ] = None,
    until: Annotated[
        AwareDateTime | None, Query(description="to (exclusive), RFC 3339 with offset")
    ] = None,
    before: Annotated[
        int | None, Query(ge=1, description="the previous page's next_before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 100,
) -> AuditPage:
    """Who did what, when: newest first; the security role sees the entries of its sites."""
    return await audit.search(
        conn,
        scope=access.site_scope(user, ("security",)),
        actor=actor,
        action=action,
        target=target,
        site=site,
        since=since,
        until=until,
        before=before,
        limit=limit,
    )
