"""Meeting room routes: rooms now, availability, bookings, the door panel, analytics, calendars.

Three routers: `router` for signed-in people, `panel_router` for the door tablet
(authorised by the room's panel key, no sign-in) and the calendar feed (its secret
token in the path), `managers_router` for facility managers (room analytics, panel
URLs). The work is in cloud/rooms/.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import Response

from cloud.analytics.utilisation import to_csv
from cloud.api.params import RowId
from cloud.api_types import SQL_INT_MAX, AwareDateTime, Problem
from cloud.db.tables import ZONES
from cloud.deps import BookingStoreDep, CheckinKeysDep, DbDep, EngineDep, SettingsDep
from cloud.people import access as people_access
from cloud.people.auth import CurrentUser
from cloud.problems import ProblemError
from cloud.rooms import analytics, calendar, panel, reads, writes
from cloud.rooms.access import ensure_may_act_for, ensure_sees_room
from cloud.rooms.schemas import (
    CalendarTokenPublic,
    PanelBookNow,
    PanelCheckin,
    PanelSchedule,
    RecurringRoomBookingCreate,
    RecurringRoomBookingPublic,
    RoomAnalyticsPublic,
    RoomAvailabilityPublic,
    RoomBookingCreate,
    RoomBookingExtend,
    RoomBookingPublic,
    RoomPublic,
    RoomUsage,
)
from ruang.contract import ID_PATTERN

router = APIRouter(tags=["rooms"])
panel_router = APIRouter(tags=["rooms"])
managers_router = APIRouter(tags=["rooms"])

RoomIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="room id")]
PanelKey = Annotated[str, Query(min_length=1, max_length=64, description="the panel key `k`")]
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "not your booking"},
    404: {"model": Problem, "description": "no such room, person or booking"},
    409: {"model": Problem, "description": "room already booked for that time; not active"},
    422: {"model": Problem, "description": "outside the site's booking limits"},
    503: {"model": Problem, "description": "booking store busy (SQLite); retry"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "unknown"}}


def _range(start: datetime, end: datetime) -> None:
    if end < start:
        raise ProblemError(422, "end must not be before start", title="Bad time range")


@router.get("/rooms", response_model=list[RoomPublic])
async def list_rooms(
    conn: DbDep,
    user: CurrentUser,
    floor: Annotated[str | None, Query(description="floor id")] = None,
) -> list[RoomPublic]:
    """Every room with its state now, `in_use_not_booked` included."""
    where = [] if floor is None else [ZONES.c.floor_id == floor]
    return await reads.rooms_now(conn, datetime.now(UTC), where)


@router.get(
    "/rooms/availability",
    response_model=RoomAvailabilityPublic,
    responses={422: {"model": Problem, "description": "bad range or feature"}},
)
async def availability(
    conn: DbDep,
    user: CurrentUser,
    start: Annotated[AwareDateTime, Query()],
    end: Annotated[AwareDateTime, Query()],
    capacity: Annotated[int | None, Query(ge=1, le=SQL_INT_MAX, description="seats")] = None,
    floor: Annotated[str | None, Query(description="floor id")] = None,
    features: Annotated[str | None, Query(description="comma list of equipment")] = None,
) -> RoomAvailabilityPublic:
    _range(start, end)
    wanted = [f.strip() for f in (features or "").split(",") if f.strip()]
    rooms = await reads.available_rooms(
        conn, start=start, end=end, now=datetime.now(UTC), capacity=capacity, floor=floor,
        features=wanted,
    )  # fmt: skip
    return RoomAvailabilityPublic(start=start, end=end, rooms=rooms)


@router.post(
    "/room-bookings",
    response_model=RoomBookingPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_WRITE_ERRORS,
)
async def create_room_booking(
    body: RoomBookingCreate, store: BookingStoreDep, user: CurrentUser
) -> RoomBookingPublic:
    async with store.engine.connect() as conn:
        await ensure_may_act_for(conn, user, body.person_id, body.room_id)
    return await writes.create(store, body)


@router.post(
    "/room-bookings/recurring",
    response_model=RecurringRoomBookingPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_WRITE_ERRORS,
)
async def create_recurring(
    body: RecurringRoomBookingCreate, store: BookingStoreDep, user: CurrentUser
) -> RecurringRoomBookingPublic:
    async with store.engine.connect() as conn:
        await ensure_may_act_for(conn, user, body.person_id, body.room_id)
    return await writes.create_recurring(store, body)


@router.get("/room-bookings", response_model=list[RoomBookingPublic])
async def list_room_bookings(
    conn: DbDep,
    user: CurrentUser,
    person: Annotated[str | None, Query()] = None,
    room: Annotated[str | None, Query()] = None,
    start: Annotated[AwareDateTime | None, Query(alias="from")] = None,
    end: Annotated[AwareDateTime | None, Query(alias="to")] = None,
) -> list[RoomBookingPublic]:
    rows = await reads.list_room_bookings(
        conn, person=people_access.person_filter(user, person), room=room, start=start, end=end
    )
    if user.is_admin or "facility_manager" not in user.roles:
        return rows
    sites = await reads.room_sites(conn, [r.room_id for r in rows])
    return [
        r
        for r in rows
        if r.person_id == user.subject or people_access.manages(user, sites.get(r.room_id))
    ]


async def _owned(store: BookingStoreDep, user: CurrentUser, booking_id: int) -> None:
    async with store.engine.connect() as conn:
        current = await reads.get_room_booking(conn, booking_id)
        await ensure_may_act_for(conn, user, current.person_id, current.room_id)


@router.post(
    "/room-bookings/{room_booking_id}/cancel",
    response_model=RoomBookingPublic,
    responses=_WRITE_ERRORS,
)
async def cancel(
    room_booking_id: RowId, store: BookingStoreDep, user: CurrentUser
) -> RoomBookingPublic:
    await _owned(store, user, room_booking_id)
    return await writes.cancel(store, room_booking_id)


@router.post(
    "/room-bookings/{room_booking_id}/end",
    response_model=RoomBookingPublic,
    responses=_WRITE_ERRORS,
)
async def end_early(
    room_booking_id: RowId, store: BookingStoreDep, user: CurrentUser
) -> RoomBookingPublic:
    """Ends a running meeting now; the rest of the slot is free again."""
    await _owned(store, user, room_booking_id)
    return await writes.end_early(store, room_booking_id)


@router.post(
    "/room-bookings/{room_booking_id}/extend",
    response_model=RoomBookingPublic,
    responses=_WRITE_ERRORS,
)
async def extend(
    room_booking_id: RowId, body: RoomBookingExtend, store: BookingStoreDep, user: CurrentUser
) -> RoomBookingPublic:
    await _owned(store, user, room_booking_id)
    return await writes.extend(store, room_booking_id, body.ends_at)


@router.post("/rooms/{room_id}/checkin", response_model=RoomBookingPublic, responses=_WRITE_ERRORS)
async def qr_checkin(
    room_id: RoomIdPath,
    body: PanelCheckin,
    store: BookingStoreDep,
    keys: CheckinKeysDep,
    user: CurrentUser,
) -> RoomBookingPublic:
    """Check-in by the room's QR code, scanned with a phone by someone in the room."""
    if not keys.valid(panel.CHECKIN_PREFIX + room_id, body.key):
        raise ProblemError(403, "the QR key does not belong to this room", title="Wrong QR code")
    return await writes.check_in(store, room_id)


