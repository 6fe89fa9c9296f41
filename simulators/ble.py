"""Simulated BLE air: badges advertising into bleak without an adapter or D-Bus.

`SimulatedScannerBackend` is a bleak scanner backend (a `BaseBleakScanner`), so
adverts enter through bleak's own facade and callback path
(`BleakScanner(callback, backend=SimulatedScannerBackend, air=...)`): the
backend calls `create_or_update_device()` and `call_detection_callbacks()`
exactly as the BlueZ backend does. `BleAirSimulator` holds the badges, what
each adapter hears of them (mean RSSI plus Gaussian noise), and the failure
knobs the edge driver must survive: a scan that goes silent, a start that
fails with BlueZ's "InProgress", and no adapter at all.

Nothing here sleeps: `step()` is one advertising interval for every badge, so
tests and demos decide how time passes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from bleak import BleakScanner
from bleak.backends.scanner import (
    AdvertisementData,
    AdvertisementDataCallback,
    BaseBleakScanner,
)

from firmware_bridge.ble_adverts import (
    APPLE_COMPANY_ID,
    EDDYSTONE_SERVICE_UUID,
    RUANG_COMPANY_ID,
    EddystoneEid,
    EddystoneTlm,
    EddystoneUid,
    IBeacon,
    RuangButton,
    encode_eddystone,
    encode_ibeacon,
    encode_ruang,
)
from firmware_bridge.ble_identity import DEFAULT_ROTATION_EXPONENT, compute_eid, generate_rpa

BadgeMode = Literal["ibeacon", "eddystone_uid", "eid", "rpa"]


class SimulatedScannerBackend(BaseBleakScanner):
    """A bleak backend fed by a `BleAirSimulator` instead of BlueZ."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        *,
        air: BleAirSimulator,
        bluez: dict[str, Any] | None = None,
        **_: Any,  # the facade also passes `cb=` and other platforms' options
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self.air = air
        self.adapter: str = (bluez or {}).get("adapter") or "hci0"

    async def start(self) -> None:
        self.air._starting(self)
        self.seen_devices = {}  # bleak's contract: cleared when scanning starts
        self.air.active[self.adapter] = self

    async def stop(self) -> None:
        if self.air.active.get(self.adapter) is self:
            del self.air.active[self.adapter]

    def deliver(self, address: str, data: AdvertisementData) -> None:
        if not self.is_allowed_uuid(data.service_uuids):
            return
        device = self.create_or_update_device(address, address, data.local_name, None, data)
        self.call_detection_callbacks(device, data)


@dataclass
class SimulatedBadge:
    badge_id: str
    mode: BadgeMode
    rssi: dict[str, float]  # adapter -> mean RSSI (dBm); an absent adapter does not hear it
    address: str
    ibeacon: IBeacon | None = None
    uid: EddystoneUid | None = None
    eid_secret: bytes | None = None
    irk: bytes | None = None
    battery_mv: int = 2900
    tlm_every: int = 10  # every n-th advert carries TLM (0: never)
    button_counter: int = 0
    button_adverts_left: int = 0
    sent: int = 0
    uptime_ds: int = 0


