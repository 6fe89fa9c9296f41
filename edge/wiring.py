"""Device wiring: every driver of a node, built from its settings.

One place knows which settings become which drivers: desk units (served by
`Desks`), radars, GPS receivers, door controllers (deciding with `Doors`'
allow-list and audit log), the BLE scanner (whose taps go to `Desks`, or to the
vehicle on a vehicle node) and a vehicle's door readers (edge/vehicle.py). The
agent only runs what comes back, each under its own watchdog.
"""

from __future__ import annotations

from typing import Any

from .desks import Desks
from .devices import DeviceDriver, Publish
from .devices.ble import BleScannerDriver
from .devices.door import controllers_for
from .devices.door_keys import load_node_key
from .devices.gps import GpsDriver
from .devices.radar import RadarDriver
from .doors import Doors
from .settings import EdgeSettings
from .snapshot import SnapshotStore, load_trusted_keys
from .vehicle import Vehicle


def open_snapshots(settings: EdgeSettings) -> SnapshotStore:
    """The cloud's last signed snapshot (bookings, badges): taps and doors decide from it."""
    snapshots = SnapshotStore(
        settings.state_dir / "snapshot.json",
        load_trusted_keys([settings.snapshot_public_key, *settings.snapshot_public_keys]),
    )
    snapshots.load()
    return snapshots


def open_vehicle(
    settings: EdgeSettings, publish: Publish, snapshots: SnapshotStore
) -> Vehicle | None:
    """The vehicle part of a vehicle node (None elsewhere), deciding from the last snapshot."""
    if settings.vehicle is None:
        return None
    vehicle = Vehicle(settings.node_id, settings.vehicle, publish, settings.state_dir)
    vehicle.snapshot_applied(snapshots.current)
    vehicle.restore()
    return vehicle


def wire_desk_units(settings: EdgeSettings, desks: Desks) -> None:
    desks.drivers = {unit.desk: desks.driver_for(unit) for unit in settings.desk_units}


def build_devices(
    settings: EdgeSettings,
    publish: Publish,
    *,
    desks: Desks,
    doors: Doors,
    vehicle: Vehicle | None = None,
    ble_scanner_factory: Any = None,
) -> list[DeviceDriver]:
    """The drivers of every device kind but desk units, each supervised on its own."""
    node = settings.node_id
    devices: list[DeviceDriver] = []
    devices += [RadarDriver(cfg, node, publish) for cfg in settings.radars]
    gps = [GpsDriver(cfg, node, publish) for cfg in settings.gps]
    devices += gps
    if vehicle is not None:
        vehicle.attach_gps(gps)
        devices += vehicle.readers
    if doors.policy is not None and doors.audit is not None:
        devices += controllers_for(
            settings.doors,
            node_id=node,
            publish=publish,
            policy=doors.policy,
            audit=doors.audit,
            kek=load_node_key(settings.node_key_file),
        )
    if settings.ble.enabled:
        # A simulator plugs in its own bleak backend here; real nodes use BleakScanner.
        extra = {"scanner_factory": ble_scanner_factory} if ble_scanner_factory else {}
        on_tap = vehicle.tap if vehicle is not None else desks.tap
        devices.append(BleScannerDriver(settings.ble, node, publish, on_tap=on_tap, **extra))
    return devices
