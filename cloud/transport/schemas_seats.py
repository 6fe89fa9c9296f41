"""HTTP API schemas of shuttle seat reservations and a trip instance's seat counts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ReservationStatus = Literal["confirmed", "waitlisted", "boarded", "cancelled", "no_show", "expired"]
# GTFS ids may hold more than node ids do (":" is common); a slash would break the paths.
GTFS_ID = r"^[^\x00-\x1f/]{1,64}$"
ServiceDate = Field(pattern=r"^\d{8}$", description="GTFS service day, YYYYMMDD (WITA)")
StopId = Field(min_length=1, max_length=64, pattern=GTFS_ID)


class ReservationBase(BaseModel):
    trip_id: str = Field(min_length=1, max_length=64, pattern=GTFS_ID)
    service_date: str = ServiceDate
    from_stop: str = StopId
    to_stop: str | None = Field(default=None, min_length=1, max_length=64, pattern=GTFS_ID)


class ReservationCreate(ReservationBase):
    # Omitted: the caller's own person id (the token's subject).
    person_id: str | None = Field(default=None, min_length=1, max_length=64)
    waitlist: bool = Field(
        default=False, description="when the trip is full, join its waitlist instead of a 409"
    )


class ReservationPublic(ReservationBase):
    model_config = ConfigDict(from_attributes=True)

    id: int
    person_id: str
    status: ReservationStatus
    walk_on: bool = False
    departs_at: datetime = Field(description="scheduled departure from from_stop (UTC)")
    created_at: datetime
    promoted_at: datetime | None = None
    boarded_at: datetime | None = None
    ended_at: datetime | None = None
    waitlist_position: int | None = Field(
        default=None, description="1 = next to be promoted; only while waitlisted"
    )


class TripSeatsPublic(BaseModel):
    """A trip instance's seats: counts only, never who holds them."""

    trip_id: str
    service_date: str
    vehicle_id: str | None
    capacity: int
    confirmed: int = Field(description="confirmed and boarded reservations")
    walk_ons: int = Field(description="riders admitted without a reservation")
    walk_ons_over: int = Field(description="admitted beyond free capacity (stale snapshot)")
    free: int
    waitlist: int
    departs_at: datetime
