"""Transport analytics routes: ridership, per-route performance and pool-car use.

Computed by cloud.analytics.transport from what was recorded
(cloud.analytics.transport_history); `format=csv` returns the JSON rows with a
header (then the totals line where the report has one). Definitions in
docs/analytics.md, "Transport".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from cloud.analytics import transport as reports
from cloud.analytics.transport_history import load_transport_history
from cloud.analytics.transport_schemas import (
    PoolCarReport,
    PoolCarRow,
    RidershipBy,
    RidershipReport,
    RidershipRow,
    RouteReport,
    RouteRow,
)
from cloud.analytics.utilisation import to_csv
from cloud.api_types import AwareDateTime, Problem
from cloud.deps import DbDep
from cloud.problems import ProblemError

router = APIRouter(prefix="/analytics/transport", tags=["analytics"])

From = Annotated[
    AwareDateTime, Query(alias="from", description="range start (RFC 3339 with offset)")
]
To = Annotated[AwareDateTime, Query(description="range end, exclusive (RFC 3339 with offset)")]
Format = Annotated[Literal["json", "csv"], Query(description="csv: the rows, with a header")]


def _responses(model: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": f"JSON report, or with format=csv one {model} per line",
        },
        422: {"model": Problem, "description": "bad range or format"},
    }


def _check_range(start: datetime, end: datetime) -> None:
    if end < start:
        raise ProblemError(422, "to must not be before from", title="Bad time range")
    if end - start > reports.MAX_RANGE:
        raise ProblemError(422, f"at most {reports.MAX_RANGE.days} days", title="Range too long")


def _csv(body: str, name: str) -> Response:
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get(
    "/ridership",
    response_model=RidershipReport,
    response_model_by_alias=True,
    responses=_responses("RidershipRow"),
)
async def ridership(
    conn: DbDep,
    start: From,
    to: To,
    by: Annotated[RidershipBy, Query(description="route, stop, or hour of day (WITA)")] = "route",
    format: Format = "json",
) -> RidershipReport | Response:
    """Boardings (allowed taps at the vehicle door, each event once) by route, stop or hour."""
    _check_range(start, to)
    history = await load_transport_history(conn, start, to)
    rows = reports.ridership(history, by)
    if format == "csv":
        return _csv(to_csv(rows, RidershipRow), f"transport-ridership-{by}")
    return RidershipReport.model_validate(
        {"from": start, "to": to, "by": by, "total": sum(r.boardings for r in rows), "rows": rows}
    )


@router.get(
    "/routes",
    response_model=RouteReport,
    response_model_by_alias=True,
    responses=_responses("RouteRow"),
)
async def routes(
    conn: DbDep, start: From, to: To, format: Format = "json"
) -> RouteReport | Response:
    """Per route: load factor, on-time performance (-1/+5 min) and reservation no-shows."""
    _check_range(start, to)
    rows, totals = reports.routes(await load_transport_history(conn, start, to))
    if format == "csv":
        return _csv(to_csv([*rows, totals], RouteRow), "transport-routes")
    return RouteReport.model_validate({"from": start, "to": to, "rows": rows, "totals": totals})


@router.get(
    "/pool-cars",
    response_model=PoolCarReport,
    response_model_by_alias=True,
    responses=_responses("PoolCarRow"),
)
async def pool_cars(
    conn: DbDep, start: From, to: To, format: Format = "json"
) -> PoolCarReport | Response:
    """Per pool car: hours out within working hours, trips and distance."""
    _check_range(start, to)
    history = await load_transport_history(conn, start, to)
    rows, totals = reports.pool_cars(history, datetime.now(UTC))
    if format == "csv":
        return _csv(to_csv([*rows, totals], PoolCarRow), "transport-pool-cars")
    return PoolCarReport.model_validate({"from": start, "to": to, "rows": rows, "totals": totals})
