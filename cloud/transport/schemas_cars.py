"""HTTP API schemas of pool-car bookings and the trip logs written when a car comes back."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CarBookingStatus = Literal[
    "requested", "approved", "rejected", "cancelled", "picked_up", "returned"
]
CarAlarm = Literal["overdue", "unreturned"]


class CarBookingBase(BaseModel):
    vehicle_id: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f/]{1,64}$")
    purpose: str = Field(min_length=1, max_length=500, description="why the official trip")
    destination: str = Field(min_length=1, max_length=200)
    starts_at: datetime = Field(description="with offset; stored and returned in UTC")
    ends_at: datetime

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _with_offset(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give a time zone offset (e.g. Z or +08:00)")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> CarBookingBase:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class CarBookingCreate(CarBookingBase):
    # Omitted: the caller's own person id (the token's subject).
    person_id: str | None = Field(default=None, min_length=1, max_length=64)


class CarDecision(BaseModel):
    note: str | None = Field(default=None, max_length=500)


class CarBookingPublic(CarBookingBase):
    model_config = ConfigDict(from_attributes=True)

    id: int
    person_id: str
    agency: str | None = None
    status: CarBookingStatus
    created_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None
    cancelled_at: datetime | None = None
    picked_up_at: datetime | None = None
    returned_at: datetime | None = None
    distance_m: float | None = None
    alarm: CarAlarm | None = Field(
        default=None,
        description="overdue: picked up and past its end; unreturned: still out "
        "poolcar_unreturned_after_h hours after its end",
    )


class TracePoint(BaseModel):
    ts: datetime
    lat: float
    lon: float


class CarTripPublic(BaseModel):
    """The log of one returned pool-car booking."""

    booking_id: int
    vehicle_id: str
    person_id: str
    destination: str
    started_at: datetime
    ended_at: datetime
    distance_m: float
    positions: int
    trace: list[TracePoint] | None = Field(default=None, description="only with ?trace=true")
