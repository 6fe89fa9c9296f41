"""Local desk decisions: what a badge tap means and which LED it lights.

Pure logic, no I/O, so it decides in microseconds and keeps working with the
uplink down. The walking skeleton's rule: a tap on a free desk checks the badge
in (green); a tap by the same badge checks it out (LED off); a tap by another
badge on an occupied desk is refused (red blink).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from firmware_bridge.deskunit import LedPattern, LedSet

LED_OFF = LedSet(r=0, g=0, b=0, pattern=LedPattern.OFF, duration_s=0)
LED_CHECKED_IN = LedSet(r=0, g=200, b=0, pattern=LedPattern.SOLID, duration_s=0)
LED_REFUSED = LedSet(r=220, g=0, b=0, pattern=LedPattern.BLINK, duration_s=3)

Outcome = Literal["checkin", "checkout", "refused"]


@dataclass(frozen=True, slots=True)
class TapDecision:
    desk: str
    badge: str
    outcome: Outcome
    led: LedSet
    # What the LED shows once a temporary pattern (refusal blink) ends.
    steady_led: LedSet
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Occupancy:
    badge: str
    since: float


class DeskBook:
    """Who is checked in at which desk on this node."""

    def __init__(self) -> None:
        self._occupied: dict[str, Occupancy] = {}

    def occupant(self, desk: str) -> Occupancy | None:
        return self._occupied.get(desk)

    def steady_led(self, desk: str) -> LedSet:
        return LED_CHECKED_IN if desk in self._occupied else LED_OFF

    def tap(self, desk: str, badge: str, now: float) -> TapDecision:
        current = self._occupied.get(desk)
        if current is None:
            self._occupied[desk] = Occupancy(badge=badge, since=now)
            return TapDecision(desk, badge, "checkin", LED_CHECKED_IN, LED_CHECKED_IN)
        if current.badge == badge:
            del self._occupied[desk]
            return TapDecision(desk, badge, "checkout", LED_OFF, LED_OFF)
        return TapDecision(
            desk,
            badge,
            "refused",
            LED_REFUSED,
            LED_CHECKED_IN,
            reason="desk occupied by another badge",
        )

    def release(self, desk: str) -> Occupancy | None:
        """Frees a desk (cloud command or operator); returns who was there."""
        return self._occupied.pop(desk, None)
