"""Schemas of live transport: vehicles on the live map, departures boards, the
dispatcher's assignments, cancellations and service alerts (docs/transport.md).

Nothing here is personal: vehicles, trips, stops and the dispatcher's text for riders.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cloud.api_types import AwareDateTime
from cloud.transport.gtfsrt import CAUSES, EFFECTS

GtfsId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\s/?#]+$")]
ServiceDate = Annotated[str, Field(pattern=r"^\d{8}$", description="GTFS service day YYYYMMDD")]
VehicleId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
Cause = Literal[CAUSES]  # type: ignore[valid-type]
Effect = Literal[EFFECTS]  # type: ignore[valid-type]


class LiveVehicle(BaseModel):
    """One vehicle as the dispatcher's map shows it."""

    vehicle: str
    kind: Literal["shuttle", "poolcar"]
    label: str
    state: Literal["in_service", "off_duty", "offline", "at_depot"]
    trip: str | None = None
    route: str | None = None
    service_date: str | None = None
    assigned: bool = Field(default=False, description="trip set by the dispatcher, not matched")
    lat: float | None = None
    lon: float | None = None
    ts: datetime | None = Field(default=None, description="time of the last accepted fix")
    speed_kmh: float | None = None
    heading_deg: float | None = None
    dist_m: float | None = Field(default=None, description="distance along the trip's shape")
    last_stop: str | None = None
    next_stop: str | None = None
    next_stop_eta: datetime | None = None
    delay_s: int | None = None
    load: int | None = Field(
        default=None,
        description="riders who boarded this trip so far (allowed door taps; riders do not "
        "tap out, so it counts boardings, not who is still aboard); None with no trip",
    )
    capacity: int
    stale: bool
    off_route: bool


class LiveVehicles(BaseModel):
    vehicles: list[LiveVehicle]
    generated_at: datetime
    processed: int | None = Field(default=None, description="positions processed since start")
    rejected: dict[str, int] | None = Field(
        default=None,
        description="positions not used, by reason (unknown_vehicle, fix_jump, fix_duplicate, ...)",
    )


DepartureStatus = Literal["scheduled", "on_time", "delayed", "cancelled"]


class Departure(BaseModel):
    """A trip leaving a stop: scheduled time, the live expectation and its flags."""

    trip: str
    route: str
    headsign: str
    service_date: str
    stop_id: str
    stop: str
    scheduled_at: datetime
    expected_at: datetime | None = Field(default=None, description="live ETA; None when cancelled")
    delay_s: int | None = None
    live: bool = Field(description="the expectation comes from a tracked vehicle")
    vehicle: str | None = None
    status: DepartureStatus
    full: bool = False
    delayed: bool
    cancelled: bool


class Departures(BaseModel):
    stop_id: str
    departures: list[Departure]
    generated_at: datetime


class AssignmentCreate(BaseModel):
    vehicle: VehicleId
    trip_id: GtfsId
    service_date: ServiceDate


class AssignmentPublic(AssignmentCreate):
    model_config = ConfigDict(from_attributes=True)
    assigned_at: datetime


class CancellationCreate(BaseModel):
    trip_id: GtfsId
    service_date: ServiceDate
    reason: Annotated[str, Field(max_length=200)] | None = None


class CancellationPublic(CancellationCreate):
    cancelled_at: datetime


class AlertBase(BaseModel):
    header: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=2000)] | None = None
    language: Literal["id", "en"] = "id"
    cause: Cause = "UNKNOWN_CAUSE"
    effect: Effect = "UNKNOWN_EFFECT"
    route_id: GtfsId | None = None
    stop_id: GtfsId | None = None
    trip_id: GtfsId | None = None
    starts_at: AwareDateTime | None = None
    ends_at: AwareDateTime | None = None


class AlertCreate(AlertBase):
    @field_validator("starts_at", "ends_at")
    @classmethod
    def _in_service_years(cls, value: datetime | None) -> datetime | None:
        # GTFS-RT periods are unsigned POSIX seconds; riders care about this century.
        if value is not None and not EARLIEST <= value <= LATEST:
            raise ValueError("between 2000-01-01 and 2100-01-01")
        return value


class AlertPublic(AlertBase):
    id: str
    created_at: datetime
    active: bool
