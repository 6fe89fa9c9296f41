"""Pool-car pick-up and return by badge tap, decided offline from the signed snapshot.

Pure logic, no I/O. The snapshot of a pool car's node lists the car's approved
bookings (`car_bookings`: id, person, start, end). A tap at the car's reader:

- a badge not on the allow-list -> refused, `unknown_badge`;
- the car is out (picked up) and the tap is by the person who picked it up ->
  `return`, reason `returned` (or `returned_late` past the booking's end);
- the car is out with someone else -> refused, `in_use`;
- the person has an approved booking whose window holds now (from
  `PICKUP_EARLY_S` before its start to its end) -> `pickup`, reason `booked`;
- otherwise -> refused, `no_booking`.

Who holds the car survives an agent restart (`state()` / `restore()`, kept in
the node's state directory by edge/vehicle.py), so a return after a reboot is a
return and not a second pick-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from firmware_bridge.deskunit import Beep, LedPattern, LedSet

from .boarding import Signal
from .snapshot import SnapshotView

# A booked car may be picked up this long before the booking starts.
PICKUP_EARLY_S = 900.0

Action = Literal["pickup", "return", "refused"]

SIGNALS: dict[str, Signal] = {
    "booked": Signal(LedSet(0, 200, 0, LedPattern.SOLID, 3), Beep(1, 120)),
    "returned": Signal(LedSet(0, 0, 200, LedPattern.SOLID, 3), Beep(2, 120)),
    "returned_late": Signal(LedSet(0, 0, 200, LedPattern.BLINK, 3), Beep(2, 120)),
    "unknown_badge": Signal(LedSet(220, 0, 0, LedPattern.BLINK, 3), Beep(3, 80)),
    "in_use": Signal(LedSet(255, 120, 0, LedPattern.BLINK, 3), Beep(1, 600)),
    "no_booking": Signal(LedSet(220, 0, 0, LedPattern.SOLID, 3), Beep(1, 600)),
}


@dataclass(frozen=True, slots=True)
class Holder:
    """Who has the car out, on which booking, since when."""

    badge: str
    person: str
    booking: str
    since: float
    until: float  # the booking's end


@dataclass(frozen=True, slots=True)
class CarDecision:
    badge: str
    action: Action
    reason: str
    signal: Signal
    booking: str | None = None
    person: str | None = None


class PoolCarBook:
    """The car's current holder and the decision for each tap (see the module docstring)."""

    def __init__(self, *, early_s: float = PICKUP_EARLY_S) -> None:
        self.early_s = early_s
        self.snapshot: SnapshotView | None = None
        self.holder: Holder | None = None

    def _refuse(self, badge: str, reason: str, person: str | None = None) -> CarDecision:
        return CarDecision(badge, "refused", reason, SIGNALS[reason], person=person)

    def tap(self, badge: str, now: float) -> CarDecision:
        view = self.snapshot
        person = view.person_for(badge, now) if view is not None else None
        held = self.holder
        if held is not None and (badge == held.badge or person == held.person):
            # The holder may always give the car back, even with a badge expired meanwhile.
            self.holder = None
            reason = "returned_late" if now > held.until else "returned"
            return CarDecision(badge, "return", reason, SIGNALS[reason], held.booking, held.person)
        if person is None or view is None:
            return self._refuse(badge, "unknown_badge")
        if held is not None:
            return self._refuse(badge, "in_use", person)
        for booking in view.body.car_bookings:
            if booking.person == person and booking.start - self.early_s <= now < booking.end:
                self.holder = Holder(badge, person, booking.id, now, booking.end)
                return CarDecision(badge, "pickup", "booked", SIGNALS["booked"], booking.id, person)
        return self._refuse(badge, "no_booking", person)

    def state(self) -> dict[str, Any] | None:
        h = self.holder
        if h is None:
            return None
        return {"badge": h.badge, "person": h.person, "booking": h.booking,
                "since": h.since, "until": h.until}  # fmt: skip

    def restore(self, data: Any) -> None:
        if not isinstance(data, dict):
            self.holder = None
            return
        try:
            self.holder = Holder(
                badge=str(data["badge"]), person=str(data["person"]),
                booking=str(data["booking"]), since=float(data["since"]),
                until=float(data["until"]),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError):
            self.holder = None
