"""The vehicle a node rides in: door reader taps -> boarding or pick-up -> LED, beep, event.

A vehicle node (edge/vehicle_config.py) serves a shuttle or a pool car. Its door
readers speak the desk-unit protocol (edge/devices/deskunit.py drives each one,
reporting badge reads here); BLE taps come here too. A tap is decided locally
from the signed snapshot and the node's clock (edge/boarding.py for a shuttle,
edge/poolcar.py for a pool car), answered on the reader first (LED and beep,
before anything is queued for the cloud), then published as a `boarding` or
`poolcar` event through the durable outbox, which keeps it until the cloud has
committed it. The stop of a boarding comes from the last fix of the vehicle's
GNSS receiver (edge/devices/gps.py).

What is counted on the node (walk-ons let on per trip, who is aboard, who has
the car out) is journalled in the state directory (edge/vehicle_state.py), so a
restart mid-trip neither re-opens seats nor turns a return into a pick-up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ruang import contract

from .boarding import BoardingBook, BoardingDecision, Signal
from .devices import Publish
from .devices.deskunit import DeskUnitConfig, DeskUnitDriver
from .devices.gps import GpsDriver
from .poolcar import CarDecision, PoolCarBook
from .snapshot import SnapshotView
from .vehicle_config import VehicleConfig
from .vehicle_state import VehicleJournal

log = logging.getLogger(__name__)

# Desk-side messages a door reader's driver reports (unit status, heartbeats, presence,
# buttons) name a desk; a vehicle has none, so they stay on the node.
_DESK_ONLY = (contract.UnitStatus, contract.Heartbeat, contract.Presence, contract.ButtonPressed)


class DoorReader:
    """A door reader under the agent's watchdog: its desk-unit driver, health as a door."""

    kind = "door"

    def __init__(self, driver: DeskUnitDriver) -> None:
        self.driver = driver
        self.device_id = driver.device_id

    async def run(self) -> None:
        await self.driver.run()

    def health(self) -> contract.DeviceHealth:
        return self.driver.health().model_copy(update={"kind": "door"})


class Vehicle:
    """Decisions, reader signals and events of the node's vehicle; see the module docstring."""

    def __init__(
        self,
        node_id: str,
        config: VehicleConfig,
        publish: Publish,
        state_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.node = node_id
        self.config = config
        self._publish = publish
        # The node's clock; a test runs a day on an accelerated one through this seam.
        self.clock = clock
        self.boarding = BoardingBook(early_s=config.boarding_early_s, late_s=config.boarding_late_s)
        self.cars = PoolCarBook(early_s=config.pickup_early_s)
        self.journal = VehicleJournal(state_dir)
        self.gps: list[GpsDriver] = []
        self.drivers: dict[str, DeskUnitDriver] = {}
        for r in config.readers:
            unit = DeskUnitConfig(desk=r.id, port=r.port, baudrate=r.baudrate)
            self.drivers[r.id] = DeskUnitDriver(unit, node_id, self._reader_publish, self)
        self.readers = [DoorReader(d) for d in self.drivers.values()]
        self._pending: set[asyncio.Task[bool]] = set()
        self.decided = 0

    # --- wiring -------------------------------------------------------------------------

    def attach_gps(self, drivers: Sequence[GpsDriver]) -> None:
        """The receiver that places the vehicle (config `gps_device`, else this vehicle's)."""
        cfg = self.config
        if cfg.gps_device is not None:
            self.gps = [d for d in drivers if d.device_id == cfg.gps_device]
        else:
            self.gps = [d for d in drivers if d.vehicle == cfg.vehicle] or list(drivers[:1])

    def snapshot_applied(self, view: SnapshotView | None, *, compact: bool = False) -> None:
        self.boarding.snapshot = view
        self.cars.snapshot = view
        if compact:
            # A new snapshot while running (not the stored one at start, before the
            # journal is read back): trips that left it are forgotten, the journal
            # starts afresh.
            self.journal.rewrite(self.boarding.state(), self.cars.state())

    def restore(self) -> None:
        """Takes back what was counted before a restart (after the snapshot is in)."""
        boarding, holder = self.journal.load()
        self.boarding.restore(boarding)
        self.cars.restore(holder)

    async def flushed(self) -> None:
        """Returns once the counts so far are on disk (tests, orderly shutdown)."""
        await self.journal.flushed()

    def _reader_publish(self, message: contract.Message) -> None:
        if not isinstance(message, _DESK_ONLY):
            self._publish(message)

    # --- what the door readers report (DeskEvents) ------------------------------------

    def badge(self, desk: str, badge: str) -> None:
        self.tap(desk, badge)

    def presence(self, desk: str, present: bool) -> None:
        return None  # a door reader's presence sensor means nothing for boarding

    def hello(self, desk: str) -> None:
        return None  # door readers show nothing between taps

    # --- a tap --------------------------------------------------------------------------

    def fix(self) -> tuple[float, float] | None:
        for driver in self.gps:
            if (fix := driver.last_fix(self.config.fix_max_age_s)) is not None:
                return fix
        return None

    def tap(self, reader: str, badge: str) -> None:
        """A badge at `reader` (NFC on a door reader, or a BLE tap)."""
        now = self.clock()
        fix = self.fix()
        if self.config.kind == "shuttle":
            d = self.boarding.tap(badge, now, fix)
            self._signal(reader, d.signal)
            if not d.repeat:
                self._publish(self._boarding_event(reader, d, now, fix))
            if d.allowed and not d.repeat and d.trip and d.service_date and d.person:
                self.journal.boarded(d.trip, d.service_date, d.person, d.reason, d.reservation)
        else:
            car = self.cars.tap(badge, now)
            self._signal(reader, car.signal)
            self._publish(self._car_event(reader, car, now, fix))
            if car.action != "refused":
                self.journal.car(self.cars.state())
        self.decided += 1

    def _signal(self, reader: str, signal: Signal) -> None:
        driver = self.drivers.get(reader)
        if driver is None:  # a BLE tap with no reader of that id: nothing to light
            return
        # Sent from their own tasks so the reader loop keeps reading while the unit acks.
        for send in (driver.set_led(signal.led), driver.beep(signal.beep)):
            task = asyncio.create_task(send)
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def _boarding_event(
        self, reader: str, d: BoardingDecision, now: float, fix: tuple[float, float] | None
    ) -> contract.Boarding:
        return contract.Boarding(
            node=self.node, ts=now, vehicle=self.config.vehicle, reader=reader, badge=d.badge,
            allowed=d.allowed, reason=d.reason, trip=d.trip, service_date=d.service_date,
            stop=d.stop, reservation=d.reservation,
            lat=fix[0] if fix else None, lon=fix[1] if fix else None,
        )  # fmt: skip

    def _car_event(
        self, reader: str, d: CarDecision, now: float, fix: tuple[float, float] | None
    ) -> contract.PoolCarUse:
        return contract.PoolCarUse(
            node=self.node, ts=now, vehicle=self.config.vehicle, reader=reader, badge=d.badge,
            action=d.action, reason=d.reason, booking=d.booking,
            lat=fix[0] if fix else None, lon=fix[1] if fix else None,
        )  # fmt: skip

    def state(self) -> dict[str, Any]:
        return {"boarding": self.boarding.state(), "car": self.cars.state()}
