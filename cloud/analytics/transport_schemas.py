"""HTTP API schemas of the transport reports (definitions in docs/analytics.md, "Transport")."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

RidershipBy = Literal["route", "stop", "hour"]


class RidershipRow(BaseModel):
    key: str = Field(description="route id, stop id, or the hour of day (00-23, WITA)")
    name: str = Field(description="route short name, stop name, or the hour as HH:00")
    boardings: int = Field(description="boardings let in (allowed), each event counted once")


class RidershipReport(BaseModel):
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    by: RidershipBy
    total: int
    rows: list[RidershipRow]

    model_config = {"populate_by_name": True}


class RouteRow(BaseModel):
    route: str = Field(description="route id")
    name: str = Field(description="route short name")
    trips: int = Field(description="trips with a vehicle and at least one detected departure")
    boardings: int
    seats: int = Field(description="seats offered: the capacity of the vehicle of each trip run")
    load_factor: float | None = Field(description="boardings / seats; null without seats")
    departures: int = Field(description="stop departures detected from positions")
    on_time: int = Field(description="departures within -1/+5 min of the schedule")
    on_time_rate: float | None = Field(description="on_time / departures; null without any")
    reservations: int = Field(description="seat reservations decided at departure (used or not)")
    no_shows: int
    no_show_rate: float | None = Field(description="no_shows / reservations; null without any")


class RouteReport(BaseModel):
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    rows: list[RouteRow]
    totals: RouteRow = Field(description="all routes together (route 'all')")

    model_config = {"populate_by_name": True}


class PoolCarRow(BaseModel):
    vehicle: str
    plate: str | None
    trips: int = Field(description="car trips (pick-up to return) overlapping the range")
    hours_used: float = Field(description="hours out within the working hours of the range")
    hours_available: float = Field(description="working hours of the range (Mon-Fri 07-17 WITA)")
    utilisation: float | None = Field(description="hours_used / hours_available")
    distance_km: float


class PoolCarReport(BaseModel):
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    rows: list[PoolCarRow]
    totals: PoolCarRow = Field(description="every pool car together (vehicle 'all')")

    model_config = {"populate_by_name": True}
