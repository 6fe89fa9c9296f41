"""When a BLE badge is a tap at a desk: held close to the desk's scanner, or its button pressed.

Sans-io like the rest of the BLE pipeline: the scanner driver (edge/devices/ble.py)
feeds it RSSI per desk scanner and decoded button frames, with the time.
"""

from __future__ import annotations

from firmware_bridge.ble_adverts import RuangButton

from .ble_zones import ScannerPlace


class TapDetector:
    """A deliberate tap at a desk: badge held at the desk scanner, or its button pressed.

    By RSSI: `adverts` consecutive calibrated readings at or above the desk
    scanner's tap threshold (raw, not averaged: a tap is brief and the average
    would lag); it re-arms only after a reading below the threshold, so a badge
    left lying on the scanner taps once. By button: a new press counter with
    the pressed flag. Either way at most one tap per badge per `debounce_s`.
    """

    def __init__(self, *, adverts: int = 2, debounce_s: float = 3.0) -> None:
        self.adverts = adverts
        self.debounce_s = debounce_s
        self._streak: dict[tuple[str, str], int] = {}
        self._last_tap: dict[str, float] = {}
        self._button_counter: dict[str, int] = {}

    def rssi(self, badge: str, place: ScannerPlace, rssi: float, now: float) -> str | None:
        if place.desk is None:
            return None
        key = (badge, place.scanner_id)
        if rssi < place.tap_threshold_dbm:
            self._streak.pop(key, None)
            return None
        streak = self._streak.get(key, 0) + 1
        self._streak[key] = streak
        if streak != self.adverts:
            return None
        return self._fire(badge, place.desk, now)

    def button(self, badge: str, frame: RuangButton, desk: str | None, now: float) -> str | None:
        previous = self._button_counter.get(badge)
        self._button_counter[badge] = frame.counter
        # Scanner stacks re-deliver the last manufacturer data; only a new counter is a press.
        if previous == frame.counter or not frame.pressed or desk is None:
            return None
        return self._fire(badge, desk, now)

    def _fire(self, badge: str, desk: str, now: float) -> str | None:
        last = self._last_tap.get(badge)
        if last is not None and now - last < self.debounce_s:
            return None
        self._last_tap[badge] = now
        return desk