# --- the door panel (panel key) and the calendar feed (secret token) -------------------------


@panel_router.get("/panel/{room_id}", response_model=PanelSchedule, responses=_NOT_FOUND)
async def panel_schedule(
    room_id: RoomIdPath, k: PanelKey, conn: DbDep, keys: CheckinKeysDep
) -> PanelSchedule:
    panel.ensure_panel(keys, room_id, k)
    return await panel.schedule(conn, keys, room_id, datetime.now(UTC))


@panel_router.post(
    "/panel/{room_id}/book-now",
    response_model=RoomBookingPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_WRITE_ERRORS,
)
async def panel_book_now(
    room_id: RoomIdPath, k: PanelKey, body: PanelBookNow, store: BookingStoreDep,
    keys: CheckinKeysDep,
) -> RoomBookingPublic:  # fmt: skip
    panel.ensure_panel(keys, room_id, k)
    return await writes.book_now(store, room_id, body.minutes)


@panel_router.post(
    "/panel/{room_id}/checkin", response_model=RoomBookingPublic, responses=_WRITE_ERRORS
)
async def panel_checkin(
    room_id: RoomIdPath, k: PanelKey, store: BookingStoreDep, keys: CheckinKeysDep
) -> RoomBookingPublic:
    """Check-in pressed on the panel by someone standing at the door."""
    panel.ensure_panel(keys, room_id, k)
    return await writes.check_in(store, room_id)


