"""A vehicle node end to end on ptys and a real Mosquitto: door reader taps -> LED, beep, events."""

from __future__ import annotations

import time
from pathlib import Path

import aiomqtt
import pytest

from edge.agent import EdgeAgent
from edge.devices.gps import GpsConfig
from edge.settings import EdgeSettings
from edge.vehicle import Vehicle
from edge.vehicle_config import DoorReaderConfig, VehicleConfig
from firmware_bridge.deskunit import LedPattern
from launch import devservers
from ruang import contract
from simulators.deskunit import DeskUnitSimulator
from simulators.riders import ParkedGps, StopPlace, door_reader
from tests.helpers import eventually

from .snapshots import body, keypair, sign
from .test_agent import of_type, running, watcher

pytestmark = pytest.mark.servers

ALICE, BOB = "04A1B2C3", "04B1B2C3"
STOPS = (
    StopPlace("HOUSING-A", -0.9900, 116.6900),
    StopPlace("KIPP-1", -0.9740, 116.7040),
)


async def _push(
    broker: devservers.Mosquitto, snapshot: contract.Snapshot, *, clear: bool = False
) -> None:
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        payload = b"" if clear else contract.encode(snapshot)
        await client.publish(contract.topic_for(snapshot), payload, qos=1, retain=True)


def _settings(
    tmp_path: Path, node: str, url: str, kind: str, reader: str, gps: str
) -> EdgeSettings:
    return EdgeSettings(
        node_id=node, mqtt_url=url, state_dir=tmp_path / "edge",
        snapshot_public_key=tmp_path / "snap.pub",
        gps=[GpsConfig(device="gps-1", vehicle=node, port=gps, publish_interval_s=0.5)],
        vehicle=VehicleConfig(
            vehicle=node, kind=kind,  # type: ignore[arg-type]
            readers=[DoorReaderConfig(id="door-1", port=reader)],
        ),
    )  # fmt: skip


