"""BLE badge driver: filtering, fusion, taps, registry, and scan supervision.

Time is virtual everywhere: the driver gets a fake monotonic clock, a fake wall
clock and a `sleep` that advances them and lets the simulated air send one
round of adverts, so minutes of scanning run in milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

import pytest
from bleak.exc import BleakDBusError, BleakError

from edge.devices.ble import NO_ADAPTER_MESSAGE, BleScannerDriver
from edge.devices.ble_badges import BadgeRegistry, battery_pct
from edge.devices.ble_config import (
    BleBadgeConfig,
    BleConfig,
    BleScannerConfig,
    EddystoneUidIdentity,
    IBeaconIdentity,
)
from edge.devices.ble_taps import TapDetector
from edge.devices.ble_zones import RssiFilter, ScannerPlace, ZoneFusion
from firmware_bridge.ble_adverts import (
    APPLE_COMPANY_ID,
    EDDYSTONE_SERVICE_UUID,
    RUANG_COMPANY_ID,
    Advert,
    EddystoneEid,
    EddystoneUid,
    IBeacon,
    RuangButton,
    decode_advert,
    encode_eddystone,
    encode_ibeacon,
    encode_ruang,
)
from firmware_bridge.ble_identity import compute_eid, generate_rpa
from ruang import contract
from simulators.ble import BleAirSimulator

UUID = bytes.fromhex("e2c56db5dffb48d2b060d0f5a71096e0")
IRK = bytes.fromhex("ec0234a357c8ad05341010a60a397d9b")
SECRET = bytes(range(16))
WALL0 = 1_700_000_000.0


class VirtualTime:
    """Fake clocks plus a sleep that advances them and runs hooks (the simulated air)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.hooks: list[Callable[[], object]] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL0 + self.now

    async def sleep(self, delay: float) -> None:
        self.now += delay
        for hook in self.hooks:
            hook()
        await asyncio.sleep(0)

    async def run_until(self, until: float) -> None:
        # Lets the driver task (the only sleeper) advance virtual time to `until`.
        for _ in range(100_000):
            if self.now >= until:
                return
            await asyncio.sleep(0)
        raise AssertionError("virtual time stopped advancing")


def ibeacon_badge(badge_id: str, minor: int) -> BleBadgeConfig:
    return BleBadgeConfig(
        id=badge_id, ibeacon=IBeaconIdentity(uuid=UUID.hex(), major=1, minor=minor)
    )


def ibeacon_advert(minor: int, rssi: int, address: str = "C0:00:00:00:00:01") -> Advert:
    return decode_advert(
        address, rssi, {APPLE_COMPANY_ID: encode_ibeacon(IBeacon(UUID, 1, minor, -59))}, {}
    )


def make_config(**overrides: object) -> BleConfig:
    values: dict[str, object] = {
        "enabled": True,
        "scanners": [
            BleScannerConfig(id="s-d1", zone="z1", desk="d1", adapter="hci0"),
            BleScannerConfig(id="s-d2", zone="z2", desk="d2", adapter="hci1"),
        ],
        "badges": [ibeacon_badge("ana", 7)],
    }
    values.update(overrides)
    return BleConfig.model_validate(values)


# --- RssiFilter -----------------------------------------------------------------------------


def test_filter_hysteresis_holds_near_through_dips_above_exit_threshold() -> None:
    f = RssiFilter(alpha=1.0, enter_dbm=-70, exit_dbm=-78)  # alpha 1: no smoothing, pure hysteresis
    states = [f.update("k", r, t).near for t, r in enumerate([-80, -69, -74, -77, -71, -76])]
    assert states == [False, True, True, True, True, True]
    assert f.update("k", -78, 10).near is False
    # And once out, values between the thresholds do not bring it back.
    assert [f.update("k", r, 11 + i).near for i, r in enumerate([-72, -75, -71])] == [False] * 3


