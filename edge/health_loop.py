"""Node health: the periodic `NodeHealth` and device health reports, and the status file.

`NodeReporter` reads the node (edge/health.py), its desk units, the uplink and
outbox, the snapshot store and the watchdog, and every health interval
publishes a `NodeHealth` plus one `DeviceHealth` per device, and rewrites
state_dir/status.json (edge/status.py) for `ruang edge status`. Its loop beats
its own watchdog like every other subsystem.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from ruang import contract

from . import health as node_health
from .devices import DeviceDriver
from .devices.deskunit import DeskUnitDriver
from .settings import EdgeSettings
from .snapshot import SnapshotStore
from .status import NodeStatus, write_status
from .uplink import Uplink
from .watchdog import Watchdog
from .watchdog import beat as watchdog_beat

# NodeHealth.alarms items are Text128 (ruang/contract.py).
ALARM_MAX = 128


class NodeReporter:
    """Health and status of one node; see the module docstring."""

    def __init__(
        self,
        *,
        settings: Callable[[], EdgeSettings],
        config_version: Callable[[], int | None],
        desk_units: Callable[[], Sequence[DeskUnitDriver]],
        devices: Sequence[DeviceDriver],
        uplink: Uplink,
        snapshots: SnapshotStore,
        watchdog: Watchdog,
    ) -> None:
        self._settings = settings
        self._config_version = config_version
        self._desk_units = desk_units
        self._devices = devices
        self._uplink = uplink
        self._snapshots = snapshots
        self._watchdog = watchdog
        self.node = settings().node_id
        self._started = time.monotonic()
        self._cpu = node_health.CpuMeter()

    def health(self) -> contract.NodeHealth:
        units = self._desk_units()
        uplink = self._uplink
        return contract.NodeHealth(
            node=self.node,
            uptime_s=time.monotonic() - self._started,
            rss_bytes=node_health.rss_bytes(),
            rejected_frames=sum(d.rejected_frames for d in units),
            mqtt_reconnects=uplink.stats.reconnects,
            units_online=sum(1 for d in units if d.state.online),
            cpu_pct=self._cpu.read(),
            mem_available_bytes=node_health.mem_available_bytes(),
            disk_free_bytes=node_health.disk_free_bytes(self._settings().state_dir),
            temperature_c=node_health.temperature_c(),
            outbox_depth=uplink.queued,
            dropped_telemetry=uplink.outbox.dropped_telemetry,
            alarms=self._alarms(),
            config_version=self._config_version(),
        )

    def _alarms(self) -> tuple[str, ...]:
        alarms: list[str] = []
        outbox = self._uplink.outbox
        if outbox.alarm:
            alarms.append(f"outbox {outbox.alarm}")
        if outbox.recovery is not None and outbox.recovery.lost:
            alarms.append(f"outbox recovered from damage; lost up to {outbox.recovery.lost}")
        if self._snapshots.last_error:
            alarms.append(f"snapshot: {self._snapshots.last_error}")
        alarms.extend(self._watchdog.alarms())
        # The contract bounds an alarm's text; a long error must not stop the health report.
        return tuple(alarm[:ALARM_MAX] for alarm in alarms)

    def status(self) -> NodeStatus:
        uplink, snapshot = self._uplink, self._snapshots.current
        return NodeStatus(
            node=self.node,
            health_interval_s=self._settings().health_interval_s,
            uplink_connected=uplink.connected.is_set(),
            outbox_depth=uplink.queued,
            outbox_awaiting_ack=uplink.outbox.awaiting_ack,
            outbox_alarm=uplink.outbox.alarm,
            watchdog=self._watchdog.table(),
            devices=[d.health() for d in self._desk_units()] + [d.health() for d in self._devices],
            snapshot_version=snapshot.version if snapshot is not None else None,
            config_version=self._config_version(),
            last_error=uplink.stats.last_error,
        )

    async def run(self) -> None:
        # WATCHDOG=1 comes from the watchdog (edge/watchdog.py), which this loop
        # beats like every other subsystem; it ticks often enough to stay fresh.
        beat_every = self._settings().watchdog_uplink_stale_s / 4
        next_health = time.monotonic() + self._settings().health_interval_s
        while True:
            # Read every round: a remote config may change the interval at run time.
            settings = self._settings()
            interval = settings.health_interval_s
            next_health = min(next_health, time.monotonic() + interval)
            await asyncio.sleep(min(interval, beat_every))
            watchdog_beat()
            if time.monotonic() >= next_health:
                next_health = max(next_health + interval, time.monotonic())
                health = self.health()
                self._uplink.publish(health)
                for device in self._devices:
                    self._uplink.publish(device.health())
                write_status(settings.state_dir, self.status(), health)
