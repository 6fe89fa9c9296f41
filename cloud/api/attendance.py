"""Attendance export routes (docs/attendance.md).

`GET /attendance`: an opted-in agency's rows for up to 31 days, JSON or CSV
(`format=csv` or `Accept: text/csv`), for admins and the `dpo` role; audited per call.
`/attendance/agencies`: which agencies opted in and on what terms, admins only.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response

from cloud.api_types import Problem
from cloud.attendance import export, optin
from cloud.attendance.schemas import AgencyOptInCreate, AgencyOptInPublic, AttendancePage
from cloud.deps import DbDep, EngineDep
from cloud.people.auth import CurrentUser, require_roles

router = APIRouter(prefix="/attendance", tags=["attendance"])
ADMINS = [require_roles("admin")]

Agency = Annotated[str, Query(min_length=1, max_length=200, description="as people.agency")]
From = Annotated[date, Query(alias="from", description="first day (site-local), YYYY-MM-DD")]
To = Annotated[date, Query(alias="to", description="last day, included; at most 31 days")]
After = Annotated[str | None, Query(max_length=64, description="next_after of the last page")]
Limit = Annotated[int, Query(ge=1, le=export.MAX_PEOPLE, description="people per page")]
Format = Annotated[Literal["json", "csv"] | None, Query(description="else by the Accept header")]

_EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "the page as JSON, or with format=csv (or Accept: text/csv) its rows",
    },
    403: {"model": Problem, "description": "not an exporter, or the agency has not opted in"},
    422: {"model": Problem, "description": "bad or too long a date range"},
}


@router.get(
    "",
    response_model=AttendancePage,
    response_model_by_alias=True,
    dependencies=[require_roles(*export.EXPORT_ROLES)],
    responses=_EXPORT_RESPONSES,
)
async def attendance(
    engine: EngineDep,
    user: CurrentUser,
    agency: Agency,
    start: From,
    end: To,
    after: After = None,
    limit: Limit = 200,
    format: Format = None,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """Per person and day: first check-in and last presence per site, or absent/remote."""
    as_csv = format == "csv" or (format is None and "text/csv" in (accept or ""))
    q = export.Query(agency, start, end, after, limit)
    page = await export.export(engine, user, q, "csv" if as_csv else "json")
    if not as_csv:
        return page
    headers = {"Content-Disposition": f'attachment; filename="attendance-{start}-{end}.csv"'}
    if page.next_after is not None:
        headers["Ruang-Next-After"] = page.next_after
    return Response(export.csv_text(page), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/agencies", response_model=list[AgencyOptInPublic], dependencies=ADMINS)
async def agencies(conn: DbDep) -> list[AgencyOptInPublic]:
    """The agencies that opted in, and their terms."""
    return await optin.listing(conn)


@router.put("/agencies/{agency}", response_model=AgencyOptInPublic, dependencies=ADMINS)
async def opt_in(
    agency: str, body: AgencyOptInCreate, engine: EngineDep, user: CurrentUser
) -> AgencyOptInPublic:
    """Opts the agency in (or changes its terms); audited."""
    async with engine.begin() as conn:
        return await optin.enable(conn, agency, body, user)


@router.delete(
    "/agencies/{agency}",
    status_code=204,
    dependencies=ADMINS,
    responses={404: {"model": Problem, "description": "the agency had not opted in"}},
)
async def opt_out(agency: str, engine: EngineDep, user: CurrentUser) -> Response:
    """Turns the export off for the agency; audited."""
    async with engine.begin() as conn:
        await optin.disable(conn, agency, user)
    return Response(status_code=204)