def test_filter_smooths_a_single_outlier_without_flicker() -> None:
    f = RssiFilter(alpha=0.3, enter_dbm=-70, exit_dbm=-78)
    for t in range(5):
        f.update("k", -60, t)
    # One advert 30 dB down (a hand over the badge) must not make it leave.
    assert f.update("k", -90, 5).near is True
    reading = f.get("k")
    assert reading is not None and reading.rssi == pytest.approx(-69.0)


def test_filter_rejects_exit_threshold_not_below_enter() -> None:
    with pytest.raises(ValueError):
        RssiFilter(enter_dbm=-70, exit_dbm=-70)


# --- ZoneFusion -----------------------------------------------------------------------------

PLACES = [
    ScannerPlace("a", "zone-a", "desk-a"),
    ScannerPlace("b", "zone-b", None),
    ScannerPlace("c", "zone-c", None, calibration_db=0.0),
]


def feed_rounds(fusion: ZoneFusion, readings: dict[str, float], start: float, seconds: int) -> list:
    changes = []
    for t in range(seconds):
        for scanner, rssi in readings.items():
            changes += fusion.observe("ana", scanner, rssi, start + t)
    return changes


def test_fusion_picks_the_strongest_zone_with_softmax_confidence() -> None:
    fusion = ZoneFusion(PLACES, alpha=1.0, dwell_s=0)
    changes = feed_rounds(fusion, {"a": -60, "b": -66, "c": -90}, 0, 2)
    assert [(c.zone, c.desk, c.present) for c in changes] == [("zone-a", "desk-a", True)]
    expected = 1 / (1 + math.exp(-6 / 3) + math.exp(-30 / 3))
    assert fusion.estimate("ana", 1).confidence == pytest.approx(expected)
    assert 0.85 < expected < 0.9


def test_fusion_confidence_is_one_when_only_one_scanner_hears_the_badge() -> None:
    fusion = ZoneFusion(PLACES, alpha=1.0, dwell_s=0)
    feed_rounds(fusion, {"b": -60}, 0, 1)
    assert fusion.estimate("ana", 0).confidence == 1.0


def test_fusion_waits_for_dwell_time_before_reporting_arrival_and_move() -> None:
    fusion = ZoneFusion(PLACES, alpha=1.0, dwell_s=10)
    assert feed_rounds(fusion, {"a": -60}, 0, 10) == []  # t = 0..9: still dwelling
    arrived = fusion.observe("ana", "a", -60, 10)
    assert [(c.zone, c.present) for c in arrived] == [("zone-a", True)]
    # Walking past zone b for 5 s does nothing; staying there 10 s is a move.
    assert feed_rounds(fusion, {"a": -90, "b": -55}, 11, 5) == []
    assert feed_rounds(fusion, {"a": -60}, 16, 3) == []
    moved = feed_rounds(fusion, {"a": -90, "b": -55}, 19, 11)
    assert [(c.zone, c.present) for c in moved] == [("zone-a", False), ("zone-b", True)]


def test_fusion_ignores_stale_readings_and_reports_departure_after_dwell() -> None:
    fusion = ZoneFusion(PLACES, alpha=1.0, dwell_s=10, stale_s=15)
    feed_rounds(fusion, {"a": -60}, 0, 11)
    assert fusion.located("ana") == ("zone-a", "desk-a")
    assert fusion.tick(25) == []  # last reading at t=10 still fresh at 25
    assert fusion.tick(26) == []  # stale now: departure pending
    left = fusion.tick(36)
    assert [(c.zone, c.present) for c in left] == [("zone-a", False)]
    assert fusion.located("ana") is None


def test_badge_heard_weakly_from_the_floor_below_never_becomes_present() -> None:
    fusion = ZoneFusion(PLACES, alpha=0.3, enter_dbm=-70, exit_dbm=-78, dwell_s=10)
    changes = feed_rounds(fusion, {"a": -84, "b": -86, "c": -80}, 0, 600)
    changes += fusion.tick(600)
    assert changes == []
    assert fusion.estimate("ana", 599).place is None


