"""HTTP API schemas of the transport schedule (stops, routes, trips, shapes), vehicles, the
stops near a site and GTFS imports."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ruang.contract import ID_PATTERN

VehicleKind = Literal["shuttle", "poolcar"]
VehicleState = Literal["in_service", "off_duty", "offline", "at_depot"]
# A number plate as written on it: letters, digits and spaces (e.g. "KT 1234 IKN").
PLATE_PATTERN = r"^[A-Z0-9][A-Z0-9 -]{0,14}[A-Z0-9]$"
_STATE_HELP = (
    "in_service: running trips; off_duty: parked, not in use; offline: its node stopped "
    "reporting; at_depot: at its depot or home site"
)


class StopPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    stop_id: str
    code: str | None = None
    name: str
    lat: float
    lon: float
    location_type: int = 0
    parent_station: str | None = None
    wheelchair_boarding: int | None = None


class RoutePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    route_id: str
    agency_id: str
    short_name: str | None = None
    long_name: str | None = None
    route_type: int
    color: str | None = None
    text_color: str | None = None


class TripPublic(BaseModel):
    """A trip on one service day, with its first departure and last arrival."""

    trip_id: str
    route_id: str
    service_date: str = Field(description="YYYYMMDD, the GTFS service day (WITA)")
    headsign: str
    direction_id: int
    shape_id: str | None = None
    start: datetime
    end: datetime


class StopTimePublic(BaseModel):
    stop_id: str
    stop_sequence: int
    name: str
    lat: float
    lon: float
    dist_m: float = Field(description="distance along the trip's shape")
    arrival: datetime
    departure: datetime


class TripPlanPublic(TripPublic):
    length_m: float
    stops: list[StopTimePublic]


class ShapePublic(BaseModel):
    shape_id: str
    points: list[tuple[float, float]] = Field(description="[lat, lon] in order")


class DeparturePublic(BaseModel):
    trip_id: str
    route_id: str
    service_date: str
    headsign: str
    stop_id: str
    departure: datetime = Field(description="scheduled")


class GtfsImportPublic(BaseModel):
    """What an import stored, rows per GTFS file."""

    rows: dict[str, int]


class VehicleBase(BaseModel):
    label: str = Field(min_length=1, max_length=200, description="e.g. 'Shuttle 3'")
    capacity: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="riders it may carry (seated + standing); default: its seats",
    )
    seats: int = Field(ge=1, le=200)
    wheelchair_accessible: bool = False
    plate: str | None = Field(default=None, pattern=PLATE_PATTERN, description="number plate")
    site_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="home site (required for a pool car; a shuttle's depot)",
    )
    node_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="the edge node riding in it"
    )
    state: VehicleState = Field(default="at_depot", description=_STATE_HELP)


class VehicleCreate(VehicleBase):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN, description="vehicle id, as its node names it")
    kind: VehicleKind

    @model_validator(mode="after")
    def _rules(self) -> VehicleCreate:
        if self.capacity is not None and self.capacity < self.seats:
            raise ValueError("capacity must be at least the seats")
        if self.kind == "poolcar" and (self.plate is None or self.site_id is None):
            raise ValueError("a pool car needs a plate and a home site")
        return self


class VehiclePatch(BaseModel):
    """Only the fields sent change; `node_id: null` unbinds the node."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(default=None, min_length=1, max_length=200)
    capacity: int | None = Field(default=None, ge=1, le=1000)
    seats: int | None = Field(default=None, ge=1, le=200)
    wheelchair_accessible: bool | None = None
    plate: str | None = Field(default=None, pattern=PLATE_PATTERN)
    site_id: str | None = Field(default=None, pattern=ID_PATTERN)
    node_id: str | None = Field(default=None, pattern=ID_PATTERN)
    state: VehicleState | None = Field(default=None, description=_STATE_HELP)


class VehiclePublic(VehicleBase):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: VehicleKind
    capacity: int = Field(ge=1, le=1000)
    state_changed_at: datetime
    created_at: datetime


class SiteStopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stop_id: str = Field(min_length=1, max_length=64)
    walk_m: int | None = Field(default=None, ge=0, le=10_000, description="walk from the lobby")


class SiteStopPublic(StopPublic):
    walk_m: int | None = None
