"""HTTP API schemas of desks, floors, the floor map and the kiosk (Base, Create, Public)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cloud.transport.schemas_network import KioskDeparture
from ruang.contract import LedPatternName


class DeskBase(BaseModel):
    node: str = Field(description="edge node serving the desk")
    state: Literal["free", "occupied"]
    occupant_badge: str | None = None
    checked_in_at: datetime | None = None
    present: bool | None = Field(default=None, description="presence sensor; null = never reported")
    presence_changed_at: datetime | None = None
    last_change_at: datetime | None = None
    unit: str | None = None
    unit_online: bool | None = None
    unit_firmware: str | None = None


class DeskPublic(DeskBase):
    model_config = ConfigDict(from_attributes=True)

    id: str


class LedCommandBase(BaseModel):
    r: int = Field(ge=0, le=255)
    g: int = Field(ge=0, le=255)
    b: int = Field(ge=0, le=255)
    pattern: LedPatternName = "solid"
    duration_s: int = Field(default=0, ge=0, le=65535, description="0 = until changed")


class LedCommandCreate(LedCommandBase):
    pass


class LedCommandPublic(LedCommandBase):
    id: str = Field(description="message id of the published command")
    desk: str
    node: str
    topic: str


MapState = Literal["free", "booked", "checked_in", "occupied", "away", "unavailable"]
DeskMode = Literal["reservable", "drop_in", "assigned", "unavailable"]


class ZoneNode(BaseModel):
    id: str
    name: str
    reserved_for_agency: str | None = None


class FloorNode(BaseModel):
    id: str
    name: str
    level: int
    width: float | None = Field(default=None, description="plan width (layout units, metres)")
    height: float | None = None
    outline: list[list[float]] | None = Field(default=None, description="polygon [[x, y], ...]")
    zones: list[ZoneNode] = Field(default_factory=list)


class BuildingNode(BaseModel):
    id: str
    name: str
    floors: list[FloorNode]


class SiteNode(BaseModel):
    id: str
    name: str
    timezone: str
    buildings: list[BuildingNode]


class SiteTree(BaseModel):
    sites: list[SiteNode]


class StateCounts(BaseModel):
    """Desks per map state."""

    free: int = 0
    booked: int = 0
    checked_in: int = 0
    occupied: int = 0
    away: int = 0
    unavailable: int = 0


class MapCounts(BaseModel):
    floor: StateCounts
    zones: dict[str, StateCounts] = Field(description="by zone id")


class MapDesk(BaseModel):
    id: str
    label: str | None
    x: float | None
    y: float | None
    w: float | None
    h: float | None
    zone: str | None = Field(description="zone id")
    mode: DeskMode
    features: list[str]
    state: MapState
    occupant: str | None = Field(
        default=None,
        description="name of whoever holds the desk now; only for admins and the site's "
        "facility managers, else null",
    )


class MapRoom(BaseModel):
    id: str
    name: str
    capacity: int
    zone: str
    state: Literal["occupied", "free"] | None = Field(description="null = no sensor reading")
    booked: bool = Field(default=False, description="an active room booking holds it now")
    in_use_not_booked: bool = Field(
        default=False, description="the radar senses it occupied and nobody booked it"
    )
    x: float | None
    y: float | None
    w: float | None
    h: float | None


class MapFloor(BaseModel):
    id: str
    name: str
    level: int
    building_id: str
    site_id: str
    width: float | None = None
    height: float | None = None
    outline: list[list[float]] | None = None


class FloorMap(BaseModel):
    floor: MapFloor
    zones: list[ZoneNode]
    desks: list[MapDesk]
    rooms: list[MapRoom]
    counts: MapCounts = Field(description="of the desks listed (after zone/agency filters)")
    generated_at: datetime


class MapUpdate(BaseModel):
    """`data` of an SSE `desks` event: the changed desks and rooms, and the floor's counts."""

    desks: list[MapDesk]
    # Rooms whose sensor reading changed (counts are of desks only, so rooms leave them as is).
    rooms: list[MapRoom] = Field(default_factory=list)
    counts: MapCounts


TimelineKind = Literal[
    "booked",
    "checked_in",
    "checked_out",
    "released",
    "cancelled",
    "present",
    "absent",
    "unit_online",
    "unit_offline",
]


class TimelineEntry(BaseModel):
    at: datetime
    kind: TimelineKind
    booking_id: int | None = None
    person: str | None = Field(default=None, description="name; managers of the site only")
    until: datetime | None = Field(default=None, description="`booked`: end of the booking")
    status: str | None = Field(default=None, description="`booked`: the booking's status now")
    reason: str | None = Field(default=None, description="`released`: why")


class DeskTimeline(BaseModel):
    desk_id: str
    day: date = Field(description="today in the site's time zone")
    timezone: str
    entries: list[TimelineEntry]


class KioskFloor(BaseModel):
    id: str
    name: str
    level: int
    total: int
    free: int
    booked: int
    checked_in: int = Field(description="checked in, present or away")
    occupied: int = Field(description="someone there without a booking")
    unavailable: int


class KioskBuilding(BaseModel):
    id: str
    name: str
    floors: list[KioskFloor]


class KioskAvailability(BaseModel):
    generated_at: datetime
    site: str | None
    timezone: str | None = Field(default=None, description="IANA zone of the site, for the clock")
    buildings: list[KioskBuilding]
    shuttles: list[KioskDeparture] = Field(
        default_factory=list,
        description="next shuttle departures from the stops near the site (timetable, live "
        "expectation, full/delayed/cancelled); no personal data",
    )
    shuttle_alerts: list[str] = Field(
        default_factory=list, description="headlines of the dispatcher's active service alerts"
    )
