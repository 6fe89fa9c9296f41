"""HTTP API schemas of room bookings, room availability, the door panel and calendar tokens."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

RoomBookingStatus = Literal["booked", "checked_in", "completed", "cancelled", "no_show"]
RoomState = Literal["booked_in_use", "booked_empty", "in_use_not_booked", "free", "unknown"]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give a time zone offset (e.g. Z or +08:00)")
    return value


class RoomBookingBase(BaseModel):
    room_id: str = Field(min_length=1, max_length=64)
    starts_at: datetime = Field(description="with offset; stored and returned in UTC")
    ends_at: datetime
    title: str | None = Field(default=None, max_length=200, description="meeting subject")
    attendees: int | None = Field(default=None, ge=1, le=10_000, description="expected people")

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _with_offset(cls, value: datetime) -> datetime:
        return _aware(value)

    @model_validator(mode="after")
    def _ordered(self) -> RoomBookingBase:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class RoomBookingCreate(RoomBookingBase):
    person_id: str = Field(min_length=1, max_length=64, description="the organiser")


class RoomBookingPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    room_id: str
    person_id: str | None
    starts_at: datetime
    ends_at: datetime
    status: RoomBookingStatus
    title: str | None = None
    attendees: int | None = None
    series_id: str | None = None
    walk_up: bool = False
    created_at: datetime
    checked_in_at: datetime | None = None
    sensed_at: datetime | None = None
    warned_at: datetime | None = None
    ended_at: datetime | None = None
    release_reason: str | None = None


class RoomBookingExtend(BaseModel):
    ends_at: datetime

    @field_validator("ends_at")
    @classmethod
    def _with_offset(cls, value: datetime) -> datetime:
        return _aware(value)


class RecurringRoomBookingCreate(BaseModel):
    room_id: str = Field(min_length=1, max_length=64)
    person_id: str = Field(min_length=1, max_length=64)
    frequency: Literal["daily", "weekly"]
    first_day: date
    until: date = Field(description="last day a meeting may fall on (inclusive)")
    start_time: time = Field(description="site-local wall-clock time")
    end_time: time
    title: str | None = Field(default=None, max_length=200)
    attendees: int | None = Field(default=None, ge=1, le=10_000)
    skip_weekends: bool = Field(default=True, description="daily series: no Saturday/Sunday")

    @model_validator(mode="after")
    def _ordered(self) -> RecurringRoomBookingCreate:
        if self.until < self.first_day:
            raise ValueError("until must not be before first_day")
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        return self


class OccurrenceConflict(BaseModel):
    day: date
    title: str
    detail: str


class RecurringRoomBookingPublic(BaseModel):
    series_id: str
    created: list[RoomBookingPublic]
    conflicts: list[OccurrenceConflict] = Field(description="occurrences not booked, and why")


class RoomPublic(BaseModel):
    id: str
    name: str
    capacity: int
    features: list[str]
    floor_id: str
    zone_id: str
    occupied: bool | None = Field(description="the room sensor's latest reading")
    state: RoomState


class RoomAvailabilityPublic(BaseModel):
    start: datetime
    end: datetime
    rooms: list[RoomPublic] = Field(description="rooms free for the whole range")


class PanelBookNow(BaseModel):
    minutes: Literal[15, 30, 60]


class PanelCheckin(BaseModel):
    key: str = Field(min_length=1, max_length=64, description="the `k` of the room's QR URL")


class PanelMeeting(BaseModel):
    id: int
    starts_at: datetime
    ends_at: datetime
    status: RoomBookingStatus
    # Null unless the meeting is the panel's own agency's or the site shows titles.
    title: str | None
    checked_in: bool


class PanelSchedule(BaseModel):
    room_id: str
    room_name: str
    capacity: int
    timezone: str
    generated_at: datetime
    occupied: bool | None
    state: RoomState
    now: PanelMeeting | None
    next: PanelMeeting | None = Field(
        description="the next meeting today, or else the first in the coming week"
    )
    free_until: datetime | None = Field(
        description="null: no meeting for the rest of the day and the next 12 hours"
    )
    today: list[PanelMeeting]
    later: list[PanelMeeting] = Field(
        default_factory=list,
        description="meetings after today within 12 hours of now: a panel offline over "
        "midnight still knows them",
    )
    checkin_url: str = Field(description="the room's QR check-in URL (for a phone)")


class CalendarTokenPublic(BaseModel):
    url: str = Field(description="the subscription URL; shown once, keep it secret")
    token: str
    created_at: datetime


class RoomUsage(BaseModel):
    room_id: str
    name: str
    capacity: int
    booked_hours: float
    sensed_hours: float
    sensed_unbooked_hours: float = Field(
        description="occupied with no booking: 'in use, not booked'"
    )
    bookings: int
    no_shows: int
    mean_attendees: float | None = Field(description="of bookings that said how many")
    right_size: Literal["too_big", "fits", "too_small", "unknown"]


class RoomAnalyticsPublic(BaseModel):
    start: datetime
    end: datetime
    rooms: list[RoomUsage]
