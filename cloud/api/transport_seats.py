"""Seat reservation and pool-car routes: reserve/cancel, my reservations, a trip's seat counts,
car bookings (request, list, approve/reject/cancel) and car trip logs."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status

from cloud.api.params import RowId
from cloud.api_types import SQL_INT_MAX, AwareDateTime, Problem
from cloud.bookings.store import BookingStore
from cloud.deps import BookingStoreDep, DbDep, SettingsDep
from cloud.errors import NotFound
from cloud.people.auth import CurrentUser, Principal
from cloud.settings import CloudSettings
from cloud.transport import car_trips, poolcars, reservations
from cloud.transport.schemas_cars import (
    CarAlarm,
    CarBookingCreate,
    CarBookingPublic,
    CarBookingStatus,
    CarDecision,
    CarTripPublic,
)
from cloud.transport.schemas_seats import (
    GTFS_ID,
    ReservationCreate,
    ReservationPublic,
    TripSeatsPublic,
)
from cloud.transport.seat_access import ensure_may_act_for, visible_car_bookings
from cloud.transport.seat_facts import capacity_rule

router = APIRouter(tags=["transport"])

_SEAT_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "not yours to reserve or cancel"},
    404: {"model": Problem, "description": "no such trip on that day, person or reservation"},
    409: {
        "model": Problem,
        "description": "trip full (join the waitlist with waitlist=true); already reserved; "
        "trip departed; reservation not cancellable",
    },
    422: {"model": Problem, "description": "the trip does not serve that stop"},
    503: {"model": Problem, "description": "booking store busy (SQLite); retry"},
}
_CAR_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "not yours, or not your agency's request"},
    404: {"model": Problem, "description": "no such pool car, person or booking"},
    409: {"model": Problem, "description": "car already booked for that time; wrong status"},
    422: {"model": Problem, "description": "the booking lies in the past"},
    503: {"model": Problem, "description": "booking store busy (SQLite); retry"},
}
TripIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=GTFS_ID)]
ServiceDatePath = Annotated[str, Path(pattern=r"^\d{8}$", description="YYYYMMDD")]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _unreturned(settings: CloudSettings) -> timedelta:
    return timedelta(hours=settings.poolcar_unreturned_after_h)


# --- seats -----------------------------------------------------------------------------------


@router.post(
    "/transport/reservations",
    response_model=ReservationPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_SEAT_ERRORS,
)
async def reserve(
    body: ReservationCreate, store: BookingStoreDep, user: CurrentUser, settings: SettingsDep
) -> ReservationPublic:
    person = body.person_id or user.subject
    async with store.engine.connect() as conn:
        await ensure_may_act_for(conn, user, person)
    return await reservations.reserve(store, body, person, capacity=capacity_rule(settings))


@router.delete(
    "/transport/reservations/{reservation_id}",
    response_model=ReservationPublic,
    responses=_SEAT_ERRORS,
)
async def cancel_reservation(
    reservation_id: RowId, store: BookingStoreDep, user: CurrentUser
) -> ReservationPublic:
    async with store.engine.connect() as conn:
        current = await reservations.get_reservation(conn, reservation_id)
        await ensure_may_act_for(conn, user, current.person_id)
    return await reservations.cancel(store, reservation_id)


@router.get("/me/transport/reservations", response_model=list[ReservationPublic])
async def my_reservations(
    conn: DbDep,
    user: CurrentUser,
    active: Annotated[bool, Query(description="only confirmed and waitlisted")] = False,
    limit: Limit = 200,
) -> list[ReservationPublic]:
    return await reservations.list_for_person(conn, user.subject, active_only=active, limit=limit)


@router.get(
    "/transport/trips/{trip_id}/{service_date}/seats",
    response_model=TripSeatsPublic,
    responses={404: {"model": Problem, "description": "no such trip on that day"}},
)
async def trip_seats(
    trip_id: TripIdPath,
    service_date: ServiceDatePath,
    conn: DbDep,
    user: CurrentUser,
    settings: SettingsDep,
) -> TripSeatsPublic:
    return await reservations.trip_seats(
        conn, trip_id, service_date, capacity=capacity_rule(settings)
    )


# --- pool cars -------------------------------------------------------------------------------


@router.post(
    "/transport/car-bookings",
    response_model=CarBookingPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_CAR_ERRORS,
)
async def book_car(
    body: CarBookingCreate, store: BookingStoreDep, user: CurrentUser, settings: SettingsDep
) -> CarBookingPublic:
    person = body.person_id or user.subject
    async with store.engine.connect() as conn:
        await ensure_may_act_for(conn, user, person)
    return await poolcars.create(store, body, person, _unreturned(settings))


@router.get("/transport/car-bookings", response_model=list[CarBookingPublic])
async def list_car_bookings(
    conn: DbDep,
    user: CurrentUser,
    settings: SettingsDep,
    vehicle: Annotated[str | None, Query(max_length=64)] = None,
    status_: Annotated[CarBookingStatus | None, Query(alias="status")] = None,
    alarm: Annotated[CarAlarm | None, Query(description="overdue or unreturned cars")] = None,
    limit: Limit = 200,
) -> list[CarBookingPublic]:
    return await poolcars.list_bookings(
        conn,
        visible=await visible_car_bookings(conn, user),
        vehicle_id=vehicle,
        status=status_,
        alarm=alarm,
        unreturned_after=_unreturned(settings),
        limit=limit,
    )


async def _decide(
    store: BookingStore,
    booking_id: int,
    user: Principal,
    settings: CloudSettings,
    approve: bool,
    note: str | None,
) -> CarBookingPublic:
    return await poolcars.decide(
        store,
        booking_id,
        user,
        approve=approve,
        note=note,
        unreturned_after=_unreturned(settings),
    )


@router.post(
    "/transport/car-bookings/{car_booking_id}/approve",
    response_model=CarBookingPublic,
    responses=_CAR_ERRORS,
)
async def approve_car_booking(
    car_booking_id: RowId,
    store: BookingStoreDep,
    user: CurrentUser,
    settings: SettingsDep,
    body: CarDecision | None = None,
) -> CarBookingPublic:
    return await _decide(store, car_booking_id, user, settings, True, body.note if body else None)


@router.post(
    "/transport/car-bookings/{car_booking_id}/reject",
    response_model=CarBookingPublic,
    responses=_CAR_ERRORS,
)
async def reject_car_booking(
    car_booking_id: RowId,
    store: BookingStoreDep,
    user: CurrentUser,
    settings: SettingsDep,
    body: CarDecision | None = None,
) -> CarBookingPublic:
    return await _decide(store, car_booking_id, user, settings, False, body.note if body else None)


@router.post(
    "/transport/car-bookings/{car_booking_id}/cancel",
    response_model=CarBookingPublic,
    responses=_CAR_ERRORS,
)
async def cancel_car_booking(
    car_booking_id: RowId, store: BookingStoreDep, user: CurrentUser, settings: SettingsDep
) -> CarBookingPublic:
    async with store.engine.connect() as conn:
        current = await poolcars.get_car_booking(conn, car_booking_id)
        await ensure_may_act_for(conn, user, current.person_id)
    return await poolcars.cancel(store, car_booking_id, _unreturned(settings))


@router.get(
    "/transport/car-trips",
    response_model=list[CarTripPublic],
    responses={404: {"model": Problem, "description": "no such booking"}},
)
async def list_car_trips(
    conn: DbDep,
    user: CurrentUser,
    vehicle: Annotated[str | None, Query(max_length=64)] = None,
    booking: Annotated[int | None, Query(ge=1, le=SQL_INT_MAX, description="one trip")] = None,
    since: Annotated[AwareDateTime | None, Query(alias="from")] = None,
    until: Annotated[AwareDateTime | None, Query(alias="to")] = None,
    trace: Annotated[bool, Query(description="include the route trace")] = False,
    limit: Limit = 200,
) -> list[CarTripPublic]:
    found = await car_trips.car_trips(
        conn,
        visible=await visible_car_bookings(conn, user),
        vehicle_id=vehicle,
        booking_id=booking,
        since=since,
        until=until,
        with_trace=trace,
        limit=limit,
    )
    if booking is not None and not found:
        raise NotFound(f"no returned car booking {booking} you may see", title="Trip not found")
    return found
