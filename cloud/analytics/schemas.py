"""HTTP API schemas of the utilisation reports (definitions in docs/analytics.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Level = Literal["desk", "zone", "floor", "building"]
# "range": one bucket spanning the whole request (totals per entity, e.g. the
# least-used zones over four weeks) without the client summing rows itself.
BucketUnit = Literal["hour", "day", "range"]
Order = Literal["entity", "utilisation"]


class UtilisationRow(BaseModel):
    entity: str = Field(description="desk, zone, floor or building id")
    bucket_start: datetime = Field(description="start of the bucket, in the site's time zone")
    bucket_end: datetime
    desks: int = Field(description="desks of the entity")
    occupied_hours: float = Field(description="checked-in desk-hours in the bucket")
    utilisation_pct: float = Field(
        description="occupied desk-time / (desks × bucket length), capped at 100"
    )
    peak_occupancy: int = Field(description="most desks checked in at the same time")
    avg_occupancy_when_occupied: float | None = Field(
        description="time-weighted mean of checked-in desks while at least one was; "
        "null when none was"
    )
    bookings: int = Field(
        description="bookings starting in the bucket (not cancelled, not walk-up)"
    )
    no_shows: int
    no_show_rate: float | None = Field(description="no_shows / bookings; null without bookings")


class UtilisationReport(BaseModel):
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    level: Level
    bucket: BucketUnit
    rows: list[UtilisationRow]

    model_config = {"populate_by_name": True}


class MatrixRow(BaseModel):
    entity: str
    desk_days: int = Field(description="desk-day cells counted")
    used_as_booked: int = Field(description="booked, and used during the booking")
    used_without_booking: int = Field(description="used, with no booking that day")
    booked_but_not_used: int = Field(description="booked, and not used during any booking")
    unused: int = Field(description="neither booked nor used")


class MatrixReport(BaseModel):
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    level: Level
    rows: list[MatrixRow]

    model_config = {"populate_by_name": True}


class ReleaseRow(BaseModel):
    entity: str = Field(description="desk, zone, floor or building id")
    bucket_start: datetime = Field(description="start of the bucket, in the site's time zone")
    bucket_end: datetime
    released: int = Field(description="bookings released in the bucket, every reason")
    no_show: int = Field(description="released because nobody checked in within the grace")
    away: int = Field(description="released after the person stayed away too long")
    released_at_desk: int = Field(description="released by the person at the desk unit")
    displaced_by_offline_checkin: int = Field(
        description="released because an offline check-in at the desk won"
    )
    other: int = Field(description="any other or missing reason")


class ReleaseReport(BaseModel):
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    level: Level
    bucket: BucketUnit
    rows: list[ReleaseRow]

    model_config = {"populate_by_name": True}


class HeatmapCell(BaseModel):
    weekday: int = Field(ge=0, le=6, description="0 = Monday … 6 = Sunday (site time)")
    hour: int = Field(ge=0, le=23, description="hour of day in site time")
    utilisation_pct: float | None = Field(description="null when the range has no such hour")


class Heatmap(BaseModel):
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    building: str | None
    desks: int
    cells: list[HeatmapCell] = Field(description="7 × 24 cells, Monday 00:00 first")

    model_config = {"populate_by_name": True}
