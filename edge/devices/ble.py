"""BLE badge scanning: where enrolled badges are, and when someone taps one at a desk.

Pipeline for every advertisement a scanner hears (bleak callback or `feed`)::

    decode (firmware_bridge.ble_adverts) -> resolve to an enrolled badge (BadgeRegistry)
    -> calibrate + filter per (badge, scanner) (RssiFilter)
    -> fuse all scanners into one zone/desk estimate with dwell (ZoneFusion) -> BadgePresence
    -> taps by RSSI at a desk scanner or by the badge button (TapDetector) -> on_tap(desk, badge)

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
import math
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakBluetoothNotAvailableError, BleakError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from firmware_bridge.ble_adverts import (
    Advert,
    EddystoneEid,
    EddystoneTlm,
    EddystoneUid,
    IBeacon,
    RuangButton,
    decode_advert,
)
from firmware_bridge.ble_identity import (
    DEFAULT_ROTATION_EXPONENT,
    EidResolver,
    RpaResolver,
    is_rpa,
)
from ruang import contract
from ruang.backoff import Backoff

from ..watchdog import beat
from . import Publish

log = logging.getLogger(__name__)

NO_ADAPTER_MESSAGE = (
    "no Bluetooth adapter or D-Bus: BLE badge scanning disabled; other devices keep running"
)
# Badge ids end up both in `ble:<id>` badge refs and as DeviceHealth device ids.
BADGE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$"
_HEX = r"^[0-9A-Fa-f]+$"


# --- configuration --------------------------------------------------------------------------


class IBeaconIdentity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    uuid: str = Field(description="proximity UUID, 32 hex digits, dashes allowed")
    major: int = Field(ge=0, le=0xFFFF)
    minor: int = Field(ge=0, le=0xFFFF)

    @field_validator("uuid")
    @classmethod
    def _uuid_hex(cls, value: str) -> str:
        compact = value.replace("-", "").lower()
        if len(compact) != 32 or any(c not in "0123456789abcdef" for c in compact):
            raise ValueError("iBeacon uuid must be 16 bytes of hex")
        return compact

    def key(self) -> tuple[bytes, int, int]:
        return bytes.fromhex(self.uuid), self.major, self.minor


class EddystoneUidIdentity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str = Field(pattern=_HEX, min_length=20, max_length=20)
    instance: str = Field(pattern=_HEX, min_length=12, max_length=12)

    def key(self) -> tuple[bytes, bytes]:
        return bytes.fromhex(self.namespace), bytes.fromhex(self.instance)


class BleBadgeConfig(BaseModel):
    """One enrolled badge and the identity material that recognises it (at least one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=BADGE_ID_PATTERN)
    ibeacon: IBeaconIdentity | None = None
    eddystone_uid: EddystoneUidIdentity | None = None
    irk_hex: str | None = Field(
        default=None,
        pattern=_HEX,
        min_length=32,
        max_length=32,
        description="identity resolving key, most significant octet first",
    )
    eid_secret_hex: str | None = Field(default=None, pattern=_HEX, min_length=32, max_length=128)

    @model_validator(mode="after")
    def _has_identity(self) -> BleBadgeConfig:
        if not (self.ibeacon or self.eddystone_uid or self.irk_hex or self.eid_secret_hex):
            raise ValueError(
                f"badge {self.id!r} has no identity (ibeacon, eddystone_uid, irk_hex…)"
            )
        return self


