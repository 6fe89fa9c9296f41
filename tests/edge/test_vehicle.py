"""The vehicle part on its own: a BLE tap at the door decides like an NFC one, and the
counts reach the state file off the tap path."""

from __future__ import annotations

import json
from pathlib import Path

from edge.snapshot import SnapshotView
from edge.vehicle import Vehicle
from edge.vehicle_config import VehicleConfig
from edge.vehicle_state import FILE_NAME
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
                badges=(
                    contract.SnapshotBadge(badge="ble:badge-7", person="p-7"),
                    contract.SnapshotBadge(badge="ble:badge-8", person="p-8"),
                ),
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
    lines = [json.loads(line) for line in (tmp_path / FILE_NAME).read_text().splitlines()]
    assert lines[-1] == {"b": ["K9", "20261207", "p-7", "walk_on", None]}

    # A restarted node takes the counts back: the same rider is not counted twice.
    again = _vehicle(tmp_path, out)
    again.restore()
    again.tap("door-ble", "ble:badge-7")
    assert len(out) == 2
    assert again.boarding.walk_ons == {("K9", "20261207"): 1}


async def test_the_journal_is_compacted_at_a_new_snapshot_and_a_torn_line_is_skipped(
    tmp_path: Path,
) -> None:
    out: list[contract.Message] = []
    vehicle = _vehicle(tmp_path, out)
    vehicle.tap("door-ble", "ble:badge-7")
    await vehicle.flushed()
    # A crash mid-write leaves half a line: only that line is lost, and the next
    # rider's line after the restart is whole.
    _tear(tmp_path / FILE_NAME)
    again = _vehicle(tmp_path, out)
    again.restore()
    assert again.boarding.walk_ons == {("K9", "20261207"): 1}
    again.tap("door-ble", "ble:badge-8")
    await again.flushed()
    third = _vehicle(tmp_path, out)
    third.restore()
    assert third.boarding.walk_ons == {("K9", "20261207"): 2}
    # A snapshot without the trip: the journal is rewritten without it.
    assert again.boarding.snapshot is not None
    again.snapshot_applied(
        SnapshotView.of(again.boarding.snapshot.body.model_copy(update={"trips": ()})),
        compact=True,
    )
    await again.flushed()
    (line,) = (tmp_path / FILE_NAME).read_text().splitlines()
    assert json.loads(line) == {"state": {"aboard": [], "car": None}}


def _tear(path: Path) -> None:
    with open(path, "a") as f:
        f.write('{"b": ["K9", "2026')
