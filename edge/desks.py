"""The desks this node serves: badge taps -> local decisions -> LEDs, and away timers.

`Desks` owns the desk unit drivers (edge/devices/deskunit.py) and the `DeskBook`
(edge/decisions.py). A tap is decided locally and answered on the unit first
(the LED goes back on the serial line before anything is queued for the
cloud), then the outcome is published. A checked-in desk left vacant gets a
warning LED and is released when nobody comes back in time. It is the
`DeskEvents` every desk unit driver reports to, and the `on_tap` of the BLE
scanner.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from firmware_bridge.deskunit import LedSet
from ruang import contract

from .decisions import LED_AWAY_WARNING, DeskBook
from .devices import Publish
from .devices.deskunit import DeskUnitConfig, DeskUnitDriver
from .settings import EdgeSettings

AwayPeriods = Callable[[], tuple[float, float]]


class Desks:
    """Decisions and LEDs for every desk of the node; see the module docstring."""

    def __init__(
        self, node_id: str, publish: Publish, settings: Callable[[], EdgeSettings]
    ) -> None:
        self.node = node_id
        self._publish = publish
        self._settings = settings
        self.book = DeskBook()
        self.drivers: dict[str, DeskUnitDriver] = {}
        # How long a checked-in desk may stay vacant (release, warning before it);
        # replaceable so an end-to-end test can run the away path in seconds.
        self.away_periods: AwayPeriods = self._away_periods
        # Per desk: timers that warn, then release, a checked-in desk left vacant.
        self._away: dict[str, tuple[asyncio.TimerHandle, asyncio.TimerHandle]] = {}
        self._pending_leds: set[asyncio.Task[bool]] = set()

    def driver_for(self, unit: DeskUnitConfig) -> DeskUnitDriver:
        return DeskUnitDriver(unit, self.node, self._publish, self)

    def forget(self, desk: str) -> None:
        """A desk's driver was stopped (remote config): drop it and its away timers."""
        del self.drivers[desk]
        self._cancel_away(desk)

    # --- what the desk units report (DeskEvents) ------------------------------------------

    def badge(self, desk: str, badge: str) -> None:
        self.tap(desk, badge)

    def presence(self, desk: str, present: bool) -> None:
        if present:
            if self._cancel_away(desk) and desk in self.drivers:
                self.led(desk, self.book.steady_led(desk, time.time()))
            return
        if self.book.occupant(desk) is None or desk in self._away:
            return
        away, warning = self.away_periods()
        loop = asyncio.get_running_loop()
        self._away[desk] = (
            loop.call_later(max(0.0, away - warning), self._warn_away, desk),
            loop.call_later(away, self._release_away, desk),
        )

    def hello(self, desk: str) -> None:
        # A unit that rebooted lost its LED state: show what the desk is now.
        self.led(desk, self.book.steady_led(desk, time.time()))

    def tap(self, desk: str, badge: str) -> None:
        """A badge was presented at a desk (NFC on the desk unit, or a BLE tap)."""
        decision = self.book.tap(desk, badge, time.time())
        # Answer the person at the desk first; the cloud can wait.
        if desk in self.drivers:
            self.led(desk, decision.led)
        self._cancel_away(desk)
        node = self.node
        if decision.outcome == "checkin":
            self._publish(
                contract.CheckIn(
                    node=node, desk=desk, badge=badge,
                    booking=decision.booking, person=decision.person,
                )
            )  # fmt: skip
        elif decision.outcome == "checkout":
            self._publish(contract.CheckOut(node=node, desk=desk, badge=badge, reason="tap"))
        else:
            self._publish(
                contract.TapRefused(
                    node=node, desk=desk, badge=badge, reason=decision.reason or "refused"
                )
            )

    # --- LEDs -------------------------------------------------------------------------------

    def led(self, desk: str, led: LedSet) -> None:
        # Sent from its own task so the reader loop keeps reading while the unit acks.
        task = asyncio.create_task(self.drivers[desk].set_led(led))
        self._pending_leds.add(task)
        task.add_done_callback(self._pending_leds.discard)

    def show_steady(self) -> None:
        """Shows booked desks (blue) and free ones (off), e.g. after a new snapshot."""
        now = time.time()
        for desk in self.drivers:
            if self.book.occupant(desk) is None:
                self.led(desk, self.book.steady_led(desk, now))

    # --- away from a checked-in desk ----------------------------------------------------

    def _away_periods(self) -> tuple[float, float]:
        snap = self.book.snapshot
        if snap is not None:
            return float(snap.body.away_s), float(snap.body.away_warning_s)
        settings = self._settings()
        return settings.away_s, settings.away_warning_s

    def _cancel_away(self, desk: str) -> bool:
        timers = self._away.pop(desk, None)
        if timers is None:
            return False
        for timer in timers:
            timer.cancel()
        return True

    def _warn_away(self, desk: str) -> None:
        if desk in self.drivers:
            self.led(desk, LED_AWAY_WARNING)

    def _release_away(self, desk: str) -> None:
        self._away.pop(desk, None)
        gone = self.book.release(desk)
        if gone is None:
            return
        if desk in self.drivers:
            self.led(desk, self.book.steady_led(desk, time.time()))
        self._publish(contract.CheckOut(node=self.node, desk=desk, badge=gone.badge, reason="left"))
