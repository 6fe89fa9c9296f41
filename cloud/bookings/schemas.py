"""HTTP API schemas of bookings, recurring series, availability and QR check-in."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BookingStatus = Literal["booked", "checked_in", "completed", "cancelled", "released", "no_show"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give a time zone offset (e.g. Z or +08:00)")
    return value


class BookingBase(BaseModel):
    desk_id: str
    starts_at: datetime = Field(description="with offset; stored and returned in UTC")
    ends_at: datetime

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _with_offset(cls, value: datetime) -> datetime:
        return _aware(value)

    @model_validator(mode="after")
    def _ordered(self) -> BookingBase:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class BookingCreate(BookingBase):
    # Until authentication lands the caller names the person; later it is the token's.
    person_id: str


class BookingPublic(BookingBase):
    model_config = ConfigDict(from_attributes=True)

    id: int
    person_id: str
    status: BookingStatus
    created_at: datetime
    cancelled_at: datetime | None = None
    released_at: datetime | None = None
    release_reason: str | None = None
    series_id: str | None = None
    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None
    walk_up: bool = False
    # Filled in listings (GET /bookings) so a person can tell their desks apart by name.
    desk_label: str | None = None
    floor_name: str | None = None
    zone_name: str | None = None


class BookingExtend(BaseModel):
    ends_at: datetime

    @field_validator("ends_at")
    @classmethod
    def _with_offset(cls, value: datetime) -> datetime:
        return _aware(value)


class RecurringBookingCreate(BaseModel):
    desk_id: str
    person_id: str
    weekdays: list[Weekday] = Field(min_length=1)
    first_day: date
    last_day: date
    start_time: time = Field(description="site-local wall-clock time")
    end_time: time

    @model_validator(mode="after")
    def _ordered(self) -> RecurringBookingCreate:
        if self.last_day < self.first_day:
            raise ValueError("last_day must not be before first_day")
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        return self


class RecurringConflict(BaseModel):
    day: date
    title: str
    detail: str


class RecurringBookingPublic(BaseModel):
    series_id: str
    created: list[BookingPublic]
    conflicts: list[RecurringConflict] = Field(description="days not booked, and why")


class AvailableDesk(BaseModel):
    id: str
    label: str | None
    mode: Literal["reservable", "drop_in", "assigned"]
    features: list[str]
    floor_id: str | None
    zone_id: str | None
    reserved_for_agency: str | None
    x: float | None
    y: float | None
    w: float | None
    h: float | None


class AvailableRoom(BaseModel):
    id: str
    name: str
    capacity: int
    features: list[str]
    floor_id: str
    zone_id: str


class AvailabilityPublic(BaseModel):
    start: datetime
    end: datetime
    desks: list[AvailableDesk]
    rooms: list[AvailableRoom] = Field(
        description="rooms matching the filters (room reservations are not modelled yet)"
    )


class QrCheckin(BaseModel):
    key: str = Field(min_length=1, max_length=64, description="the `k` of the desk's QR URL")
