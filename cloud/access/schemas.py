"""Schemas of door access control: doors, groups, grants, holidays, changes, the access log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ruang.contract import ID_PATTERN

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
GroupRule = Literal["agency", "zone", "floor", "role", "people"]
_HHMM = r"^(?:[01]\d|2[0-3]):[0-5]\d$"
_HHMM_END = r"^(?:(?:[01]\d|2[0-3]):[0-5]\d|24:00)$"


def minutes(text: str) -> int:
    hh, _, mm = text.partition(":")
    return int(hh) * 60 + int(mm)


class ScheduleWindow(BaseModel):
    """Open on `days` from `start` to `end` (site-local time); end < start runs overnight."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: tuple[Weekday, ...] = Field(min_length=1, max_length=7)
    start: str = Field(pattern=_HHMM, examples=["07:00"])
    end: str = Field(pattern=_HHMM_END, examples=["19:00"])

    @model_validator(mode="after")
    def _not_empty(self) -> ScheduleWindow:
        if minutes(self.start) == minutes(self.end) % (24 * 60) and self.end != "24:00":
            raise ValueError(f"window {self.start}-{self.end} is empty")
        return self


class DoorBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: str = Field(min_length=1, max_length=64)
    floor_id: str | None = Field(default=None, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    node_id: str | None = Field(
        default=None, pattern=ID_PATTERN,
        description="the edge node controlling it (else: the node whose config lists it)",
    )  # fmt: skip
    zone_from: str | None = Field(default=None, pattern=ID_PATTERN)
    zone_to: str | None = Field(default=None, pattern=ID_PATTERN)
    anti_passback: bool = False
    anti_passback_reset_s: int = Field(default=12 * 3600, ge=1, le=7 * 86_400)

    @model_validator(mode="after")
    def _zones(self) -> DoorBase:
        if self.anti_passback and self.zone_to is None:
            raise ValueError("anti-passback needs the zone the door leads into (zone_to)")
        return self


class DoorCreate(DoorBase):
    """Creates or replaces the door `id` (PUT /access/doors/{id})."""


class DoorPublic(DoorBase):
    id: str
    nodes: list[str] = Field(default_factory=list, description="nodes whose config lists it")


class GroupBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    rule: GroupRule
    value: str | None = Field(
        default=None, max_length=200, description="agency, zone id, floor id or role"
    )
    members: list[str] = Field(default_factory=list, max_length=10_000, description="people ids")

    @model_validator(mode="after")
    def _rule(self) -> GroupBase:
        if self.rule == "people":
            if self.value is not None:
                raise ValueError("a list of people has no value")
        elif not self.value:
            raise ValueError(f"a group by {self.rule} needs its value")
        elif self.members:
            raise ValueError("members are only for a group of rule 'people'")
        return self


class GroupCreate(GroupBase):
    """Creates or replaces the group `id` (PUT /access/groups/{id})."""


class GroupPublic(GroupBase):
    id: str


class GrantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group_id: str = Field(min_length=1, max_length=64)
    door_id: str = Field(min_length=1, max_length=64)
    schedule: list[ScheduleWindow] = Field(min_length=1, max_length=32)
    open_on_holidays: bool = False


class GrantPublic(GrantCreate):
    id: int


class HolidayCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: str = Field(min_length=1, max_length=64)
    day: date
    name: str = Field(min_length=1, max_length=200)


class HolidayPublic(HolidayCreate):
    pass


class ChangePublic(BaseModel):
    version: int
    at: datetime
    actor: str
    action: str
    target: str
    site_id: str | None
    data: dict[str, object] | None


class AccessLogEntryPublic(BaseModel):
    id: int
    ts: datetime
    node: str
    door: str
    person_id: str | None
    granted: bool
    reason: str
    audit_seq: int
    chain_ok: bool | None = Field(description="None: not verified yet (a predecessor is missing)")
    chain_problem: str | None


class AccessLogPage(BaseModel):
    items: list[AccessLogEntryPublic]
    next_before_id: int | None = Field(description="pass as before_id for the next (older) page")


class ChainPublic(BaseModel):
    node: str
    verified_seq: int
    broken_seq: int | None
    broken_at: datetime | None
    problem: str | None
    gap_since: datetime | None
