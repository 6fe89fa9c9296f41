"""Door rights from the cloud's signed snapshot: who opens which door when (pure logic).

The cloud resolves access groups, weekly schedules, the site's time zone and
its holidays into absolute windows per badge and door (`contract.SnapshotBadge.doors`)
for the snapshot's validity period, so the node decides a card read offline
with nothing but its clock: granted iff the badge is valid now, has a right for
the door, and `now` falls inside one of that right's windows. Windows end with
the snapshot: a node cut off past `valid_until` refuses (fail-secure).

Anti-passback (optional per door, docs/access-control.md): a granted read at a
door moves the badge from the door's `zone_from` into its `zone_to`. At an
anti-passback door a badge last seen entering a zone other than `zone_from`
is refused ("anti-passback") until `anti_passback_reset_s` have passed since
then; a badge never seen is let through. The memory is the node's own, in
RAM: a restart forgives everyone.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field

from ruang import contract

from .access_reasons import (
    ANTI_PASSBACK,
    EXPIRED,
    NOT_YET_VALID,
    OUTSIDE_SCHEDULE,
    UNKNOWN_BADGE,
    WRONG_DOOR,
)


@dataclass(frozen=True, slots=True)
class _BadgeRights:
    valid_from: float | None
    valid_until: float | None
    # Per door: window starts (sorted) and the matching ends, for bisect.
    starts: dict[str, list[float]]
    ends: dict[str, list[float]]


@dataclass(frozen=True)
class DoorRights:
    """The door part of one snapshot, indexed for look-ups at card-read time."""

    version: int
    doors: dict[str, contract.SnapshotDoor] = field(default_factory=dict)
    badges: dict[str, _BadgeRights] = field(default_factory=dict)

    @classmethod
    def of(cls, body: contract.SnapshotBody) -> DoorRights:
        badges: dict[str, _BadgeRights] = {}
        for badge in body.badges:
            starts: dict[str, list[float]] = {}
            ends: dict[str, list[float]] = {}
            for right in badge.doors:
                windows = sorted(w for w in right.windows if w[1] > w[0])
                starts[right.door] = [w[0] for w in windows]
                ends[right.door] = [w[1] for w in windows]
            badges[badge.badge] = _BadgeRights(badge.valid_from, badge.valid_until, starts, ends)
        return cls(version=body.version, doors={d.door: d for d in body.doors}, badges=badges)

    def manages(self, door: str) -> bool:
        return door in self.doors

    def check(self, door: str, badge: str, now: float) -> str | None:
        """None if `badge` may open `door` at `now` by its rights, else the refusal reason."""
        rights = self.badges.get(badge)
        if rights is None:
            return UNKNOWN_BADGE
        if rights.valid_from is not None and now < rights.valid_from:
            return NOT_YET_VALID
        if rights.valid_until is not None and now >= rights.valid_until:
            return EXPIRED
        starts = rights.starts.get(door)
        if starts is None:
            return WRONG_DOOR
        i = bisect.bisect_right(starts, now)
        if i == 0 or now >= rights.ends[door][i - 1]:
            # Windows may overlap (two groups): any earlier window still open counts.
            if not any(
                s <= now < e for s, e in zip(starts[:i], rights.ends[door][:i], strict=True)
            ):
                return OUTSIDE_SCHEDULE
        return None


class AntiPassback:
    """Which zone each badge last entered through a granted door, and when."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._where: dict[str, tuple[str, float]] = {}

    def refuses(self, door: contract.SnapshotDoor, badge: str, now: float) -> bool:
        if not door.anti_passback:
            return False
        with self._lock:
            seen = self._where.get(badge)
        if seen is None:
            return False
        zone, at = seen
        if now - at >= door.anti_passback_reset_s:
            return False
        return zone != door.zone_from

    def passed(self, door: contract.SnapshotDoor, badge: str, now: float) -> None:
        """A granted read: the badge is now in the door's `zone_to` (if the door has one)."""
        if door.zone_to is None:
            return
        with self._lock:
            self._where[badge] = (door.zone_to, now)

    def zone_of(self, badge: str) -> str | None:
        with self._lock:
            seen = self._where.get(badge)
        return seen[0] if seen else None


__all__ = ["ANTI_PASSBACK", "AntiPassback", "DoorRights"]