async def test_shuttle_door_reader_lets_the_reserved_rider_on_at_the_stop_and_refuses_a_stranger(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    node = "shuttle-t1"
    key, pem = keypair()
    (tmp_path / "snap.pub").write_bytes(pem)
    now = time.time()
    snap = sign(key, node, body(
        now=now,
        vehicle=contract.SnapshotVehicle(vehicle=node, kind="shuttle", capacity=20),
        badges=(contract.SnapshotBadge(badge=ALICE, person="p-alice"),
                contract.SnapshotBadge(badge=BOB, person="p-bob")),
        trips=(contract.SnapshotTrip(
            trip="K1-0715", service_date="20261207", start=now - 60, end=now + 1800,
            capacity=20, reserved=1,
            stops=tuple(contract.SnapshotStop(stop=s.stop, lat=s.lat, lon=s.lon) for s in STOPS),
        ),),
        seats=(contract.SnapshotSeat(id="r-1", person="p-alice", trip="K1-0715",
                                     service_date="20261207", from_stop="KIPP-1"),),
    ))  # fmt: skip
    await _push(mosquitto_server, snap)
    parked = ParkedGps(STOPS, time_factor=10)
    try:
        async with door_reader() as reader, parked.gps:
            parked.park("KIPP-1")
            settings = _settings(tmp_path, node, mosquitto_server.url, "shuttle", reader.path,
                                 parked.path)  # fmt: skip
            async with (
                watcher(mosquitto_server.url, node) as seen,
                running(EdgeAgent(settings)) as agent,
            ):
                vehicle = agent.vehicle
                assert vehicle is not None

                async def ready() -> bool:
                    return (
                        vehicle.boarding.snapshot is not None
                        and vehicle.fix() is not None
                        and (vehicle.drivers["door-1"].state.online)
                    )

                await eventually(ready, what="snapshot, fix and door reader")
                await reader.tap(ALICE)
                await reader.wait_led(
                    lambda led: led.pattern == LedPattern.SOLID and led.g > 150, timeout=5
                )
                await reader.tap("DEADBEEF")
                await reader.wait_led(
                    lambda led: led.pattern == LedPattern.BLINK and led.r > 150, timeout=5
                )
                await reader.tap(BOB)
                await reader.wait_led(lambda led: led.pattern == LedPattern.PULSE, timeout=5)

                async def three() -> list[contract.Message]:
                    return (
                        of_type(seen, contract.Boarding)
                        if len(of_type(seen, contract.Boarding)) == 3
                        else []
                    )

                events = await eventually(three, what="three boarding events")
                await eventually(lambda: _true(len(reader.beeps) == 3), what="three beeps")
    finally:
        await _push(mosquitto_server, snap, clear=True)
    alice, stranger, bob = events
    assert isinstance(alice, contract.Boarding) and isinstance(bob, contract.Boarding)
    assert (alice.allowed, alice.reason, alice.reservation) == (True, "reserved", "r-1")
    assert (alice.trip, alice.service_date, alice.stop, alice.reader) == (
        "K1-0715",
        "20261207",
        "KIPP-1",
        "door-1",
    )
    assert alice.lat is not None and abs(alice.lat - -0.9740) < 0.0005
    assert (stranger.allowed, stranger.reason) == (False, "unknown_badge")  # type: ignore[attr-defined]
    assert (bob.allowed, bob.reason, bob.stop) == (True, "walk_on", "KIPP-1")
    # One beep for a reservation, three short for a refusal, two for a walk-on.
    assert [b.count for b in reader.beeps] == [1, 3, 2]
    # The door reader's own chatter (unit status, heartbeats) names no desk in the cloud.
    assert not of_type(seen, contract.UnitStatus)


async def test_pool_car_is_picked_up_and_returned_by_the_booked_badge(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    node = "car-t1"
    key, pem = keypair()
    (tmp_path / "snap.pub").write_bytes(pem)
    now = time.time()
    snap = sign(key, node, body(
        now=now,
        vehicle=contract.SnapshotVehicle(vehicle=node, kind="poolcar", capacity=4),
        badges=(contract.SnapshotBadge(badge=ALICE, person="p-alice"),
                contract.SnapshotBadge(badge=BOB, person="p-bob")),
        car_bookings=(contract.SnapshotCarBooking(id="pc-17", person="p-alice",
                                                  start=now - 60, end=now + 3600),),
    ))  # fmt: skip
    await _push(mosquitto_server, snap)
    parked = ParkedGps(STOPS, time_factor=10)
    try:
        async with door_reader() as reader, parked.gps:
            settings = _settings(tmp_path, node, mosquitto_server.url, "poolcar", reader.path,
                                 parked.path)  # fmt: skip
            async with watcher(mosquitto_server.url, node) as seen:
                # Bob (no booking) and Alice (pick-up); then the agent restarts, and
                # Alice's next tap is still a return, not a second pick-up.
                for badges in ((BOB, ALICE), (ALICE,)):
                    async with running(EdgeAgent(settings)) as agent:
                        vehicle = agent.vehicle
                        assert vehicle is not None
                        await _taps(vehicle, reader, badges)
                        await vehicle.flushed()

                async def three() -> list[contract.Message]:
                    # By message id: the first agent's events may go out again after the
                    # restart (not acknowledged by any cloud here), the cloud drops repeats.
                    uses = list({m.id: m for m in of_type(seen, contract.PoolCarUse)}.values())
                    return sorted(uses, key=lambda m: m.ts) if len(uses) == 3 else []

                refused, pickup, back = await eventually(three, what="three pool-car events")
    finally:
        await _push(mosquitto_server, snap, clear=True)
    assert (refused.action, refused.reason) == ("refused", "no_booking")  # type: ignore[attr-defined]
    assert (pickup.action, pickup.booking) == ("pickup", "pc-17")  # type: ignore[attr-defined]
    assert (back.action, back.reason) == ("return", "returned")  # type: ignore[attr-defined]
    # The car was handed back: nobody holds it.
    assert vehicle.cars.holder is None


async def _taps(vehicle: Vehicle, reader: DeskUnitSimulator, badges: tuple[str, ...]) -> None:
    async def ready() -> bool:
        return vehicle.cars.snapshot is not None and vehicle.drivers["door-1"].state.online

    await eventually(ready, what="snapshot and reader")
    for n, badge in enumerate(badges, start=1):
        await reader.tap(badge)

        async def decided(n: int = n) -> bool:
            return vehicle.decided >= n

        await eventually(decided, what=f"tap {n} decided")


async def _true(value: bool) -> bool:
    return value