@dataclass
class BleAirSimulator:
    seed: int = 0
    noise_db: float = 2.0
    interval_s: float = 1.0  # advertising interval each step() stands for
    wall_clock: Callable[[], float] = time.time
    eid_rotation_exponent: int = DEFAULT_ROTATION_EXPONENT
    rpa_rotate_every: int = 0  # steps between RPA changes (0: never)
    # Knobs
    silent: bool = False  # the scan keeps "running" but nothing is delivered
    no_adapter: bool = False  # start() raises FileNotFoundError, like bleak without D-Bus
    fail_next_start: BaseException | None = None  # raised once by the next start()
    badges: dict[str, SimulatedBadge] = field(default_factory=dict)
    active: dict[str, SimulatedScannerBackend] = field(default_factory=dict)
    starts: int = 0
    steps: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    # --- scanners -----------------------------------------------------------------------

    def scanner_factory(
        self, detection_callback: AdvertisementDataCallback, **kwargs: Any
    ) -> BleakScanner:
        """A real `BleakScanner` facade on the simulated backend (pass as scanner_factory)."""
        return BleakScanner(detection_callback, backend=SimulatedScannerBackend, air=self, **kwargs)

    def _starting(self, backend: SimulatedScannerBackend) -> None:
        self.starts += 1
        if self.no_adapter:
            raise FileNotFoundError(2, "No such file or directory", "/run/dbus/system_bus_socket")
        failure, self.fail_next_start = self.fail_next_start, None
        if failure is not None:
            raise failure

    # --- badges -------------------------------------------------------------------------

    def _address(self) -> str:
        # A static random address: top two bits 0b11.
        value = (0b11 << 46) | self._rng.getrandbits(46)
        return ":".join(f"{b:02X}" for b in value.to_bytes(6, "big"))

    def add_ibeacon(
        self, badge_id: str, uuid: bytes, major: int, minor: int, rssi: dict[str, float]
    ) -> SimulatedBadge:
        badge = SimulatedBadge(
            badge_id,
            "ibeacon",
            dict(rssi),
            self._address(),
            ibeacon=IBeacon(uuid, major, minor, -59),
        )
        self.badges[badge_id] = badge
        return badge

    def add_eddystone_uid(
        self, badge_id: str, namespace: bytes, instance: bytes, rssi: dict[str, float]
    ) -> SimulatedBadge:
        uid = EddystoneUid(-20, namespace, instance)
        badge = SimulatedBadge(badge_id, "eddystone_uid", dict(rssi), self._address(), uid=uid)
        self.badges[badge_id] = badge
        return badge

    def add_eid(self, badge_id: str, secret: bytes, rssi: dict[str, float]) -> SimulatedBadge:
        badge = SimulatedBadge(badge_id, "eid", dict(rssi), self._address(), eid_secret=secret)
        self.badges[badge_id] = badge
        return badge

    def add_rpa(self, badge_id: str, irk: bytes, rssi: dict[str, float]) -> SimulatedBadge:
        prand = (0b01 << 22) | self._rng.randrange(1, (1 << 22) - 1)
        badge = SimulatedBadge(badge_id, "rpa", dict(rssi), generate_rpa(irk, prand), irk=irk)
        self.badges[badge_id] = badge
        return badge

    def move(self, badge_id: str, rssi: dict[str, float]) -> None:
        """What each adapter now hears of the badge (the badge walked somewhere)."""
        self.badges[badge_id].rssi = dict(rssi)

    def press_button(self, badge_id: str, adverts: int = 3) -> None:
        """The badge's button: the next `adverts` adverts carry the pressed flag."""
        badge = self.badges[badge_id]
        badge.button_counter = (badge.button_counter + 1) & 0xFF
        badge.button_adverts_left = adverts

    # --- air ----------------------------------------------------------------------------

    def advertisement(
        self, badge: SimulatedBadge
    ) -> tuple[str, dict[int, bytes], dict[str, bytes]]:
        """The next advert of `badge`: (address, manufacturer_data, service_data)."""
        badge.sent += 1
        badge.uptime_ds += round(self.interval_s * 10)
        manufacturer: dict[int, bytes] = {}
        service: dict[str, bytes] = {}
        tlm_now = badge.tlm_every > 0 and badge.sent % badge.tlm_every == 0
        tlm = EddystoneTlm(badge.battery_mv, 21.5, badge.sent, badge.uptime_ds)
        if badge.mode == "ibeacon" and badge.ibeacon is not None:
            manufacturer[APPLE_COMPANY_ID] = encode_ibeacon(badge.ibeacon)
        elif badge.mode == "eddystone_uid" and badge.uid is not None and not tlm_now:
            service[EDDYSTONE_SERVICE_UUID] = encode_eddystone(badge.uid)
        elif badge.mode == "eid" and badge.eid_secret is not None and not tlm_now:
            eid = compute_eid(badge.eid_secret, self.wall_clock(), self.eid_rotation_exponent)
            service[EDDYSTONE_SERVICE_UUID] = encode_eddystone(EddystoneEid(-20, eid))
        if tlm_now:
            # Eddystone badges interleave TLM with their identity frame on the same
            # address; others carry it alongside.
            service[EDDYSTONE_SERVICE_UUID] = encode_eddystone(tlm)
        if badge.mode == "rpa" and badge.irk is not None and self.rpa_rotate_every:
            if badge.sent % self.rpa_rotate_every == 0:
                badge.address = generate_rpa(badge.irk)
        if badge.button_counter:
            pressed = badge.button_adverts_left > 0
            badge.button_adverts_left = max(0, badge.button_adverts_left - 1)
            manufacturer[RUANG_COMPANY_ID] = encode_ruang(
                RuangButton(1 if pressed else 0, badge.button_counter)
            )
        return badge.address, manufacturer, service

    def step(self) -> int:
        """One advertising interval: every badge advertises once; returns adverts delivered."""
        self.steps += 1
        delivered = 0
        for badge in list(self.badges.values()):
            address, manufacturer, service = self.advertisement(badge)
            if self.silent:
                continue
            for adapter, backend in list(self.active.items()):
                mean = badge.rssi.get(adapter)
                if mean is None:
                    continue
                rssi = (
                    round(mean + self._rng.gauss(0.0, self.noise_db))
                    if self.noise_db
                    else round(mean)
                )
                data = AdvertisementData(
                    local_name=None,
                    manufacturer_data=dict(manufacturer),
                    service_data=dict(service),
                    service_uuids=[EDDYSTONE_SERVICE_UUID] if service else [],
                    tx_power=None,
                    rssi=max(-127, min(20, rssi)),
                    platform_data=(),
                )
                backend.deliver(address, data)
                delivered += 1
        return delivered