def test_per_scanner_floor_threshold_overrides_the_global_one() -> None:
    strict = [ScannerPlace("a", "stairs", None, enter_dbm=-60, exit_dbm=-65)]
    fusion = ZoneFusion(strict, alpha=1.0, enter_dbm=-70, exit_dbm=-78, dwell_s=0)
    assert feed_rounds(fusion, {"a": -65}, 0, 5) == []
    assert len(feed_rounds(fusion, {"a": -58}, 5, 1)) == 1


# --- taps -----------------------------------------------------------------------------------

DESK = ScannerPlace("a", "zone-a", "desk-a", tap_threshold_dbm=-45)


def test_tap_needs_two_consecutive_adverts_above_the_desk_threshold() -> None:
    taps = TapDetector(adverts=2, debounce_s=3)
    assert taps.rssi("ana", DESK, -40, 0.0) is None
    assert taps.rssi("ana", DESK, -50, 0.5) is None  # streak broken
    assert taps.rssi("ana", DESK, -40, 1.0) is None
    assert taps.rssi("ana", DESK, -42, 1.5) == "desk-a"


def test_badge_left_on_the_scanner_taps_once_and_rearms_after_moving_away() -> None:
    taps = TapDetector(adverts=2, debounce_s=3)
    fired = [taps.rssi("ana", DESK, -40, t) for t in range(10)]
    assert fired.count("desk-a") == 1
    taps.rssi("ana", DESK, -70, 10)
    assert [taps.rssi("ana", DESK, -40, t) for t in (11, 12)] == [None, "desk-a"]


def test_tap_is_debounced_per_badge() -> None:
    taps = TapDetector(adverts=2, debounce_s=3)
    assert taps.rssi("ana", DESK, -40, 0) is None and taps.rssi("ana", DESK, -40, 0.5) == "desk-a"
    taps.rssi("ana", DESK, -80, 1)
    assert taps.rssi("ana", DESK, -40, 1.5) is None and taps.rssi("ana", DESK, -40, 2) is None
    assert taps.button("ana", RuangButton(1, 1), "desk-a", 2.5) is None  # still within 3 s
    assert taps.button("ana", RuangButton(1, 2), "desk-a", 3.6) == "desk-a"


def test_button_press_taps_once_per_counter_value() -> None:
    taps = TapDetector(debounce_s=0)
    assert taps.button("ana", RuangButton(1, 5), "desk-a", 0) == "desk-a"
    # The same frame re-delivered (BlueZ caches manufacturer data) or released: no new tap.
    assert taps.button("ana", RuangButton(1, 5), "desk-a", 1) is None
    assert taps.button("ana", RuangButton(0, 5), "desk-a", 2) is None
    assert taps.button("ana", RuangButton(0, 6), "desk-a", 3) is None  # counter moved, not pressed
    assert taps.button("ana", RuangButton(1, 7), "desk-a", 4) == "desk-a"
    assert taps.button("ana", RuangButton(1, 8), None, 5) is None  # pressed away from any desk


def test_zone_scanner_without_desk_never_taps() -> None:
    taps = TapDetector()
    zone_only = ScannerPlace("z", "zone-a", None)
    assert [taps.rssi("ana", zone_only, -30, t) for t in range(4)] == [None] * 4


# --- BadgeRegistry --------------------------------------------------------------------------


def registry() -> BadgeRegistry:
    return BadgeRegistry(
        [
            ibeacon_badge("ana", 7),
            BleBadgeConfig(
                id="budi",
                eddystone_uid=EddystoneUidIdentity(
                    namespace="5275616e67424c450001", instance="000000000042"
                ),
            ),
            BleBadgeConfig(id="citra", irk_hex=IRK.hex()),
            BleBadgeConfig(id="dewi", eid_secret_hex=SECRET.hex()),
        ]
    )


