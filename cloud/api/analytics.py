"""Analytics routes: utilisation, released bookings, the booking × sensor matrix and the
weekday × hour heatmap.

Every report is computed (cloud.analytics.utilisation) from recorded history
(cloud.analytics.history); `format=csv` returns the same rows as the JSON `rows`
(the heatmap: its `cells`), with a header line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from cloud.analytics import utilisation as analytics
from cloud.analytics.history import load_history, load_releases
from cloud.analytics.schemas import (
    BucketUnit,
    Heatmap,
    HeatmapCell,
    Level,
    MatrixReport,
    MatrixRow,
    Order,
    ReleaseReport,
    ReleaseRow,
    UtilisationReport,
    UtilisationRow,
)
from cloud.api_types import AwareDateTime, Problem
from cloud.deps import DbDep
from cloud.people import access
from cloud.people.auth import CurrentUser
from cloud.problems import ProblemError

router = APIRouter(prefix="/analytics", tags=["analytics"])

From = Annotated[
    AwareDateTime, Query(alias="from", description="range start (RFC 3339 with offset)")
]
To = Annotated[AwareDateTime, Query(description="range end, exclusive (RFC 3339 with offset)")]
LevelQ = Annotated[Level, Query(description="what each row aggregates")]
Format = Annotated[Literal["json", "csv"], Query(description="csv: the rows, with a header")]
BuildingQ = Annotated[str | None, Query(description="only desks of this building")]
BucketQ = Annotated[
    BucketUnit, Query(description="hour, day, or range: one bucket for the whole [from, to)")
]


def _csv_responses(model: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": f"JSON report, or with format=csv one {model} per line",
        },
        422: {"model": Problem, "description": "bad range, level, bucket or format"},
    }


def _check_range(start: datetime, end: datetime, unit: BucketUnit) -> None:
    # [from, to) is half-open: from == to is an empty range (no rows), as in the
    # schema, which cannot order two parameters; only a reversed range is refused.
    if start.tzinfo is None or end.tzinfo is None or end < start:
        raise ProblemError(
            422, "from and to need an offset and to must not be before from", title="Bad time range"
        )
    limit = analytics.MAX_RANGE[unit]
    if end - start > limit:
        raise ProblemError(
            422, f"{unit} buckets cover at most {limit.days} days", title="Range too long"
        )


def _sites(user: CurrentUser) -> access.Scope:
    # Only desks of the caller's sites count; a building elsewhere is a 404
    # (cloud/people/access.py).
    return access.site_scope(user, access.MANAGER_ROLES)


def _csv(body: str, name: str) -> Response:
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get(
    "/utilisation",
    response_model=UtilisationReport,
    response_model_by_alias=True,
    responses=_csv_responses("UtilisationRow"),
)
async def utilisation(
    conn: DbDep,
    user: CurrentUser,
    start: From,
    to: To,
    level: LevelQ = "desk",
    bucket: BucketQ = "day",
    format: Format = "json",
    building: BuildingQ = None,
    order: Annotated[
        Order, Query(description="entity: by entity then time; utilisation: least used first")
    ] = "entity",
    limit: Annotated[
        int | None, Query(ge=1, le=10000, description="at most this many rows, after order")
    ] = None,
) -> UtilisationReport | Response:
    """Per entity and bucket: utilisation %, peak and mean occupancy, no-show rate."""
    _check_range(start, to, bucket)
    history = await load_history(
        conn, start, to, datetime.now(UTC), building=building, sites=_sites(user)
    )
    rows = analytics.order_rows(analytics.utilisation(history, level, bucket), order, limit)
    if format == "csv":
        return _csv(analytics.to_csv(rows, UtilisationRow), "utilisation")
    return UtilisationReport.model_validate(
        {"from": start, "to": to, "level": level, "bucket": bucket, "rows": rows}
    )


@router.get(
    "/releases",
    response_model=ReleaseReport,
    response_model_by_alias=True,
    responses=_csv_responses("ReleaseRow"),
)
async def releases(
    conn: DbDep,
    user: CurrentUser,
    start: From,
    to: To,
    level: LevelQ = "building",
    bucket: BucketQ = "day",
    format: Format = "json",
    building: BuildingQ = None,
) -> ReleaseReport | Response:
    """Released bookings per entity and bucket of the release time, counted by reason."""
    _check_range(start, to, bucket)
    desks, released = await load_releases(conn, start, to, building=building, sites=_sites(user))
    rows = analytics.releases(desks, released, start, to, level, bucket)
    if format == "csv":
        return _csv(analytics.to_csv(rows, ReleaseRow), "releases")
    return ReleaseReport.model_validate(
        {"from": start, "to": to, "level": level, "bucket": bucket, "rows": rows}
    )


@router.get(
    "/booking-sensor-matrix",
    response_model=MatrixReport,
    response_model_by_alias=True,
    responses=_csv_responses("MatrixRow"),
)
async def booking_sensor_matrix(
    conn: DbDep,
    user: CurrentUser,
    start: From,
    to: To,
    level: LevelQ = "desk",
    format: Format = "json",
    building: BuildingQ = None,
) -> MatrixReport | Response:
    """Desk-day cells per entity: used as booked, used unbooked, booked but unused, unused."""
    _check_range(start, to, "day")
    history = await load_history(
        conn, start, to, datetime.now(UTC), building=building, sites=_sites(user)
    )
    rows = analytics.booking_sensor_matrix(history, level)
    if format == "csv":
        return _csv(analytics.to_csv(rows, MatrixRow), "booking-sensor-matrix")
    return MatrixReport.model_validate({"from": start, "to": to, "level": level, "rows": rows})


@router.get(
    "/heatmap",
    response_model=Heatmap,
    response_model_by_alias=True,
    responses=_csv_responses("HeatmapCell"),
)
async def heatmap(
    conn: DbDep,
    user: CurrentUser,
    start: From,
    to: To,
    format: Format = "json",
    building: BuildingQ = None,
) -> Heatmap | Response:
    """Utilisation % by weekday × hour of the site's time zone, over the range."""
    _check_range(start, to, "day")
    history = await load_history(
        conn, start, to, datetime.now(UTC), building=building, sites=_sites(user)
    )
    desks, cells = analytics.heatmap(history)
    if format == "csv":
        return _csv(analytics.to_csv(cells, HeatmapCell), "heatmap")
    return Heatmap.model_validate(
        {"from": start, "to": to, "building": building, "desks": desks, "cells": cells}
    )
