"""The edge agent: a thin composition of the node's parts, run under one supervisor.

The parts, each in its own module:

- `ConfigApplier` (edge/config_apply.py): the running settings, and the cloud's
  config pushes applied to them;
- `Desks` (edge/desks.py): desk unit drivers, badge taps -> local decisions ->
  LEDs, and away timers;
- `Doors` (edge/doors.py): the doors' allow-list and audit log acks;
- `Vehicle` (edge/vehicle.py), on a vehicle node: door reader taps -> boarding or
  pool-car decisions -> LED, beep and events;
- the other device drivers, built from the settings (edge/wiring.py);
- `Uplink` (edge/uplink.py): the durable outbox and the MQTT connection;
- `Commands` (edge/commands.py): the cloud's commands, each to its part;
- `NodeReporter` (edge/health_loop.py): node health and the status file;
- `StatusServer` (edge/status_server.py): the optional status port's `/metrics`.

Every subsystem runs under its own watchdog (edge/watchdog.py): each device
reader, the uplink and the health loop are started by the watchdog and
restarted by it when they stop beating; the outbox is probed on a worker
thread. systemd's WATCHDOG=1 comes from the watchdog only while no subsystem
has been stalled past the hard limit.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ruang import __version__, contract
from ruang.tasks import cancel_and_wait

from . import health as node_health
from .commands import Commands
from .config_apply import ConfigApplier
from .decisions import DeskBook
from .desks import AwayPeriods, Desks
from .devices import DeviceDriver
from .devices.audit_log import AuditLog
from .devices.deskunit import DeskUnitConfig, DeskUnitDriver
from .doors import Doors
from .health_loop import NodeReporter
from .metrics import EdgeMetrics
from .settings import EdgeSettings
from .status_server import StatusServer
from .uplink import Uplink
from .vehicle import Vehicle
from .watchdog import Watchdog, outbox_probe
from .wiring import build_devices, open_snapshots, open_vehicle, wire_desk_units

log = logging.getLogger(__name__)


class EdgeAgent:
    def __init__(self, settings: EdgeSettings, *, ble_scanner_factory: Any = None) -> None:
        self.config = ConfigApplier(settings)
        settings = self.config.settings
        self.node = settings.node_id
        self.snapshots = open_snapshots(settings)
        self.uplink = Uplink(settings, birth=self._birth, on_command=self._on_command)
        publish = self.uplink.publish
        self.desks = Desks(self.node, publish, self._current_settings)
        self.desks.book.snapshot = self.snapshots.current
        wire_desk_units(settings, self.desks)
        self.doors = Doors(self.node, publish, self._current_settings, self.snapshots)
        self.vehicle: Vehicle | None = open_vehicle(settings, publish, self.snapshots)
        # Other device kinds, each supervised on its own (see edge/devices/).
        self.devices: list[DeviceDriver] = build_devices(
            settings, publish, desks=self.desks, doors=self.doors, vehicle=self.vehicle,
            ble_scanner_factory=ble_scanner_factory,
        )  # fmt: skip
        self.watchdog = Watchdog(
            interval_s=settings.watchdog_interval_s, hard_limit_s=settings.watchdog_hard_limit_s
        )
        self.commands = Commands(
            desks=self.desks, doors=self.doors, snapshots=self.snapshots, config=self.config,
            vehicle=self.vehicle,
            publish=publish, reconfigure_desks=self._reconfigure_desks,
            rejected=self._command_rejected,
        )  # fmt: skip
        self.reporter = NodeReporter(
            settings=self._current_settings, config_version=lambda: self.config.version,
            desk_units=lambda: list(self.desks.drivers.values()), devices=self.devices,
            uplink=self.uplink, snapshots=self.snapshots, watchdog=self.watchdog,
        )  # fmt: skip
        self.status_server: StatusServer | None = None
        if settings.status_port is not None:
            metrics = EdgeMetrics(
                self.node, uplink=self.uplink, snapshots=self.snapshots,
                desk_units=lambda: list(self.desks.drivers.values()), devices=self.devices,
            )  # fmt: skip
            self.status_server = StatusServer(metrics, settings.status_host, settings.status_port)
        # Desk driver tasks by desk, and their TaskGroup, so a remote config can
        # start and stop single desks while the agent runs.
        self._tg: asyncio.TaskGroup | None = None
        self._desk_tasks: dict[str, asyncio.Task[None]] = {}
        self._running: asyncio.Task[None] | None = None

    # --- what other code and the tests read, owned by the parts --------------------------

    @property
    def settings(self) -> EdgeSettings:
        return self.config.settings

    def _current_settings(self) -> EdgeSettings:
        return self.config.settings

    @property
    def book(self) -> DeskBook:
        return self.desks.book

    @property
    def drivers(self) -> dict[str, DeskUnitDriver]:
        return self.desks.drivers

    @property
    def audit(self) -> AuditLog | None:
        return self.doors.audit

    @audit.setter
    def audit(self, log: AuditLog | None) -> None:
        self.doors.audit = log

    @property
    def _away_periods(self) -> AwayPeriods:
        return self.desks.away_periods

    @_away_periods.setter
    def _away_periods(self, periods: AwayPeriods) -> None:
        # tests/e2e shortens the away timers through this seam.
        self.desks.away_periods = periods

    def tap(self, desk: str, badge: str) -> None:
        self.desks.tap(desk, badge)

    def health(self) -> contract.NodeHealth:
        return self.reporter.health()

    async def _on_command(self, command: contract.Message) -> None:
        await self.commands.handle(command)

    def _command_rejected(self) -> None:
        self.uplink.stats.rejected_commands += 1

    def _resend_unacknowledged_access_decisions(self) -> None:
        self.doors.resend_unacknowledged()

    # --- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> EdgeAgent:
        """Runs the agent in the background until the block ends (`run` in a task)."""
        self._running = asyncio.create_task(self.run(), name=f"edge-agent:{self.node}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._running is not None:
            await cancel_and_wait(self._running)
            self._running = None

    async def run(self) -> None:
        s = self.settings
        s.state_dir.mkdir(parents=True, exist_ok=True)
        self.doors.resend_unacknowledged()
        log.info("edge node %s: %d desk unit(s), broker %s", self.node, len(self.drivers),
                 s.mqtt_url)  # fmt: skip
        self.config.report_at_start(self.uplink.publish)
        node_health.sd_notify("READY=1")
        wd = self.watchdog
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            # The watchdog owns the subsystems' tasks so it can restart each on its own.
            wd.supervise("uplink", self.uplink.run, s.watchdog_uplink_stale_s)
            tg.create_task(self.config.restart_when_asked(), name="restart")
            for driver in self.drivers.values():
                self._supervise_desk(driver)
            for device in self.devices:
                wd.supervise(f"{device.kind}:{device.device_id}", device.run,
                             s.watchdog_device_stale_s)  # fmt: skip
            # Not restartable: a probe that fails or hangs is an alarm, and past the hard
            # limit systemd restarts the agent.
            probe = wd.register("outbox", s.outbox_probe_interval_s + 2 * s.outbox_probe_timeout_s)
            tg.create_task(
                outbox_probe(
                    self.uplink.outbox,
                    probe,
                    interval_s=s.outbox_probe_interval_s,
                    timeout_s=s.outbox_probe_timeout_s,
                ),
                name="outbox-probe",
            )
            wd.supervise("health", self.reporter.run, s.watchdog_uplink_stale_s)
            if self.status_server is not None:
                tg.create_task(self.status_server.run(), name="status-port")
            tg.create_task(wd.run(), name="watchdog")

    def _supervise_desk(self, driver: DeskUnitDriver) -> None:
        beat = self.watchdog.supervise(
            f"deskunit:{driver.desk}", driver.run, self.settings.watchdog_device_stale_s
        )
        assert beat.task is not None
        self._desk_tasks[driver.desk] = beat.task

    def _reconfigure_desks(self, units: list[DeskUnitConfig]) -> None:
        """Starts drivers of added or changed desks and stops those of removed ones."""
        drivers = self.drivers
        wanted = {unit.desk: unit for unit in units}
        stale = [desk for desk, drv in drivers.items() if wanted.get(desk) != drv.config]
        # Every new driver is built before anything stops: a failure leaves all as it was.
        fresh = [
            self.desks.driver_for(unit)
            for desk, unit in wanted.items()
            if desk not in drivers or desk in stale
        ]
        for desk in stale:
            self._desk_tasks.pop(desk, None)
            self.watchdog.unregister(f"deskunit:{desk}")
            self.desks.forget(desk)
        for driver in fresh:
            drivers[driver.desk] = driver
            if self._tg is not None:
                # A missing port is no failure: the driver retries until the unit appears.
                self._supervise_desk(driver)

    def _birth(self, bdseq: int) -> contract.NodeState:
        return contract.NodeState(
            node=self.node,
            online=True,
            bdseq=bdseq,
            sw_version=__version__,
            desks=tuple(
                contract.DeskInfo(desk=d.desk, unit=d.state.serial) for d in self.drivers.values()
            ),
            config_version=self.config.version,
        )
