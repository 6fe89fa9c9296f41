"""Pydantic schemas of the HTTP API (Base = shared fields, Create = input, Public = output)."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    kind: BadgeKind
    uid: str = Field(description="NFC: hex, stored upper-case; BLE: `ble:<id>`")

    @model_validator(mode="after")
    def _uid_matches_kind(self) -> BadgeBase:
        if self.kind == "nfc":
            self.uid = self.uid.strip().upper()
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