def test_registry_resolves_every_identity_kind() -> None:
    reg = registry()
    uid = EddystoneUid(-20, b"RuangBLE\x00\x01", bytes.fromhex("000000000042"))
    eid = EddystoneEid(-20, compute_eid(SECRET, WALL0))
    svc = EDDYSTONE_SERVICE_UUID
    assert reg.resolve(ibeacon_advert(7, -60), WALL0) == "ana"
    assert reg.resolve(decode_advert("a", -60, {}, {svc: encode_eddystone(uid)}), WALL0) == "budi"
    assert reg.resolve(decode_advert(generate_rpa(IRK), -60, {}, {}), WALL0) == "citra"
    assert reg.resolve(decode_advert("b", -60, {}, {svc: encode_eddystone(eid)}), WALL0) == "dewi"
    assert reg.ids == {"ana", "budi", "citra", "dewi"}


def test_registry_returns_none_for_strangers_and_replayed_eids() -> None:
    reg = registry()
    assert reg.resolve(ibeacon_advert(8, -60), WALL0) is None
    assert reg.resolve(decode_advert(generate_rpa(bytes(16)), -60, {}, {}), WALL0) is None
    old = EddystoneEid(-20, compute_eid(SECRET, WALL0 - 3 * 512))
    assert (
        reg.resolve(
            decode_advert("b", -60, {}, {EDDYSTONE_SERVICE_UUID: encode_eddystone(old)}), WALL0
        )
        is None
    )


def test_registry_attributes_a_button_only_advert_to_the_address_of_the_last_identified_one() -> (
    None
):
    reg = registry()
    reg.resolve(ibeacon_advert(7, -60, address="C0:11:22:33:44:55"), WALL0)
    button = decode_advert(
        "C0:11:22:33:44:55", -60, {RUANG_COMPANY_ID: encode_ruang(RuangButton(1, 1))}, {}
    )
    assert reg.resolve(button, WALL0) == "ana"
    assert (
        reg.resolve(
            decode_advert("C0:99:99:99:99:99", -60, {RUANG_COMPANY_ID: b"R\x01\x01"}, {}), WALL0
        )
        is None
    )


def test_badge_config_without_identity_is_refused() -> None:
    with pytest.raises(ValueError, match="no identity"):
        BleBadgeConfig(id="x")


def test_config_refuses_exit_threshold_above_enter() -> None:
    with pytest.raises(ValueError, match="exit_dbm"):
        make_config(enter_dbm=-80, exit_dbm=-70)


@pytest.mark.parametrize(
    ("mv", "pct"), [(3000, 100), (3300, 100), (2500, 50), (2000, 0), (1800, 0), (0, None)]
)
def test_battery_percent_is_linear_between_two_and_three_volts(mv: int, pct: int | None) -> None:
    assert battery_pct(mv) == pct


# --- driver ---------------------------------------------------------------------------------


