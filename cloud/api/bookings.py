"""Booking routes: availability search, book/cancel/extend, recurring series, CSV/ICS export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.api.params import RowId
from cloud.api_types import SQL_INT_MAX, AwareDateTime, Problem
from cloud.bookings import ics, reads, writes
from cloud.bookings.schemas import (
    AvailabilityPublic,
    BookingCreate,
    BookingExtend,
    BookingPublic,
    RecurringBookingCreate,
    RecurringBookingPublic,
)
from cloud.bookings.store import BookingStore
from cloud.db.models import FEATURES
from cloud.deps import BookingStoreDep, DbDep, DeskChangesDep
from cloud.people import access
from cloud.people.auth import CurrentUser, Principal
from cloud.problems import ProblemError

router = APIRouter(tags=["bookings"])

_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "desk assigned to someone else, or zone reserved"},
    404: {"model": Problem, "description": "no such desk, person or booking"},
    409: {
        "model": Problem,
        "description": "desk already booked for that time; you already "
        "have a desk for that time; desk not bookable",
    },
    422: {"model": Problem, "description": "outside the site's booking limits"},
    503: {"model": Problem, "description": "booking store busy (SQLite); retry"},
}
Feature = Annotated[
    str | None,
    Query(description="comma list: monitor,standing,accessible,dual_monitor (desk has all)"),
]
From = Annotated[AwareDateTime | None, Query(alias="from", description="overlapping from")]
To = Annotated[AwareDateTime | None, Query(alias="to", description="overlapping until")]


def _features(raw: str | None) -> list[str]:
    features = [f.strip() for f in (raw or "").split(",") if f.strip()]
    unknown = sorted(set(features) - set(FEATURES))
    if unknown:
        raise ProblemError(
            422, f"unknown feature(s): {', '.join(unknown)}", title="Unknown feature"
        )
    return features


@router.get(
    "/availability",
    response_model=AvailabilityPublic,
    responses={422: {"model": Problem, "description": "bad range or feature"}},
)
async def availability(
    conn: DbDep,
    user: CurrentUser,
    start: Annotated[AwareDateTime, Query()],
    end: Annotated[AwareDateTime, Query()],
    floor: Annotated[str | None, Query(description="floor id")] = None,
    zone: Annotated[str | None, Query(description="zone id")] = None,
    features: Feature = None,
    capacity: Annotated[
        int | None, Query(ge=1, le=SQL_INT_MAX, description="rooms: minimum seats")
    ] = None,
) -> Response:
    # Half-open [start, end): start == end is an empty range, which nothing overlaps.
    if start.tzinfo is None or end.tzinfo is None or end < start:
        raise ProblemError(
            422,
            "start and end need an offset and end must not be before start",
            title="Bad time range",
        )
    found = await reads.availability(
        conn,
        start=start,
        end=end,
        floor=floor,
        zone=zone,
        features=_features(features),
        capacity=capacity,
    )
    # Already AvailabilityPublic JSON (written by the database, see reads.availability);
    # returned as a model, FastAPI would validate and encode thousands of desks again.
    return Response(found, media_type="application/json")


@router.post(
    "/bookings",
    response_model=BookingPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_WRITE_ERRORS,
)
async def create_booking(
    body: BookingCreate,
    store: BookingStoreDep,
    user: CurrentUser,
    desk_changes: DeskChangesDep,
) -> BookingPublic:
    async def authorize(conn: AsyncConnection) -> None:
        await access.ensure_may_act_for(conn, user, body.person_id, body.desk_id)

    # One pooled connection for the check, the site rules and the write.
    created = await writes.create_booking(store, body, authorize)
    desk_changes([created.desk_id])
    return created


@router.post(
    "/bookings/recurring",
    response_model=RecurringBookingPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_WRITE_ERRORS,
)
async def create_recurring(
    body: RecurringBookingCreate,
    store: BookingStoreDep,
    user: CurrentUser,
    desk_changes: DeskChangesDep,
) -> RecurringBookingPublic:
    async with store.engine.connect() as conn:
        await access.ensure_may_act_for(conn, user, body.person_id, body.desk_id)
    series = await writes.create_recurring(store, body)
    desk_changes([body.desk_id])
    return series


@dataclass(frozen=True)
class BookingFilter:
    person: str | None
    desk: str | None
    start: datetime | None
    end: datetime | None


async def booking_filter(
    person: Annotated[str | None, Query()] = None,
    desk: Annotated[str | None, Query()] = None,
    start: From = None,
    end: To = None,
) -> BookingFilter:
    return BookingFilter(person, desk, start, end)


Filter = Annotated[BookingFilter, Depends(booking_filter)]


async def _rows(
    conn: DbDep, user: Principal, f: BookingFilter, limit: int | None = None
) -> list[BookingPublic]:
    """The bookings matching `f` that `user` may see (see cloud/people/access.py)."""
    extra = {"limit": limit} if limit is not None else {}
    rows = await reads.list_bookings(
        conn, person=access.person_filter(user, f.person), desk=f.desk, start=f.start,
        end=f.end, **extra,
    )  # fmt: skip
    if user.is_admin or "facility_manager" not in user.roles:
        return rows
    # A facility manager sees the bookings in the sites they manage, and their own.
    sites = await access.desk_sites(conn, [r.desk_id for r in rows])
    return [
        r for r in rows if r.person_id == user.subject or access.manages(user, sites.get(r.desk_id))
    ]


@router.get("/bookings", response_model=list[BookingPublic])
async def list_bookings(conn: DbDep, user: CurrentUser, f: Filter) -> list[BookingPublic]:
    return await _rows(conn, user, f)


@router.get(
    "/bookings/export.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "bookings as CSV"}},
)
async def export_csv(conn: DbDep, user: CurrentUser, f: Filter) -> Response:
    rows = await _rows(conn, user, f, limit=100_000)
    return Response(
        ics.bookings_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="bookings.csv"'},
    )


@router.get(
    "/bookings/export.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}, "description": "bookings as iCalendar"}},
)
async def export_ics(conn: DbDep, user: CurrentUser, f: Filter) -> Response:
    rows = await _rows(conn, user, f, limit=100_000)
    places = await reads.desk_places(conn, [r.desk_id for r in rows])
    body = ics.bookings_ics(rows, places, datetime.now(UTC))
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="bookings.ics"'},
    )


@router.post("/bookings/{booking_id}/cancel", response_model=BookingPublic, responses=_WRITE_ERRORS)
async def cancel_booking(
    booking_id: RowId,
    store: BookingStoreDep,
    user: CurrentUser,
    desk_changes: DeskChangesDep,
) -> BookingPublic:
    await _ensure_owner(store, user, booking_id)
    cancelled = await writes.cancel_booking(store, booking_id)
    desk_changes([cancelled.desk_id])
    return cancelled


@router.post("/bookings/{booking_id}/extend", response_model=BookingPublic, responses=_WRITE_ERRORS)
async def extend_booking(
    booking_id: RowId,
    body: BookingExtend,
    store: BookingStoreDep,
    user: CurrentUser,
    desk_changes: DeskChangesDep,
) -> BookingPublic:
    await _ensure_owner(store, user, booking_id)
    extended = await writes.extend_booking(store, booking_id, body.ends_at)
    desk_changes([extended.desk_id])
    return extended


async def _ensure_owner(store: BookingStore, user: Principal, booking_id: int) -> None:
    async with store.engine.connect() as conn:
        row = await reads.get_booking(conn, booking_id)
        await access.ensure_may_act_for(conn, user, row.person_id, row.desk_id)
