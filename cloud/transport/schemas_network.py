"""Schemas of the network read the maps draw (cloud/transport/network.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class NetworkRoute(BaseModel):
    id: str
    short_name: str
    long_name: str
    color: str | None = Field(description="GTFS route_color, six hex digits without '#'")
    text_color: str | None


class NetworkStop(BaseModel):
    id: str
    name: str
    lat: float
    lon: float


class NetworkShape(BaseModel):
    id: str = Field(description="GTFS shape_id, or stops:<trip_id> for a trip without a shape")
    route_id: str
    points: list[tuple[float, float]] = Field(description="[lat, lon] in order along the shape")


class Network(BaseModel):
    routes: list[NetworkRoute]
    stops: list[NetworkStop]
    shapes: list[NetworkShape]


class FoundTrip(BaseModel):
    """A trip the rider may take from their stop, with its seat counts (no names)."""

    trip_id: str
    service_date: str = Field(description="YYYYMMDD (WITA)")
    route_id: str
    headsign: str
    from_stop: str
    from_stop_name: str
    departs_at: datetime = Field(description="scheduled departure from from_stop")
    to_stop: str | None
    to_stop_name: str | None
    arrives_at: datetime | None = Field(description="scheduled arrival at to_stop")
    capacity: int
    free: int
    waitlist: int
    stops: list[str] = Field(description="the trip's stops in order")


class KioskDeparture(BaseModel):
    """One line of the lobby's departures board: timetable, live expectation, seat state."""

    trip: str
    service_date: str
    route: str = Field(description="route short name")
    route_color: str | None
    headsign: str
    stop_id: str
    stop: str = Field(description="stop name")
    scheduled_at: datetime
    expected_at: datetime | None = Field(
        description="live prediction, else the timetable; null when cancelled"
    )
    delay_s: int | None = Field(description="expected - scheduled; null without a prediction")
    status: Literal["scheduled", "on_time", "delayed", "cancelled"]
    live: bool = Field(description="the expectation comes from the vehicle's position")
    full: bool = Field(description="no free seat left (reservations and walk-ons)")


class FreeCar(BaseModel):
    """A pool car nobody has booked for the asked time."""

    id: str
    label: str
    seats: int
    plate: str | None
    site_id: str | None
