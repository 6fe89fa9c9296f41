"""Local access decisions for doors: badge allow-list plus per-door weekly schedule (pure logic).

The node decides every card read on its own so doors keep working while the
uplink is down. Inputs:

- an `AllowList` snapshot (``version`` + entries keyed by badge ref) that the
  cloud will push; it is replaced as a whole, atomically, never edited in place;
- per door a `WeeklySchedule` of weekday/time windows in the building's time
  zone (Asia/Makassar, UTC+8, for IKN).

`AccessPolicy.decide(door, badge, now)` returns `Decision(granted, reason)`;
the reason strings are stable and go into the audit log and the contract.

A door the cloud manages (listed in the snapshot's `doors`) is decided from the
snapshot's door rights instead (edge/devices/door_rights.py); the allow-list and
the local schedule stay the fallback for doors the cloud does not manage.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ruang.contract import ID_PATTERN
from ruang.site_defaults import DEFAULT_TIMEZONE

# Stable reasons (the cloud may count on them), re-exported from their one home.
from .access_reasons import (
    ALLOWED,
    ANTI_PASSBACK,
    EXPIRED,
    NO_SCHEDULE,
    NOT_YET_VALID,
    OUTSIDE_SCHEDULE,
    REVOKED,
    UNKNOWN_BADGE,
    UNREADABLE,
    WRONG_DOOR,
)
from .door_rights import AntiPassback, DoorRights

DEFAULT_TZ = DEFAULT_TIMEZONE

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_MIN = 24 * 60


@dataclass(frozen=True, slots=True)
class Decision:
    granted: bool
    reason: str


def _minutes(text: str) -> int:
    hh, _, mm = text.partition(":")
    return int(hh) * 60 + int(mm)


class TimeWindow(BaseModel):
    """Open on `days` from `start` (inclusive) to `end` (exclusive), local building time.

    ``end`` may be ``24:00``. A window whose end is earlier than its start runs
    overnight: ``{days: [fri], start: "22:00", end: "06:00"}`` is Friday 22:00 to
    Saturday 06:00.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: tuple[Weekday, ...] = Field(min_length=1)
    start: str = Field(pattern=r"^(?:[01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(pattern=r"^(?:(?:[01]\d|2[0-3]):[0-5]\d|24:00)$")

    @model_validator(mode="after")
    def _not_empty(self) -> TimeWindow:
        if _minutes(self.start) == _minutes(self.end):
            raise ValueError(f"window {self.start}-{self.end} is empty")
        return self

    def contains(self, local: datetime) -> bool:
        day = WEEKDAYS[local.weekday()]
        prev_day = WEEKDAYS[(local.weekday() - 1) % 7]
        minute = local.hour * 60 + local.minute
        start, end = _minutes(self.start), _minutes(self.end)
        if start < end:
            return day in self.days and start <= minute < end
        # Overnight: the evening part belongs to the listed day, the morning part
        # to the day after it.
        return (day in self.days and minute >= start) or (prev_day in self.days and minute < end)


class WeeklySchedule(BaseModel):
    """The windows a door is usable in; an empty list means nobody badges in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    windows: tuple[TimeWindow, ...] = ()

    def is_open(self, local: datetime) -> bool:
        return any(w.contains(local) for w in self.windows)

    @classmethod
    def always(cls) -> WeeklySchedule:
        return cls(windows=(TimeWindow(days=WEEKDAYS, start="00:00", end="24:00"),))


class BadgeEntry(BaseModel):
    """One enrolled badge. Naive datetimes are read as building-local time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    badge: str = Field(pattern=r"^(?:(?:[0-9A-F]{2}){4,10}|ble:[A-Za-z0-9_.-]{1,60})$")
    person: str = Field(min_length=1, max_length=128)
    agency: str | None = Field(default=None, max_length=128)
    valid_from: datetime | None = None
    valid_until: datetime | None = Field(default=None, description="exclusive")
    revoked: bool = False
    doors: tuple[str, ...] | None = Field(
        default=None, description="door ids this badge opens; absent = every door"
    )

    @field_validator("badge", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        # Card UIDs are compared upper-case; people type them either way.
        return value.upper() if isinstance(value, str) and not value.startswith("ble:") else value

    @field_validator("doors")
    @classmethod
    def _door_ids(cls, doors: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for door in doors or ():
            if not re.match(ID_PATTERN, door):
                raise ValueError(f"invalid door id {door!r}")
        return doors


class AllowList(BaseModel):
    """A versioned, immutable snapshot of the enrolled badges."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=0)
    entries: tuple[BadgeEntry, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> AllowList:
        seen: set[str] = set()
        for entry in self.entries:
            if entry.badge in seen:
                raise ValueError(f"badge {entry.badge} is listed twice")
            seen.add(entry.badge)
        return self

    def index(self) -> dict[str, BadgeEntry]:
        return {e.badge: e for e in self.entries}


def load_allow_list(path: Path | str) -> AllowList:
    """Reads a snapshot from a YAML or JSON file (``version:`` and ``entries:``)."""
    path = Path(path)
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return AllowList.model_validate(data or {"version": 0})


class StaleAllowList(ValueError):
    """A snapshot older than the one in use was offered (out-of-order push)."""


class AccessPolicy:
    """Decides card reads from the current allow-list snapshot and the door schedules.

    Thread-safe: the snapshot is swapped under a lock as one (version, index)
    pair, so a decision never sees half of an update.
    """

    def __init__(
        self,
        allow_list: AllowList,
        schedules: Mapping[str, WeeklySchedule],
        *,
        tz: str | ZoneInfo = DEFAULT_TZ,
    ) -> None:
        self.tz = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        self._schedules = dict(schedules)
        self._lock = threading.Lock()
        self._snapshot = (allow_list.version, allow_list.index())
        self._rights: DoorRights | None = None
        self._passback = AntiPassback()

    @property
    def version(self) -> int:
        return self._snapshot[0]

    def replace_allow_list(self, allow_list: AllowList) -> bool:
        """Installs a newer snapshot. Same version: ignored (False). Older: `StaleAllowList`."""
        index = allow_list.index()
        with self._lock:
            current = self._snapshot[0]
            if allow_list.version < current:
                raise StaleAllowList(
                    f"allow-list version {allow_list.version} is older than {current}"
                )
            if allow_list.version == current:
                return False
            self._snapshot = (allow_list.version, index)
            return True

    def replace_rights(self, rights: DoorRights) -> bool:
        """Installs the door rights of a newer snapshot (an older or equal one is ignored)."""
        with self._lock:
            if self._rights is not None and rights.version <= self._rights.version:
                return False
            self._rights = rights
            return True

    @property
    def rights_version(self) -> int | None:
        rights = self._rights
        return None if rights is None else rights.version

    def set_schedule(self, door: str, schedule: WeeklySchedule) -> None:
        with self._lock:
            self._schedules[door] = schedule

    def doors(self) -> Iterable[str]:
        return tuple(self._schedules)

    def _aware(self, value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=self.tz)

    def decide(self, door: str, badge: str | None, now: datetime) -> Decision:
        """`now` must be timezone-aware (any zone); it is converted to building time."""
        if now.tzinfo is None:
            raise ValueError("decide() needs an aware datetime")
        if badge is None:
            return Decision(False, UNREADABLE)
        with self._lock:
            _, index = self._snapshot
            schedule = self._schedules.get(door)
            rights = self._rights
        if rights is not None and rights.manages(door):
            return self._decide_by_rights(rights, door, badge, now.timestamp())
        entry = index.get(badge)
        if entry is None:
            return Decision(False, UNKNOWN_BADGE)
        if entry.revoked:
            return Decision(False, REVOKED)
        if entry.valid_from is not None and now < self._aware(entry.valid_from):
            return Decision(False, NOT_YET_VALID)
        if entry.valid_until is not None and now >= self._aware(entry.valid_until):
            return Decision(False, EXPIRED)
        if entry.doors is not None and door not in entry.doors:
            return Decision(False, WRONG_DOOR)
        if schedule is None:
            return Decision(False, NO_SCHEDULE)
        if not schedule.is_open(now.astimezone(self.tz)):
            return Decision(False, OUTSIDE_SCHEDULE)
        return Decision(True, ALLOWED)

    def _decide_by_rights(self, rights: DoorRights, door: str, badge: str, now: float) -> Decision:
        refusal = rights.check(door, badge, now)
        if refusal is not None:
            return Decision(False, refusal)
        config = rights.doors[door]
        if self._passback.refuses(config, badge, now):
            return Decision(False, ANTI_PASSBACK)
        self._passback.passed(config, badge, now)
        return Decision(True, ALLOWED)


__all__ = [
    "ALLOWED",
    "ANTI_PASSBACK",
    "EXPIRED",
    "NOT_YET_VALID",
    "NO_SCHEDULE",
    "OUTSIDE_SCHEDULE",
    "REVOKED",
    "UNKNOWN_BADGE",
    "UNREADABLE",
    "WRONG_DOOR",
    "AccessPolicy",
    "AllowList",
    "BadgeEntry",
    "Decision",
    "DoorRights",
    "StaleAllowList",
    "TimeWindow",
    "WeeklySchedule",
    "load_allow_list",
]