@panel_router.get(
    "/calendar/{token}.ics",
    response_class=Response,
    responses={
        200: {"content": {"text/calendar": {}}, "description": "the person's bookings"},
        404: {"model": Problem, "description": "unknown or revoked token"},
    },
)
async def calendar_feed(
    token: Annotated[str, Path(min_length=20, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")],
    conn: DbDep,
) -> Response:
    person = await calendar.token_person(conn, token)
    body = await calendar.person_feed(conn, person, datetime.now(UTC))
    return Response(body, media_type="text/calendar; charset=utf-8")


@router.post(
    "/me/calendar-token",
    response_model=CalendarTokenPublic,
    status_code=status.HTTP_201_CREATED,
    responses=_NOT_FOUND,
)
async def new_calendar_token(
    engine: EngineDep, settings: SettingsDep, user: CurrentUser
) -> CalendarTokenPublic:
    """A new subscription URL for the caller's calendar (shown once; others stay valid)."""
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        token = await calendar.create_token(conn, user.subject, now)
    base = settings.public_base_url.rstrip("/")
    return CalendarTokenPublic(
        url=f"{base}/api/v1/calendar/{token}.ics", token=token, created_at=now
    )


@router.delete("/me/calendar-token", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_calendar_tokens(engine: EngineDep, user: CurrentUser) -> Response:
    """Revokes every subscription URL of the caller."""
    async with engine.begin() as conn:
        await calendar.revoke_tokens(conn, user.subject, datetime.now(UTC))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- facility managers ----------------------------------------------------------------------


@managers_router.get(
    "/analytics/rooms",
    response_model=RoomAnalyticsPublic,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "JSON report, or with format=csv one RoomUsage per line",
        },
        422: {"model": Problem, "description": "bad range"},
    },
)
async def room_analytics(
    conn: DbDep,
    user: CurrentUser,
    start: Annotated[AwareDateTime, Query(alias="from")],
    to: Annotated[AwareDateTime, Query()],
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> RoomAnalyticsPublic | Response:
    """Per room: booked vs sensed hours, in use but not booked, no-shows, right-sizing."""
    _range(start, to)
    if to - start > analytics.MAX_RANGE:
        raise ProblemError(422, "at most 366 days", title="Range too long")
    scope = people_access.site_scope(user, people_access.MANAGER_ROLES)
    report = await analytics.room_usage(
        conn, start, to, datetime.now(UTC), sites=None if scope is None else sorted(scope)
    )
    if format == "csv":
        return Response(
            to_csv(report.rooms, RoomUsage),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="rooms.csv"'},
        )
    return report


@managers_router.get("/rooms/{room_id}/panel-url", responses=_NOT_FOUND)
async def panel_address(
    room_id: RoomIdPath, conn: DbDep, keys: CheckinKeysDep, user: CurrentUser
) -> dict[str, str]:
    """The URL to open on the room's door tablet, and the room's QR check-in URL."""
    await ensure_sees_room(conn, user, room_id)
    return {
        "panel_url": panel.panel_url(keys, room_id),
        "checkin_url": panel.checkin_url(keys, room_id),
    }