class BleScannerConfig(BaseModel):
    """One scanner: a local adapter (`adapter`) or, with adapter=None, readings fed in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=contract.ID_PATTERN)
    zone: str = Field(pattern=contract.ID_PATTERN)
    desk: str | None = Field(default=None, pattern=contract.ID_PATTERN)
    adapter: str | None = Field(default="hci0", pattern=r"^hci[0-9]{1,2}$")
    calibration_db: float = Field(default=0.0, ge=-40, le=40)
    tap_threshold_dbm: float = Field(default=-45.0, ge=-100, le=0)
    # Per-scanner override of the zone entry threshold, e.g. a scanner above a stairwell.
    enter_dbm: float | None = Field(default=None, ge=-110, le=0)
    exit_dbm: float | None = Field(default=None, ge=-110, le=0)


class BleConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    device_id: str = Field(default="ble", pattern=contract.ID_PATTERN)
    scanners: list[BleScannerConfig] = Field(default_factory=list)
    badges: list[BleBadgeConfig] = Field(default_factory=list)
    dwell_s: float = Field(default=10.0, ge=0)
    stale_s: float = Field(default=15.0, gt=0)
    silence_s: float = Field(default=60.0, gt=0)
    enter_dbm: float = Field(default=-70.0, ge=-110, le=0)
    exit_dbm: float = Field(default=-78.0, ge=-110, le=0)
    alpha: float = Field(default=0.3, gt=0, le=1)
    confidence_temperature_db: float = Field(default=3.0, gt=0)
    tap_adverts: int = Field(default=2, ge=1, le=20)
    tap_debounce_s: float = Field(default=3.0, ge=0)
    eid_rotation_exponent: int = Field(default=DEFAULT_ROTATION_EXPONENT, ge=0, le=15)
    no_adapter_retry_s: float = Field(default=60.0, gt=0)
    badge_health_interval_s: float = Field(default=600.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> BleConfig:
        if self.exit_dbm >= self.enter_dbm:
            raise ValueError("exit_dbm must be below enter_dbm (hysteresis)")
        for scanner in self.scanners:
            enter = scanner.enter_dbm if scanner.enter_dbm is not None else self.enter_dbm
            leave = scanner.exit_dbm if scanner.exit_dbm is not None else self.exit_dbm
            if leave >= enter:
                raise ValueError(f"scanner {scanner.id!r}: exit_dbm must be below enter_dbm")
        for what, values in (
            ("scanner id", [s.id for s in self.scanners]),
            ("adapter", [s.adapter for s in self.scanners if s.adapter is not None]),
            ("badge id", [b.id for b in self.badges]),
        ):
            seen: set[str] = set()
            for value in values:
                if value in seen:
                    raise ValueError(f"{what} {value!r} is listed twice")
                seen.add(value)
        return self


# --- filtering ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FilteredReading:
    rssi: float  # calibrated, smoothed dBm
    near: bool
    ts: float  # monotonic time of the last sample


class RssiFilter:
    """Exponential moving average per key with enter/exit hysteresis.

    A single body turning or a hand over the badge moves RSSI by 10 dB for one
    advert; the average absorbs that, and the gap between `enter_dbm` and
    `exit_dbm` stops a badge sitting right at the threshold from flickering.
    """

    def __init__(self, alpha: float = 0.3, enter_dbm: float = -70.0, exit_dbm: float = -78.0):
        if exit_dbm >= enter_dbm:
            raise ValueError("exit_dbm must be below enter_dbm")
        self.alpha = alpha
        self.enter_dbm = enter_dbm
        self.exit_dbm = exit_dbm
        self._state: dict[Hashable, FilteredReading] = {}

    def update(
        self,
        key: Hashable,
        rssi: float,
        now: float,
        *,
        enter_dbm: float | None = None,
        exit_dbm: float | None = None,
    ) -> FilteredReading:
        enter = self.enter_dbm if enter_dbm is None else enter_dbm
        leave = self.exit_dbm if exit_dbm is None else exit_dbm
        previous = self._state.get(key)
        if previous is None:
            value, near = rssi, False
        else:
            value = previous.rssi + self.alpha * (rssi - previous.rssi)
            near = previous.near
        if near and value <= leave:
            near = False
        elif not near and value >= enter:
            near = True
        reading = FilteredReading(value, near, now)
        self._state[key] = reading
        return reading

    def get(self, key: Hashable) -> FilteredReading | None:
        return self._state.get(key)

    def forget(self, key: Hashable) -> None:
        self._state.pop(key, None)


# --- fusion ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScannerPlace:
    scanner_id: str
    zone: str
    desk: str | None = None
    calibration_db: float = 0.0
    tap_threshold_dbm: float = -45.0
    enter_dbm: float | None = None
    exit_dbm: float | None = None

    @classmethod
    def from_config(cls, config: BleScannerConfig) -> ScannerPlace:
        return cls(
            config.id,
            config.zone,
            config.desk,
            config.calibration_db,
            config.tap_threshold_dbm,
            config.enter_dbm,
            config.exit_dbm,
        )


Place = tuple[str, str | None]  # (zone, desk)


@dataclass(frozen=True, slots=True)
class Estimate:
    place: Place | None
    confidence: float
    rssi: float | None


@dataclass(frozen=True, slots=True)
class PresenceChange:
    badge: str
    zone: str
    desk: str | None
    present: bool
    confidence: float
    rssi: float | None


@dataclass
class _BadgeTrack:
    readings: dict[str, FilteredReading] = field(default_factory=dict)
    reported: Place | None = None
    reported_confidence: float = 0.0
    has_pending: bool = False
    pending: Place | None = None
    pending_since: float = 0.0


class ZoneFusion:
    """Fuses the filtered readings of several scanners into one place per badge.

    Estimate: among fresh readings (younger than `stale_s`), the places whose
    scanner considers the badge "near" (filtered calibrated RSSI crossed that
    scanner's entry threshold, the zone floor) are candidates; the strongest
    wins. Confidence is a softmax over all fresh places' RSSI with temperature
    T dB: ``1 / sum(exp((r_i - r_best) / T))`` — 1.0 when only one place hears
    the badge, 0.5 for a tie, about 0.88 for a 6 dB margin at T = 3.

    A change (arrive, move, leave) is reported only once the same estimate has
    held for `dwell_s`, so walking past a zone does not register.
    """

    def __init__(
        self,
        scanners: Iterable[ScannerPlace],
        *,
        alpha: float = 0.3,
        enter_dbm: float = -70.0,
        exit_dbm: float = -78.0,
        stale_s: float = 15.0,
        dwell_s: float = 10.0,
        temperature_db: float = 3.0,
    ) -> None:
        self.places = {s.scanner_id: s for s in scanners}
        self.filter = RssiFilter(alpha, enter_dbm, exit_dbm)
        self.stale_s = stale_s
        self.dwell_s = dwell_s
        self.temperature_db = temperature_db
        self._tracks: dict[str, _BadgeTrack] = {}

    def observe(self, badge: str, scanner_id: str, rssi: float, now: float) -> list[PresenceChange]:
        """One calibrated reading of `badge` at `scanner_id`; returns any reported changes."""
        place = self.places[scanner_id]
        reading = self.filter.update(
            (badge, scanner_id), rssi, now, enter_dbm=place.enter_dbm, exit_dbm=place.exit_dbm
        )
        track = self._tracks.setdefault(badge, _BadgeTrack())
        track.readings[scanner_id] = reading
        return self._evaluate(badge, track, now)

    def tick(self, now: float) -> list[PresenceChange]:
        """Re-evaluates every badge so silent badges expire; call about once a second."""
        changes: list[PresenceChange] = []
        for badge, track in list(self._tracks.items()):
            changes.extend(self._evaluate(badge, track, now))
            if track.reported is None and not track.has_pending and not self._fresh(track, now):
                for scanner_id in track.readings:
                    self.filter.forget((badge, scanner_id))
                del self._tracks[badge]
        return changes

    def located(self, badge: str) -> Place | None:
        track = self._tracks.get(badge)
        return track.reported if track else None

    def reading(self, badge: str, scanner_id: str) -> FilteredReading | None:
        track = self._tracks.get(badge)
        return track.readings.get(scanner_id) if track else None

    def nearest_desk(self, badge: str, now: float) -> str | None:
        """The desk whose scanner hears `badge` strongest and considers it near."""
        track = self._tracks.get(badge)
        if track is None:
            return None
        best: tuple[float, str] | None = None
        for scanner_id, reading in self._fresh(track, now).items():
            desk = self.places[scanner_id].desk
            if desk is not None and reading.near and (best is None or reading.rssi > best[0]):
                best = (reading.rssi, desk)
        return best[1] if best else None

    def estimate(self, badge: str, now: float) -> Estimate:
        track = self._tracks.get(badge)
        if track is None:
            return Estimate(None, 0.0, None)
        return self._estimate(track, now)

    def _fresh(self, track: _BadgeTrack, now: float) -> dict[str, FilteredReading]:
        return {s: r for s, r in track.readings.items() if now - r.ts <= self.stale_s}

    def _estimate(self, track: _BadgeTrack, now: float) -> Estimate:
        strongest: dict[Place, float] = {}
        near: dict[Place, float] = {}
        for scanner_id, reading in self._fresh(track, now).items():
            scanner = self.places[scanner_id]
            place = (scanner.zone, scanner.desk)
            strongest[place] = max(strongest.get(place, -math.inf), reading.rssi)
            if reading.near:
                near[place] = max(near.get(place, -math.inf), reading.rssi)
        if not near:
            return Estimate(None, 0.0, None)
        best = max(near, key=lambda p: near[p])
        best_rssi = near[best]
        total = sum(math.exp((r - best_rssi) / self.temperature_db) for r in strongest.values())
        # strongest[best] can exceed near[best] when two scanners share a place; clamp.
        return Estimate(best, min(1.0, 1.0 / total), best_rssi)

    def _evaluate(self, badge: str, track: _BadgeTrack, now: float) -> list[PresenceChange]:
        estimate = self._estimate(track, now)
        if estimate.place == track.reported:
            track.has_pending = False
            if estimate.place is not None:
                track.reported_confidence = estimate.confidence
            return []
        if not track.has_pending or track.pending != estimate.place:
            track.has_pending, track.pending, track.pending_since = True, estimate.place, now
        if now - track.pending_since < self.dwell_s:
            return []
        changes: list[PresenceChange] = []
        if track.reported is not None:
            zone, desk = track.reported
            changes.append(PresenceChange(badge, zone, desk, False, estimate.confidence, None))
            if estimate.place is None:
                # Leaving with nobody else hearing it: as sure as the last sighting was.
                changes[-1] = PresenceChange(
                    badge, zone, desk, False, track.reported_confidence, None
                )
        if estimate.place is not None:
            zone, desk = estimate.place
            changes.append(
                PresenceChange(badge, zone, desk, True, estimate.confidence, estimate.rssi)
            )
        track.reported = estimate.place
        track.reported_confidence = estimate.confidence
        track.has_pending = False
        return changes


# --- taps -----------------------------------------------------------------------------------


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


# --- identity -------------------------------------------------------------------------------


class BadgeRegistry:
    """Enrolled badges; turns an advert into a badge id, or None for strangers."""

    def __init__(
        self,
        badges: Iterable[BleBadgeConfig],
        *,
        eid_rotation_exponent: int = DEFAULT_ROTATION_EXPONENT,
        rpa_cache_size: int = 4096,
    ) -> None:
        self._ibeacon: dict[tuple[bytes, int, int], str] = {}
        self._uid: dict[tuple[bytes, bytes], str] = {}
        irks: dict[str, bytes] = {}
        eid_secrets: dict[str, bytes] = {}
        for badge in badges:
            if badge.ibeacon is not None:
                self._ibeacon[badge.ibeacon.key()] = badge.id
            if badge.eddystone_uid is not None:
                self._uid[badge.eddystone_uid.key()] = badge.id
            if badge.irk_hex is not None:
                irks[badge.id] = bytes.fromhex(badge.irk_hex)
            if badge.eid_secret_hex is not None:
                eid_secrets[badge.id] = bytes.fromhex(badge.eid_secret_hex)
        self.ids = frozenset([*self._ibeacon.values(), *self._uid.values(), *irks, *eid_secrets])
        self._rpa = RpaResolver(irks)
        # Eddystone interleaves TLM frames (and a badge its button frame) with its identity
        # frame from the same address: remember the address of the last identified advert.
        self._by_address: dict[str, str] = {}
        self._cache_size = rpa_cache_size
        self._eid = EidResolver(eid_secrets, eid_rotation_exponent)
        # An RPA stays the same for ~15 min and phones bring their own: cache both outcomes.
        self._rpa_cache: dict[str, str | None] = {}

    def resolve(self, advert: Advert, unix_time: float) -> str | None:
        for frame in advert.frames:
            if isinstance(frame, IBeacon):
                found = self._ibeacon.get((frame.uuid, frame.major, frame.minor))
            elif isinstance(frame, EddystoneUid):
                found = self._uid.get((frame.namespace, frame.instance))
            elif isinstance(frame, EddystoneEid):
                match = self._eid.resolve(frame.eid, unix_time)
                found = match.badge_id if match else None
            else:
                continue
            if found is not None:
                self._remember(advert.address, found)
                return found
        if len(self._rpa) and is_rpa(advert.address):
            found = self._resolve_rpa(advert.address)
            if found is not None:
                return found
        if advert.frames:
            return self._by_address.get(advert.address)
        return None

    def _remember(self, address: str, badge: str) -> None:
        cache = self._by_address
        if address not in cache and len(cache) >= self._cache_size:
            del cache[next(iter(cache))]  # oldest first (dict order)
        cache[address] = badge

    def _resolve_rpa(self, address: str) -> str | None:
        if address in self._rpa_cache:
            return self._rpa_cache[address]
        found = self._rpa.resolve(address)
        if len(self._rpa_cache) >= self._cache_size:
            del self._rpa_cache[next(iter(self._rpa_cache))]  # oldest first (dict order)
        self._rpa_cache[address] = found
        return found


def battery_pct(millivolts: int) -> int | None:
    """Coin cell level: 3.0 V -> 100 %, 2.0 V -> 0 %, linear, clamped; 0 mV = not reported."""
    if millivolts <= 0:
        return None
    return max(0, min(100, round((millivolts - 2000) / 10)))


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
