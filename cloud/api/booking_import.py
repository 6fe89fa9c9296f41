"""Admin route: import finished past bookings of a previous system (bookings/history_import)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.admin import audit
from cloud.api_types import Problem
from cloud.bookings.history_import import ImportRequest, ImportResult, import_bookings
from cloud.deps import BookingStoreDep
from cloud.people.auth import CurrentUser

router = APIRouter(tags=["bookings"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": Problem, "description": "rows refused (errors: index, field, message)"},
    503: {"model": Problem, "description": "booking store busy (SQLite); retry"},
}


@router.post("/bookings/import", response_model=ImportResult, responses=_ERRORS)
async def import_history(
    body: ImportRequest, store: BookingStoreDep, user: CurrentUser
) -> ImportResult:
    """Stores finished past bookings, all or nothing; identical rows already there are skipped."""

    async def audited(conn: AsyncConnection, result: ImportResult) -> None:
        await audit.record(
            conn,
            actor=user,
            action="bookings.import",
            target=f"{len({r.desk_id for r in body.rows})} desks",
            detail={"rows": len(body.rows), **result.model_dump()},
        )

    return await import_bookings(store, body.rows, audit=audited)
