"""BLE badge scanning: where enrolled badges are, and when someone taps one at a desk.

Pipeline for every advertisement a scanner hears (bleak callback or `feed`)::

    decode (firmware_bridge.ble_adverts) -> resolve to an enrolled badge (BadgeRegistry,
    ble_badges.py) -> calibrate + filter per (badge, scanner) (RssiFilter, ble_zones.py)
    -> fuse all scanners into one zone/desk estimate with dwell (ZoneFusion) -> BadgePresence
    -> taps by RSSI at a desk scanner or by the badge button (TapDetector, ble_taps.py)
    -> on_tap(desk, badge)

Its settings are in ble_config.py. This module is the driver:
`BleScannerDriver` owns the bleak scanners (one per local adapter), restarts a
scan that went silent (BlueZ scans on Raspberry Pis stop delivering after
hours), retries a busy adapter with backoff, and treats a missing adapter or
D-Bus as "BLE disabled for now" rather than a crash, so the node's other
devices keep running. See docs/devices/ble.md.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakBluetoothNotAvailableError, BleakError

from firmware_bridge.ble_adverts import (
    Advert,
    EddystoneTlm,
    RuangButton,
    decode_advert,
)
from firmware_bridge.ble_identity import (
    is_rpa,
)
from ruang import contract
from ruang.backoff import Backoff

from ..watchdog import beat
from . import Publish
from .ble_badges import BadgeRegistry, battery_pct
from .ble_config import BleConfig
from .ble_taps import TapDetector
from .ble_zones import PresenceChange, ScannerPlace, ZoneFusion

log = logging.getLogger(__name__)

NO_ADAPTER_MESSAGE = (
    "no Bluetooth adapter or D-Bus: BLE badge scanning disabled; other devices keep running"
)


# --- driver ---------------------------------------------------------------------------------


class Scanner(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


ScannerFactory = Callable[..., Scanner]
TapCallback = Callable[[str, str], Awaitable[None] | None]


@dataclass
class BleStats:
    adverts: int = 0
    rejected: int = 0
    unknown: int = 0
    last_advert_ts: float | None = None  # unix time
    restarts: int = 0
    start_failures: int = 0
    taps: int = 0


@dataclass
class _AdapterState:
    scanner_id: str
    adapter: str
    backoff: Backoff
    scanner: Scanner | None = None
    scanning: bool = False
    next_attempt: float = 0.0
    last_advert: float = 0.0
    error: str | None = None
    unavailable_logged: bool = False


class BleScannerDriver:
    """Scans for enrolled badges and publishes where they are; see the module docstring."""

    kind = "ble_scanner"

    def __init__(
        self,
        config: BleConfig,
        node_id: str,
        publish: Publish,
        *,
        on_tap: TapCallback | None = None,
        scanner_factory: ScannerFactory = BleakScanner,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        tick_s: float = 1.0,
    ) -> None:
        self.config = config
        self.node_id = node_id
        self.device_id = config.device_id
        self._publish = publish
        self._on_tap = on_tap
        self._factory = scanner_factory
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self.tick_s = tick_s
        self.places = {s.id: ScannerPlace.from_config(s) for s in config.scanners}
        self.registry = BadgeRegistry(
            config.badges, eid_rotation_exponent=config.eid_rotation_exponent
        )
        self.fusion = ZoneFusion(
            self.places.values(),
            alpha=config.alpha,
            enter_dbm=config.enter_dbm,
            exit_dbm=config.exit_dbm,
            stale_s=config.stale_s,
            dwell_s=config.dwell_s,
            temperature_db=config.confidence_temperature_db,
        )
        self.taps = TapDetector(adverts=config.tap_adverts, debounce_s=config.tap_debounce_s)
        self.stats = BleStats()
        self._adapters = [
            _AdapterState(s.id, s.adapter, Backoff(base=0.5, cap=30.0))
            for s in config.scanners
            if s.adapter is not None
        ]
        self._badges_at_desk: dict[str, set[str]] = {}
        self._battery_mv: dict[str, int] = {}
        self._badge_health_at: dict[str, float] = {}
        self._badge_heard: dict[str, tuple[float, float]] = {}  # badge -> (monotonic, unix)
        self._tap_tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        if not self.config.enabled:
            log.info("BLE badge scanning is disabled in the config")
            return
        try:
            while True:
                # One supervision round per tick: the watchdog's heartbeat for BLE.
                beat()
                await self.step()
                await self._sleep(self.tick_s)
        finally:
            for state in self._adapters:
                await self._stop(state)

    async def step(self) -> None:
        """One round of supervision: (re)start scans, watchdog, expire silent badges."""
        for state in self._adapters:
            now = self._clock()
            if not state.scanning:
                if now >= state.next_attempt:
                    await self._start(state)
            elif now - state.last_advert >= self.config.silence_s:
                self.stats.restarts += 1
                log.warning(
                    "BLE scan on %s silent for %.0f s; restarting it",
                    state.adapter,
                    now - state.last_advert,
                )
                await self._stop(state)
                await self._start(state)
        self._publish_changes(self.fusion.tick(self._clock()))

    async def _start(self, state: _AdapterState) -> None:
        now = self._clock()
        try:
            scanner = self._factory(self._callback_for(state), bluez={"adapter": state.adapter})
            await scanner.start()
        except (OSError, BleakBluetoothNotAvailableError) as exc:
            # No adapter, BlueZ not running or no D-Bus socket (FileNotFoundError): a
            # property of the machine, so say it once and look again only slowly.
            self.stats.start_failures += 1
            state.error = "no Bluetooth adapter or D-Bus"
            state.next_attempt = now + self.config.no_adapter_retry_s
            if not state.unavailable_logged:
                log.error("%s (%s: %s)", NO_ADAPTER_MESSAGE, state.adapter, exc)
                state.unavailable_logged = True
            return
        except BleakError as exc:
            # Typically org.bluez.Error.InProgress: BlueZ has not finished stopping the
            # previous discovery yet. Transient: retry with backoff.
            self.stats.start_failures += 1
            delay = state.backoff.next_delay()
            state.error = f"scan start failed: {exc}"[:100]
            state.next_attempt = now + delay
            log.warning(
                "BLE scan start on %s failed (%s); retrying in %.1f s", state.adapter, exc, delay
            )
            return
        if state.unavailable_logged:
            log.info("Bluetooth adapter %s available again; BLE badge scanning on", state.adapter)
        state.scanner, state.scanning, state.error = scanner, True, None
        state.unavailable_logged = False
        state.last_advert = now  # silence is measured from the start of the scan
        state.backoff.reset()

    async def _stop(self, state: _AdapterState) -> None:
        scanner, state.scanner, state.scanning = state.scanner, None, False
        if scanner is None:
            return
        try:
            await scanner.stop()
        except (BleakError, OSError) as exc:
            log.debug("stopping BLE scan on %s: %s", state.adapter, exc)

    def _callback_for(self, state: _AdapterState) -> Callable[[BLEDevice, AdvertisementData], None]:
        def on_advertisement(device: BLEDevice, data: AdvertisementData) -> None:
            state.last_advert = self._clock()
            self.feed(
                state.scanner_id,
                decode_advert(device.address, data.rssi, data.manufacturer_data, data.service_data),
            )

        return on_advertisement

    # --- advert path --------------------------------------------------------------------

    def feed(self, scanner_id: str, advert: Advert) -> None:
        """One decoded advert heard by `scanner_id` (local adapter or pushed from elsewhere)."""
        place = self.places.get(scanner_id)
        if place is None:
            self.stats.rejected += 1
            log.debug("advert from unconfigured scanner %r ignored", scanner_id)
            return
        now = self._clock()
        self.stats.adverts += 1
        self.stats.last_advert_ts = self._wall()
        self.stats.rejected += len(advert.rejected)
        if not advert.frames and not is_rpa(advert.address):
            return  # not a badge-like advert at all: phones, headphones, TVs
        badge = self.registry.resolve(advert, self.stats.last_advert_ts)
        if badge is None:
            if advert.frames:
                self.stats.unknown += 1
            return
        self._badge_heard[badge] = (now, self.stats.last_advert_ts)
        rssi = advert.rssi + place.calibration_db
        self._publish_changes(self.fusion.observe(badge, scanner_id, rssi, now))
        desk = self.taps.rssi(badge, place, rssi, now)
        if desk is not None:
            self._tap(desk, badge)
        button = advert.first(RuangButton)
        if button is not None:
            where = self.fusion.nearest_desk(badge, now) or place.desk
            desk = self.taps.button(badge, button, where, now)
            if desk is not None:
                self._tap(desk, badge)
        tlm = advert.first(EddystoneTlm)
        if tlm is not None:
            self._badge_health(badge, tlm, now)

    def _tap(self, desk: str, badge: str) -> None:
        self.stats.taps += 1
        if self._on_tap is None:
            return
        try:
            result = self._on_tap(desk, f"ble:{badge}")
        except Exception:
            log.exception("tap handler failed for %s at %s", badge, desk)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tap_tasks.add(task)
            task.add_done_callback(self._tap_done)

    def _tap_done(self, task: asyncio.Task[None]) -> None:
        self._tap_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("tap handler failed", exc_info=task.exception())

    def _publish_changes(self, changes: list[PresenceChange]) -> None:
        for change in changes:
            rssi = None if change.rssi is None else max(-127.0, min(20.0, change.rssi))
            self._publish(
                contract.BadgePresence(
                    node=self.node_id,
                    badge=f"ble:{change.badge}",
                    zone=change.zone,
                    desk=change.desk,
                    present=change.present,
                    confidence=max(0.0, min(1.0, change.confidence)),
                    rssi=rssi,
                    ts=self._wall(),
                )
            )
            if change.desk is not None:
                self._desk_occupancy(change.desk, change.badge, change.present)

    def _desk_occupancy(self, desk: str, badge: str, present: bool) -> None:
        # Desk presence from BLE: occupied while at least one enrolled badge is there.
        badges = self._badges_at_desk.setdefault(desk, set())
        before = bool(badges)
        if present:
            badges.add(badge)
        else:
            badges.discard(badge)
        if bool(badges) != before:
            self._publish(
                contract.Presence(
                    node=self.node_id,
                    desk=desk,
                    present=bool(badges),
                    source="ble",
                    ts=self._wall(),
                )
            )

    def _badge_health(self, badge: str, tlm: EddystoneTlm, now: float) -> None:
        self._battery_mv[badge] = tlm.battery_mv
        last = self._badge_health_at.get(badge)
        if last is not None and now - last < self.config.badge_health_interval_s:
            return
        self._badge_health_at[badge] = now
        self._publish(self.badge_health(badge))

    # --- health -------------------------------------------------------------------------

    def badge_health(self, badge: str) -> contract.DeviceHealth:
        mv = self._battery_mv.get(badge, 0)
        heard = self._badge_heard.get(badge)
        return contract.DeviceHealth(
            node=self.node_id,
            ts=self._wall(),
            device=badge,
            kind="ble_badge",
            online=heard is not None and self._clock() - heard[0] <= self.config.stale_s,
            last_reading_ts=heard[1] if heard else None,
            battery_pct=battery_pct(mv),
            detail=f"battery {mv} mV" if mv else None,
        )

    def health(self) -> contract.DeviceHealth:
        errors = sorted({s.error for s in self._adapters if s.error})
        online = any(s.scanning for s in self._adapters) or (
            not self._adapters and self.config.enabled
        )
        s = self.stats
        counts = f"{s.adverts} adverts, {s.unknown} unknown, {s.restarts} scan restarts"
        detail = f"{'; '.join(errors)}; {counts}" if errors else counts
        return contract.DeviceHealth(
            node=self.node_id,
            ts=self._wall(),
            device=self.device_id,
            kind="ble_scanner",
            online=online,
            rejected_frames=s.rejected,
            last_reading_ts=s.last_advert_ts,
            detail=detail[:128],
        )
