"""Local desk decisions: what a badge tap means and which LED it lights.

Pure logic, no I/O, so it decides in microseconds and keeps working with the
uplink down. With a snapshot from the cloud (see `edge.snapshot`) a tap:

- by the badge already checked in here -> check-out (LED off);
- by a badge not on the allow-list (unknown, revoked, expired guest pass) -> refused;
- on a desk someone else is checked in at -> refused;
- on an unavailable desk, or an assigned desk by someone else -> refused;
- on a desk whose booking (now, or starting within the early window) belongs to
  this person -> checked in to that booking (green);
- on a desk booked by someone else -> refused with its own LED pattern;
- on a free drop-in or reservable desk -> claimed as a walk-up until the next booking.

Without a snapshot (a node not yet provisioned, or the walking-skeleton demo)
any badge may claim a free desk. Each refusal has its own LED pattern so the
person at the desk can tell why (see docs/desk-booking.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from firmware_bridge.deskunit import LedPattern, LedSet

from .snapshot import SnapshotView

LED_OFF = LedSet(r=0, g=0, b=0, pattern=LedPattern.OFF, duration_s=0)
LED_CHECKED_IN = LedSet(r=0, g=200, b=0, pattern=LedPattern.SOLID, duration_s=0)
# Refusals: red blink = this badge may not; amber blink = the desk is someone else's;
# red solid = the desk is out of use.
LED_REFUSED = LedSet(r=220, g=0, b=0, pattern=LedPattern.BLINK, duration_s=3)
LED_BOOKED_BY_OTHER = LedSet(r=255, g=120, b=0, pattern=LedPattern.BLINK, duration_s=3)
LED_UNAVAILABLE = LedSet(r=220, g=0, b=0, pattern=LedPattern.SOLID, duration_s=3)
# Booked, nobody checked in yet: a dim blue so people see the desk is taken.
LED_BOOKED = LedSet(r=0, g=0, b=90, pattern=LedPattern.SOLID, duration_s=0)
# Checked in but nobody at the desk for a while: release is coming.
LED_AWAY_WARNING = LedSet(r=255, g=120, b=0, pattern=LedPattern.PULSE, duration_s=0)

Outcome = Literal["checkin", "checkout", "refused"]
RefusalReason = Literal[
    "unknown_badge",
    "desk_occupied",
    "desk_unavailable",
    "assigned_to_other",
    "booked_by_other",
]

_REFUSAL_LED: dict[str, LedSet] = {
    "unknown_badge": LED_REFUSED,
    "desk_occupied": LED_REFUSED,
    "desk_unavailable": LED_UNAVAILABLE,
    "assigned_to_other": LED_BOOKED_BY_OTHER,
    "booked_by_other": LED_BOOKED_BY_OTHER,
}


@dataclass(frozen=True, slots=True)
class TapDecision:
    desk: str
    badge: str
    outcome: Outcome
    led: LedSet
    # What the LED shows once a temporary pattern (refusal blink) ends.
    steady_led: LedSet
    reason: str | None = None
    booking: str | None = None
    person: str | None = None


@dataclass(frozen=True, slots=True)
class Occupancy:
    badge: str
    since: float
    person: str | None = None
    booking: str | None = None


class DeskBook:
    """Who is checked in at which desk on this node, decided from the current snapshot."""

    def __init__(self) -> None:
        self._occupied: dict[str, Occupancy] = {}
        self.snapshot: SnapshotView | None = None

    def occupant(self, desk: str) -> Occupancy | None:
        return self._occupied.get(desk)

    def steady_led(self, desk: str, now: float | None = None) -> LedSet:
        if desk in self._occupied:
            return LED_CHECKED_IN
        booking = (
            self.snapshot.booking_at(desk, now)
            if now is not None and self.snapshot is not None
            else None
        )
        if booking is not None:
            # Checked in elsewhere than at this node (QR code on a phone, front desk):
            # the person is at the desk, so it shows green like a local check-in.
            return LED_CHECKED_IN if booking.status == "checked_in" else LED_BOOKED
        return LED_OFF

    def _refuse(
        self, desk: str, badge: str, reason: RefusalReason, person: str | None = None
    ) -> TapDecision:
        return TapDecision(
            desk,
            badge,
            "refused",
            _REFUSAL_LED[reason],
            self.steady_led(desk),
            reason=reason,
            person=person,
        )

    def _check_in(
        self, desk: str, badge: str, now: float, person: str | None, booking: str | None
    ) -> TapDecision:
        self._occupied[desk] = Occupancy(badge=badge, since=now, person=person, booking=booking)
        return TapDecision(
            desk, badge, "checkin", LED_CHECKED_IN, LED_CHECKED_IN, booking=booking, person=person
        )

    def tap(self, desk: str, badge: str, now: float) -> TapDecision:
        current = self._occupied.get(desk)
        if current is not None and current.badge == badge:
            del self._occupied[desk]
            return TapDecision(
                desk,
                badge,
                "checkout",
                LED_OFF,
                self.steady_led(desk, now),
                booking=current.booking,
                person=current.person,
            )
        snap = self.snapshot
        if snap is None:
            if current is not None:
                return self._refuse(desk, badge, "desk_occupied")
            return self._check_in(desk, badge, now, None, None)

        person = snap.person_for(badge, now)
        if person is None:
            return self._refuse(desk, badge, "unknown_badge")
        if current is not None:
            # Same person with a second badge counts as the occupant tapping out.
            if current.person == person:
                del self._occupied[desk]
                return TapDecision(
                    desk,
                    badge,
                    "checkout",
                    LED_OFF,
                    self.steady_led(desk, now),
                    booking=current.booking,
                    person=person,
                )
            return self._refuse(desk, badge, "desk_occupied", person)
        info = snap.desks.get(desk)
        mode = info.mode if info is not None else "reservable"
        if mode == "unavailable":
            return self._refuse(desk, badge, "desk_unavailable", person)
        if mode == "assigned" and info is not None and info.assigned_person != person:
            return self._refuse(desk, badge, "assigned_to_other", person)
        booking = snap.booking_at(desk, now)
        if booking is not None:
            if booking.person != person:
                return self._refuse(desk, badge, "booked_by_other", person)
            return self._check_in(desk, badge, now, person, booking.id)
        return self._check_in(desk, badge, now, person, None)

    def release(self, desk: str) -> Occupancy | None:
        """Frees a desk (away too long, cloud command or operator); returns who was there."""
        return self._occupied.pop(desk, None)
