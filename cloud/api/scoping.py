"""The site-scoping dependency every site-bound router carries (the rule is cloud/people/access.py).

Put on a router, it scopes every route of it, including ones added later.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, HTTPException, Request, status

from cloud.deps import EngineDep
from cloud.people import access
from cloud.people.auth import CurrentUser, Principal


def scoped(*roles: str) -> Any:
    """A dependency: the caller holds one of `roles` (else 403), and every resource the
    request names in its path or query (desk_id, floor_id, node_id, badge_id,
    person_id, node, building, site) lies in the caller's sites (else 404).

    Put on a router, it scopes every route of it, including ones added later.
    """

    async def check(request: Request, user: CurrentUser, engine: EngineDep) -> Principal:
        if not user.has(*roles, "admin"):
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail=f"This needs one of the roles: {', '.join(roles)}, admin.",
            )
        named = [(k, v) for k, v in request.path_params.items() if k in access.NAMED_PARAMS]
        named += [(k, v) for k, v in request.query_params.items() if k in access.NAMED_PARAMS]
        if named and not user.is_admin:
            # A short connection of its own: holding one for the whole request
            # would block SQLite writers in the route.
            async with engine.connect() as conn:
                for key, value in named:
                    await access.ensure_in_scope(conn, user, roles, key, str(value))
        return user

    return Depends(check)
