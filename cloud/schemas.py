"""Pydantic schemas of the HTTP API (Base = shared fields, Create = input, Public = output)."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from ruang.contract import LedPatternName

# Integers that reach SQL: SQLite and PostgreSQL both store at most a signed 64-bit
# integer, so a larger id must be refused by validation, not overflow in the driver.
SQL_INT_MAX = 2**63 - 1


def _rfc3339(value: object) -> object:
    """Text must be an RFC 3339 date-time with an offset, as the schema's `date-time` says.

    Without this, pydantic also takes numbers (`from=57` is 57 s after the epoch)
    and offset-less times, which the document does not allow.
    """
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE_TIME.match(value):
        raise ValueError("an RFC 3339 date-time with an offset, e.g. 2025-01-31T09:00:00+08:00")
    return value


_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
# A date-time from a query string or body: RFC 3339 text with an offset, nothing else.
AwareDateTime = Annotated[datetime, BeforeValidator(_rfc3339)]


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


class NodeBase(BaseModel):
    online: bool
    bdseq: int | None = None
    sw_version: str | None = None
    last_seen: datetime | None = None
    last_birth_at: datetime | None = None
    last_death_at: datetime | None = None


class NodePublic(NodeBase):
    id: str
    desks: int = Field(description="number of desks served by the node")


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


class IngestStatsPublic(BaseModel):
    connected: bool
    connects: int
    received: int
    applied: int
    duplicates: int
    stale_deaths: int
    rejected: dict[str, int] = Field(description="dropped messages by reason category")
    write_errors: int
    dead_lettered: int = Field(
        description="messages parked in the dead-letter table (poison or clock skew)")
    telemetry_dropped: int
    nodes_timed_out: int
    last_error: str | None
    last_error_at: datetime | None
    telemetry_sink: str
    telemetry_written: int
    telemetry_failed: int
    telemetry_pending: int


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    database: bool
    mqtt: bool


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


# --- People and badges -------------------------------------------------------

PersonKind = Literal["asn", "guest"]
Role = Literal["asn", "guest", "facility_manager", "technician", "admin"]
BadgeKind = Literal["nfc", "ble"]
BadgeStatus = Literal["active", "revoked", "lost", "replaced"]
_NFC_UID = re.compile(r"^[0-9A-F]{8,20}$")
_BLE_UID = re.compile(r"^ble:[A-Za-z0-9:_.-]{1,60}$")


class PersonBase(BaseModel):
    kind: PersonKind
    name: str = Field(min_length=1, max_length=200)
    agency: str | None = Field(default=None, max_length=200, description="instansi")
    role: Role
    email: str | None = Field(default=None, max_length=254)
    host_person_id: str | None = Field(default=None, description="guests: the ASN hosting them")
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    pass_number: str | None = Field(default=None, max_length=64)
    site_id: str | None = Field(default=None, max_length=64,
                                description="home site: its facility managers manage this "
                                "person and their badges; none = admins only")


class PersonCreate(PersonBase):
    id: str = Field(min_length=1, max_length=64)
    nip: str | None = Field(default=None, pattern=r"^\d{18}$",
                            description="NIP, 18 digits; personal data")

    @model_validator(mode="after")
    def _guest_rules(self) -> PersonCreate:
        if self.kind == "guest" and self.host_person_id is None:
            raise ValueError("a guest needs host_person_id")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


class PersonPublic(PersonBase):
    """A person as lists show them: never the NIP."""

    model_config = ConfigDict(from_attributes=True)

    id: str


class PersonPrivate(PersonPublic):
    """Includes personal data (NIP): only for the person themself and admins."""

    nip: str | None = None


class RowError(BaseModel):
    line: int = Field(description="line number in the uploaded file (the header is line 1)")
    reason: str


class PeopleImportPublic(BaseModel):
    created: int
    updated: int
    badges_issued: int = 0


class BadgeBase(BaseModel):
    # The uid's form depends on the kind: say so in the schema too, so that a client
    # (or a fuzzer) can tell a valid badge from an invalid one without asking.
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"properties": {"kind": {"const": "nfc"},
                        "uid": {"pattern": r"^[ \t]*[0-9A-Fa-f]{8,20}[ \t]*$"}}},
        {"properties": {"kind": {"const": "ble"}, "uid": {"pattern": _BLE_UID.pattern}}},
    ]})

    kind: BadgeKind
    uid: str = Field(description="NFC: hex, stored upper-case; BLE: `ble:<id>`")

    @model_validator(mode="after")
    def _uid_matches_kind(self) -> BadgeBase:
        if self.kind == "nfc":
            self.uid = self.uid.strip(" \t").upper()
            if not _NFC_UID.match(self.uid):
                raise ValueError("an NFC uid is 8 to 20 hex digits")
        elif not _BLE_UID.match(self.uid):
            raise ValueError("a BLE uid looks like `ble:<id>`")
        return self


class BadgeCreate(BadgeBase):
    person_id: str


class BadgeReplace(BadgeBase):
    """The new badge; the old one is marked `replaced`."""


class BadgePublic(BadgeBase):
    model_config = ConfigDict(from_attributes=True)

    id: int
    person_id: str
    status: BadgeStatus
    issued_at: datetime
    revoked_at: datetime | None = None


class BadgeReplacementPublic(BaseModel):
    old: BadgePublic
    new: BadgePublic


class AllowlistEntry(BaseModel):
    uid: str
    kind: BadgeKind
    person_id: str


class AllowlistPublic(BaseModel):
    node: str
    generated_at: datetime
    badges: list[AllowlistEntry]


# --- Bookings ----------------------------------------------------------------

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


# --- Fleet (edge node health, for technicians) -------------------------------

FleetState = Literal["ok", "warning", "alarm", "offline"]


class FleetReason(BaseModel):
    code: str = Field(description="offline, alarm, clock_offset, outbox_depth, devices_offline, "
                                  "desk_units_offline, disk_free, config_pending")
    level: Literal["warning", "alarm", "offline"]
    detail: str


class FleetCounts(BaseModel):
    total: int
    online: int
    offline: int = Field(description="reported offline; total - online - offline are unknown")


class FleetNodeBase(BaseModel):
    online: bool
    last_seen: datetime | None = None
    sw_version: str | None = None
    config_version: int | None = Field(default=None, description="remote config the node runs")
    desired_config_version: int | None = Field(
        default=None, description="remote config the cloud wants it to run"
    )
    outbox_depth: int | None = Field(default=None, description="messages awaiting upload")
    clock_offset_s: float | None = Field(
        default=None,
        description="edge clock minus cloud receive time of the latest health message "
        "(positive = edge ahead); includes transit latency, so an upper bound",
    )
    last_health_at: datetime | None = None
    alarms: list[str] = Field(default_factory=list)
    device_counts: FleetCounts = Field(description="devices reporting device_health")
    desk_unit_counts: FleetCounts = Field(description="desk units (unit_status events)")
    site: str | None = Field(default=None, description="site of the floors it serves")
    floors: list[str] = Field(default_factory=list)
    state: FleetState = Field(description="the worst of the reasons; ok when there are none")
    reasons: list[FleetReason] = Field(default_factory=list)


class FleetNodePublic(FleetNodeBase):
    id: str


class NodeHealthPublic(BaseModel):
    """The latest NodeHealth of a node; null fields were not reported."""

    received_at: datetime
    cpu_pct: float | None = None
    rss_bytes: int | None = None
    mem_available_bytes: int | None = None
    disk_free_bytes: int | None = None
    temperature_c: float | None = None
    dropped_telemetry: int | None = None
    rejected_frames: int | None = None
    mqtt_reconnects: int | None = None
    units_online: int | None = None
    uptime_s: float | None = None


class DeviceStatusPublic(BaseModel):
    device: str
    kind: str
    online: bool
    rejected_frames: int
    last_reading_at: datetime | None = None
    battery_pct: int | None = None
    detail: str | None = None
    updated_at: datetime = Field(description="when the cloud received this report")


class DeskUnitStatusPublic(BaseModel):
    desk: str
    unit: str | None = Field(default=None, description="unit serial from its hello")
    online: bool | None = Field(default=None, description="None: never reported")
    firmware: str | None = None
    last_change_at: datetime | None = None


class FleetNodeDetailPublic(FleetNodePublic):
    health: NodeHealthPublic | None = None
    desk_units: list[DeskUnitStatusPublic] = Field(
        default_factory=list, description="desk units of the node's desks, by desk id"
    )
    devices: list[DeviceStatusPublic] = Field(
        default_factory=list, description="attached devices (device_health), by id"
    )
    devices_declared: list[dict[str, str | None]] = Field(
        default_factory=list, description="what the latest birth declared (desk units)"
    )


class HealthSamplePublic(BaseModel):
    ts: datetime = Field(description="cloud receive time")
    cpu_pct: float | None = None
    rss_bytes: int | None = None
    mem_available_bytes: int | None = None
    disk_free_bytes: int | None = None
    temperature_c: float | None = None
    outbox_depth: int | None = None
    clock_offset_s: float | None = None


class HealthHistoryPublic(BaseModel):
    node: str
    hours: float
    samples: list[HealthSamplePublic]


# --- Floor map, kiosk, QR check-in (cloud/buildings/floormap.py, bookings/qrcheckin.py) ---

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
    "booked", "checked_in", "checked_out", "released", "cancelled", "present", "absent",
    "unit_online", "unit_offline",
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
    shuttles: list[dict[str, str]] = Field(default_factory=list,
                                           description="placeholder, always empty for now")


class QrCheckin(BaseModel):
    key: str = Field(min_length=1, max_length=64, description="the `k` of the desk's QR URL")