class Rig:
    """A driver on the simulated air with virtual time; collects what it publishes."""

    def __init__(self, config: BleConfig | None = None) -> None:
        self.vt = VirtualTime()
        self.air = BleAirSimulator(seed=7, noise_db=1.0, wall_clock=self.vt.wall)
        self.vt.hooks.append(self.air.step)
        self.published: list[contract.Message] = []
        self.taps: list[tuple[str, str]] = []
        self.driver = BleScannerDriver(
            config or make_config(),
            "node-1",
            self.published.append,
            on_tap=self._on_tap,
            scanner_factory=self.air.scanner_factory,
            clock=self.vt.clock,
            wall_clock=self.vt.wall,
            sleep=self.vt.sleep,
        )
        self.task: asyncio.Task[None] | None = None

    async def _on_tap(self, desk: str, badge: str) -> None:
        self.taps.append((desk, badge))

    async def __aenter__(self) -> Rig:
        self.task = asyncio.create_task(self.driver.run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        assert not self.task.done(), "driver stopped on its own"
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task
        assert self.air.active == {}, "scans left running after cancel"

    async def run_for(self, seconds: float) -> None:
        await self.vt.run_until(self.vt.now + seconds)

    def presence(self) -> list[tuple[str, str | None, bool]]:
        return [
            (m.zone, m.desk, m.present)
            for m in self.published
            if isinstance(m, contract.BadgePresence)
        ]


async def test_badge_walking_up_to_a_desk_through_bleak_produces_presence_and_a_tap() -> None:
    async with Rig() as rig:
        rig.air.add_ibeacon("ana", UUID, 1, 7, {"hci0": -90, "hci1": -88})
        await rig.run_for(30)
        assert rig.presence() == []  # in the corridor: heard, not near anything
        rig.air.move("ana", {"hci0": -58, "hci1": -80})  # sits down at d1
        await rig.run_for(9)
        assert rig.presence() == []  # dwell not over yet
        await rig.run_for(6)
        assert rig.presence() == [("z1", "d1", True)]
        badge_msg = next(m for m in rig.published if isinstance(m, contract.BadgePresence))
        assert badge_msg.badge == "ble:ana" and badge_msg.confidence > 0.9
        assert badge_msg.ts >= WALL0  # stamped by the injected wall clock
        desk = [m for m in rig.published if isinstance(m, contract.Presence)]
        assert [(m.desk, m.present, m.source) for m in desk] == [("d1", True, "ble")]
        rig.air.move("ana", {"hci0": -38, "hci1": -80})  # holds it against the desk scanner
        await rig.run_for(4)
        assert rig.taps == [("d1", "ble:ana")]
        health = rig.driver.health()
        assert health.online and health.kind == "ble_scanner" and health.rejected_frames == 0
        assert rig.driver.stats.adverts > 90 and rig.driver.stats.unknown == 0


async def test_button_press_through_bleak_taps_at_the_nearest_desk() -> None:
    async with Rig() as rig:
        rig.air.add_ibeacon("ana", UUID, 1, 7, {"hci0": -80, "hci1": -60})
        await rig.run_for(5)
        rig.air.press_button("ana")
        await rig.run_for(5)
        assert rig.taps == [("d2", "ble:ana")]


async def test_unknown_badges_are_counted_and_ignored() -> None:
    async with Rig() as rig:
        rig.air.add_ibeacon("stranger", UUID, 1, 999, {"hci0": -40})
        await rig.run_for(10)
        assert rig.presence() == [] and rig.taps == []
        assert rig.driver.stats.unknown >= 9


async def test_rpa_and_eid_badges_are_located_through_bleak() -> None:
    config = make_config(
        badges=[
            BleBadgeConfig(id="citra", irk_hex=IRK.hex()),
            BleBadgeConfig(id="dewi", eid_secret_hex=SECRET.hex()),
        ]
    )
    async with Rig(config) as rig:
        rig.air.rpa_rotate_every = 5
        rig.air.add_rpa("citra", IRK, {"hci0": -55})
        rig.air.add_eid("dewi", SECRET, {"hci1": -55})
        await rig.run_for(15)
        assert sorted(rig.presence()) == [("z1", "d1", True), ("z2", "d2", True)]


async def test_badge_battery_from_tlm_is_published_once_per_interval() -> None:
    async with Rig(
        make_config(
            badges=[
                BleBadgeConfig(
                    id="budi",
                    eddystone_uid=EddystoneUidIdentity(
                        namespace="5275616e67424c450001", instance="000000000042"
                    ),
                )
            ]
        )
    ) as rig:
        badge = rig.air.add_eddystone_uid(
            "budi", b"RuangBLE\x00\x01", bytes.fromhex("000000000042"), {"hci0": -60}
        )
        badge.battery_mv = 2750
        await rig.run_for(120)
        health = [m for m in rig.published if isinstance(m, contract.DeviceHealth)]
        assert len(health) == 1
        assert health[0].kind == "ble_badge" and health[0].device == "budi"
        assert health[0].battery_pct == 75 and health[0].online


async def test_watchdog_restarts_a_silent_scan_and_counts_it() -> None:
    async with Rig(make_config(silence_s=60)) as rig:
        rig.air.add_ibeacon("ana", UUID, 1, 7, {"hci0": -60, "hci1": -60})
        await rig.run_for(30)
        starts = rig.air.starts
        rig.air.silent = True
        await rig.run_for(55)
        assert rig.driver.stats.restarts == 0
        await rig.run_for(10)
        assert rig.driver.stats.restarts == 2  # both adapters went silent
        assert rig.air.starts == starts + 2
        rig.air.silent = False
        await rig.run_for(120)
        assert rig.driver.stats.restarts == 2  # adverts flow again: no more restarts
        assert "2 scan restarts" in (rig.driver.health().detail or "")


async def test_in_progress_on_restart_is_retried_with_backoff() -> None:
    config = make_config(scanners=[BleScannerConfig(id="s-d1", zone="z1", desk="d1")])
    async with Rig(config) as rig:
        rig.air.add_ibeacon("ana", UUID, 1, 7, {"hci0": -60})
        await rig.run_for(5)
        rig.air.silent = True
        rig.air.fail_next_start = BleakDBusError(
            "org.bluez.Error.InProgress", ["Operation already in progress"]
        )
        await rig.run_for(61)
        assert rig.driver.stats.restarts == 1 and rig.driver.stats.start_failures == 1
        assert not rig.driver.health().online
        assert "InProgress" in (rig.driver.health().detail or "")
        rig.air.silent = False
        await rig.run_for(35)  # backoff is capped at 30 s
        assert rig.driver.health().online and rig.air.active


async def test_plain_bleak_error_on_start_is_retried_too() -> None:
    rig = Rig()
    rig.air.fail_next_start = BleakError("adapter busy")
    async with rig:
        await rig.run_for(40)
        assert len(rig.air.active) == 2 and rig.driver.stats.start_failures == 1


async def test_no_adapter_logs_one_clear_error_reports_offline_and_keeps_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = make_config(scanners=[BleScannerConfig(id="s-d1", zone="z1", desk="d1")])
    caplog.set_level(logging.INFO, logger="edge.devices.ble")
    rig = Rig(config)
    rig.air.no_adapter = True
    async with rig:
        await rig.run_for(300)
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and NO_ADAPTER_MESSAGE in errors[0].getMessage()
        health = rig.driver.health()
        assert not health.online and "no Bluetooth adapter or D-Bus" in (health.detail or "")
        assert 5 <= rig.air.starts <= 7  # retried about once a minute, not hammered
        rig.air.no_adapter = False  # someone plugs in a dongle
        await rig.run_for(61)
        assert rig.driver.health().online
        assert any("available again" in r.getMessage() for r in caplog.records)


async def test_feed_accepts_readings_from_remote_scanners() -> None:
    config = make_config(
        scanners=[BleScannerConfig(id="remote-1", zone="z9", desk="d9", adapter=None)], dwell_s=0
    )
    async with Rig(config) as rig:
        for _ in range(3):
            rig.driver.feed("remote-1", ibeacon_advert(7, -40))
        await asyncio.sleep(0)  # the async tap handler runs as a task
        assert rig.presence() == [("z9", "d9", True)]
        assert rig.taps == [("d9", "ble:ana")]
        assert rig.driver.health().online  # nothing local to scan: fed readings only
        rig.driver.feed("nobody", ibeacon_advert(7, -40))
        assert rig.driver.stats.rejected == 1


async def test_disabled_driver_returns_immediately() -> None:
    driver = BleScannerDriver(make_config(enabled=False), "node-1", lambda m: None)
    await driver.run()
    assert not driver.health().online
