"""The vehicle part on its own: a BLE tap at the door decides like an NFC one, and the
counts reach the state file off the tap path."""

from __future__ import annotations

import json
from pathlib import Path

from edge.snapshot import SnapshotView
from edge.vehicle import STATE_FILE, Vehicle
from edge.vehicle_config import VehicleConfig
from ruang import contract

from .snapshots import body

T0 = 1_795_000_000.0


def _vehicle(tmp_path: Path, out: list[contract.Message]) -> Vehicle:
    v = Vehicle("shuttle-b1", VehicleConfig(vehicle="shuttle-b1"), out.append, tmp_path,
                clock=lambda: T0)  # fmt: skip
    v.snapshot_applied(
        SnapshotView.of(
            body(
                now=T0 - 60,
                vehicle=contract.SnapshotVehicle(vehicle="shuttle-b1", kind="shuttle", capacity=9),
                badges=(contract.SnapshotBadge(badge="ble:badge-7", person="p-7"),),
                trips=(
                    contract.SnapshotTrip(
                        trip="K9",
                        service_date="20261207",
                        start=T0,
                        end=T0 + 900,
                        capacity=9,
                        reserved=0,
                    ),
                ),
            )
        )
    )
    return v


async def test_a_ble_tap_boards_without_a_reader_to_light_and_is_counted_on_disk(
    tmp_path: Path,
) -> None:
    out: list[contract.Message] = []
    vehicle = _vehicle(tmp_path, out)
    vehicle.tap("door-ble", "ble:badge-7")
    vehicle.tap("door-ble", "ble:stranger")
    (walk_on, stranger) = out
    assert isinstance(walk_on, contract.Boarding) and isinstance(stranger, contract.Boarding)
    assert (walk_on.reader, walk_on.badge, walk_on.reason, walk_on.trip) == (
        "door-ble",
        "ble:badge-7",
        "walk_on",
        "K9",
    )
    assert walk_on.ts == T0 and walk_on.stop is None and walk_on.lat is None  # no GPS here
    assert stranger.reason == "unknown_badge"
    await vehicle.flushed()
    saved = json.loads((tmp_path / STATE_FILE).read_text())
    assert saved["boarding"]["walk_ons"] == [["K9", "20261207", 1]]

    # A restarted node takes the counts back: the same rider is not counted twice.
    again = _vehicle(tmp_path, out)
    again.restore()
    again.tap("door-ble", "ble:badge-7")
    assert len(out) == 2
    assert again.boarding.walk_ons == {("K9", "20261207"): 1}
