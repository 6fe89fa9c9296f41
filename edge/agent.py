"""The edge agent: wires desk unit drivers, local decisions and the uplink together.

Device callbacks decide locally and answer the device first (the LED goes back
on the serial line before anything is published), then queue what happened for
the cloud. Node health is published periodically.

Every subsystem runs under its own watchdog (edge/watchdog.py): each device
reader, the uplink and the health loop are started by the watchdog and
restarted by it when they stop beating; the outbox is probed on a worker
thread. systemd's WATCHDOG=1 comes from the watchdog only while no subsystem
has been stalled past the hard limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from firmware_bridge.deskunit import (
    BadgeRead,
    ButtonPressed,
    Heartbeat,
    Hello,
    LedPattern,
    LedSet,
    Message,
    PresenceChanged,
)
from ruang import __version__, contract

from . import health as node_health
from .decisions import LED_AWAY_WARNING, DeskBook
from .deskunits import DeskUnitDriver
from .devices import DeviceDriver
from .devices.access_policy import AccessPolicy, AllowList, BadgeEntry, load_allow_list
from .devices.audit_log import AuditLog
from .devices.ble import BleScannerDriver
from .devices.door import audit_message_id, controllers_for
from .devices.door_keys import load_node_key
from .devices.gps import GpsDriver
from .devices.radar import RadarDriver
from .remote_config import RemoteConfigStore, RestartRequested
from .settings import DeskUnitConfig, EdgeSettings
from .snapshot import SnapshotError, SnapshotStore, load_public_key
from .status import write_status
from .uplink import Uplink
from .watchdog import Watchdog, outbox_probe
from .watchdog import beat as watchdog_beat

log = logging.getLogger(__name__)

_PATTERNS = {
    "off": LedPattern.OFF,
    "solid": LedPattern.SOLID,
    "blink": LedPattern.BLINK,
    "pulse": LedPattern.PULSE,
}


class EdgeAgent:
    def __init__(self, settings: EdgeSettings, *, ble_scanner_factory: Any = None) -> None:
        # The cloud's last accepted config (edge/remote_config.py) goes over the file's.
        self.remote_config = RemoteConfigStore(settings.state_dir)
        settings = self.remote_config.effective(settings)
        self.settings = settings
        # Desk driver tasks by desk, and their TaskGroup, so a remote config can
        # start and stop single desks while the agent runs.
        self._tg: asyncio.TaskGroup | None = None
        self._desk_tasks: dict[str, asyncio.Task[None]] = {}
        self._restart = asyncio.Event()
        self.node = settings.node_id
        self.book = DeskBook()
        # The cloud's last signed snapshot (bookings, badges): taps and doors decide from it.
        key_path = settings.snapshot_public_key
        self.snapshots = SnapshotStore(
            settings.state_dir / "snapshot.json",
            load_public_key(key_path.read_bytes()) if key_path else None,
        )
        self.snapshots.load()
        self.book.snapshot = self.snapshots.current
        self.drivers: dict[str, DeskUnitDriver] = {
            unit.desk: DeskUnitDriver(unit, self._on_unit_message, self._on_unit_link)
            for unit in settings.desk_units
        }
        self.uplink = Uplink(settings, birth=self._birth, on_command=self._on_command)
        # Other device kinds, each supervised on its own (see edge/devices/).
        self.devices: list[DeviceDriver] = []
        publish = self.uplink.publish
        self.devices += [RadarDriver(cfg, self.node, publish) for cfg in settings.radars]
        self.devices += [GpsDriver(cfg, self.node, publish) for cfg in settings.gps]
        self.audit: AuditLog | None = None
        self.door_policy: AccessPolicy | None = None
        self._audit_acked: set[int] = set()
        if settings.doors:
            settings.state_dir.mkdir(parents=True, exist_ok=True)
            self.audit = AuditLog(settings.state_dir / "door_audit.sqlite3")
            allow = (
                load_allow_list(settings.allow_list_file)
                if settings.allow_list_file
                else self._allow_list_from_snapshot() or AllowList(version=0)
            )
            self.door_policy = AccessPolicy(allow, {}, tz=settings.building_tz)
            self.devices += controllers_for(
                settings.doors,
                node_id=self.node,
                publish=publish,
                policy=self.door_policy,
                audit=self.audit,
                kek=load_node_key(settings.node_key_file),
            )
        if settings.ble.enabled:
            # A simulator plugs in its own bleak backend here; real nodes use BleakScanner.
            extra = {"scanner_factory": ble_scanner_factory} if ble_scanner_factory else {}
            self.devices.append(
                BleScannerDriver(
                    settings.ble, self.node, self.uplink.publish, on_tap=self.tap, **extra
                )
            )
        self.watchdog = Watchdog(
            interval_s=settings.watchdog_interval_s, hard_limit_s=settings.watchdog_hard_limit_s
        )
        self._started = time.monotonic()
        self._cpu = node_health.CpuMeter()
        self._pending_leds: set[asyncio.Task[bool]] = set()
        # Per desk: timers that warn, then release, a checked-in desk left vacant.
        self._away: dict[str, tuple[asyncio.TimerHandle, asyncio.TimerHandle]] = {}

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        self._resend_unacknowledged_access_decisions()
        log.info(
            "edge node %s: %d desk unit(s), broker %s",
            self.node,
            len(self.drivers),
            self.settings.mqtt_url,
        )
        self._report_config_at_start()
        node_health.sd_notify("READY=1")
        s = self.settings
        wd = self.watchdog
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            # The watchdog owns the subsystems' tasks so it can restart each on its own.
            wd.supervise("uplink", self.uplink.run, s.watchdog_uplink_stale_s)
            tg.create_task(self._restart_when_asked(), name="restart")
            for desk, driver in self.drivers.items():
                self._supervise_desk(desk, driver)
            for device in self.devices:
                wd.supervise(f"{device.kind}:{device.device_id}", device.run,
                             s.watchdog_device_stale_s)  # fmt: skip
            # Not restartable: a probe that fails or hangs is an alarm, and past the hard
            # limit systemd restarts the agent.
            probe = wd.register(
                "outbox", s.outbox_probe_interval_s + 2 * s.outbox_probe_timeout_s
            )
            tg.create_task(
                outbox_probe(
                    self.uplink.outbox,
                    probe,
                    interval_s=s.outbox_probe_interval_s,
                    timeout_s=s.outbox_probe_timeout_s,
                ),
                name="outbox-probe",
            )
            wd.supervise("health", self._health_loop, s.watchdog_uplink_stale_s)
            tg.create_task(wd.run(), name="watchdog")

    def _supervise_desk(self, desk: str, driver: DeskUnitDriver) -> None:
        beat = self.watchdog.supervise(
            f"deskunit:{desk}", driver.run, self.settings.watchdog_device_stale_s
        )
        assert beat.task is not None
        self._desk_tasks[desk] = beat.task

    def _birth(self, bdseq: int) -> contract.NodeState:
        return contract.NodeState(
            node=self.node,
            online=True,
            bdseq=bdseq,
            sw_version=__version__,
            desks=tuple(
                contract.DeskInfo(desk=d.desk, unit=d.health.serial) for d in self.drivers.values()
            ),
            config_version=self.remote_config.version,
        )

    # --- device side --------------------------------------------------------------------

    async def _on_unit_link(self, desk: str, online: bool) -> None:
        # A desk a remote config just removed says "offline" from its driver's finally.
        driver = self.drivers.get(desk)
        self.uplink.publish(
            contract.UnitStatus(
                node=self.node,
                desk=desk,
                online=online,
                unit=driver.health.serial if driver else None,
                firmware=driver.health.firmware if driver else None,
            )
        )

    async def _on_unit_message(self, desk: str, message: Message) -> None:
        publish = self.uplink.publish
        if isinstance(message, BadgeRead):
            self.tap(desk, message.uid.hex().upper())
        elif isinstance(message, PresenceChanged):
            self._presence(desk, message.present)
            publish(contract.Presence(node=self.node, desk=desk, present=message.present))
        elif isinstance(message, Heartbeat):
            publish(contract.Heartbeat(node=self.node, desk=desk, uptime_s=message.uptime_s))
        elif isinstance(message, ButtonPressed):
            publish(
                contract.ButtonPressed(
                    node=self.node, desk=desk, button=message.button, long_press=message.long_press
                )
            )
        elif isinstance(message, Hello):
            # A unit that rebooted lost its LED state: show what the desk is now.
            self._led(desk, self.book.steady_led(desk, time.time()))

    def tap(self, desk: str, badge: str) -> None:
        """A badge was presented at a desk (NFC on the desk unit, or a BLE tap)."""
        decision = self.book.tap(desk, badge, time.time())
        # Answer the person at the desk first; the cloud can wait.
        if desk in self.drivers:
            self._led(desk, decision.led)
        self._cancel_away(desk)
        publish = self.uplink.publish
        if decision.outcome == "checkin":
            publish(
                contract.CheckIn(
                    node=self.node, desk=desk, badge=badge,
                    booking=decision.booking, person=decision.person,
                )
            )  # fmt: skip
        elif decision.outcome == "checkout":
            publish(contract.CheckOut(node=self.node, desk=desk, badge=badge, reason="tap"))
        else:
            publish(
                contract.TapRefused(
                    node=self.node, desk=desk, badge=badge, reason=decision.reason or "refused"
                )
            )

    # --- away from a checked-in desk ---------------------------------------------------

    def _away_periods(self) -> tuple[float, float]:
        snap = self.book.snapshot
        if snap is not None:
            return float(snap.body.away_s), float(snap.body.away_warning_s)
        return self.settings.away_s, self.settings.away_warning_s

    def _presence(self, desk: str, present: bool) -> None:
        if present:
            if self._cancel_away(desk) and desk in self.drivers:
                self._led(desk, self.book.steady_led(desk, time.time()))
            return
        if self.book.occupant(desk) is None or desk in self._away:
            return
        away, warning = self._away_periods()
        loop = asyncio.get_running_loop()
        self._away[desk] = (
            loop.call_later(max(0.0, away - warning), self._warn_away, desk),
            loop.call_later(away, self._release_away, desk),
        )

    def _cancel_away(self, desk: str) -> bool:
        timers = self._away.pop(desk, None)
        if timers is None:
            return False
        for timer in timers:
            timer.cancel()
        return True

    def _warn_away(self, desk: str) -> None:
        if desk in self.drivers:
            self._led(desk, LED_AWAY_WARNING)

    def _release_away(self, desk: str) -> None:
        self._away.pop(desk, None)
        gone = self.book.release(desk)
        if gone is None:
            return
        if desk in self.drivers:
            self._led(desk, self.book.steady_led(desk, time.time()))
        self.uplink.publish(
            contract.CheckOut(node=self.node, desk=desk, badge=gone.badge, reason="left")
        )

    def _led(self, desk: str, led: LedSet) -> None:
        # Sent from its own task so the reader loop keeps reading while the unit acks.
        task = asyncio.create_task(self.drivers[desk].set_led(led))
        self._pending_leds.add(task)
        task.add_done_callback(self._pending_leds.discard)

    # --- cloud side ---------------------------------------------------------------------

    async def _on_command(self, command: contract.Message) -> None:
        if isinstance(command, contract.LedCommand):
            if command.desk not in self.drivers:
                log.warning("LED command for desk %s, which this node does not serve", command.desk)
                self.uplink.stats.rejected_commands += 1
                return
            self._led(
                command.desk,
                LedSet(
                    r=command.r,
                    g=command.g,
                    b=command.b,
                    pattern=_PATTERNS[command.pattern],
                    duration_s=command.duration_s,
                ),
            )
        elif isinstance(command, contract.Snapshot):
            self._apply_snapshot(command)
        elif isinstance(command, contract.AuditAck):
            self._audit_acknowledged(command.seqs)
        elif isinstance(command, contract.ConfigPush):
            self._apply_config(command)
        else:
            log.warning("unsupported command %s", type(command).__name__)

    def _apply_snapshot(self, snapshot: contract.Snapshot) -> None:
        try:
            view = self.snapshots.apply(snapshot)
        except SnapshotError as exc:
            log.warning("snapshot refused: %s", exc)
            return
        self.book.snapshot = view
        if self.door_policy is not None and not self.settings.allow_list_file:
            allow = self._allow_list_from_snapshot()
            if allow is not None:
                self.door_policy.replace_allow_list(allow)
        log.info(
            "snapshot v%d: %d desks, %d bookings, %d badges",
            view.version,
            len(view.desks),
            len(view.body.bookings),
            len(view.badges),
        )
        # Show booked desks (blue) and free ones (off) as the new snapshot says.
        now = time.time()
        for desk in self.drivers:
            if self.book.occupant(desk) is None:
                self._led(desk, self.book.steady_led(desk, now))

    # --- remote config (edge/remote_config.py) ------------------------------------------

    def _apply_config(self, push: contract.ConfigPush) -> None:
        store = self.remote_config
        decision = store.decide(push.version, push.config, self.settings)
        if decision.ignored:
            log.info("config v%d ignored: running v%s", push.version, store.version)
            return
        if decision.settings is None or decision.config is None:
            log.warning("config v%d refused: %s", push.version, decision.error)
            store.refuse(push.version, decision.error or "refused", reported=True)
            self._config_status(push.version, False, decision.error)
            return
        # Persisted first: a crash while applying comes back up on the new version.
        store.commit(push.version, decision.config)
        if decision.restart:
            log.warning("config v%d needs an agent restart; restarting", push.version)
            self._restart.set()  # reported as applied once the new agent runs it
            return
        try:
            self._reconfigure_desks(decision.settings.desk_units)
        except Exception as exc:
            log.exception("config v%d could not be applied; rolled back", push.version)
            error = f"apply failed, rolled back: {type(exc).__name__}: {exc}"
            store.rollback(error, reported=True)
            self._config_status(push.version, False, error)
            return
        self.settings = decision.settings
        log.info("config v%d applied (%d desk units)", push.version, len(self.drivers))
        self._config_status(push.version, True, None)

    def _reconfigure_desks(self, units: list[DeskUnitConfig]) -> None:
        """Starts drivers of added or changed desks and stops those of removed ones."""
        wanted = {unit.desk: unit for unit in units}
        stale = [desk for desk, drv in self.drivers.items() if wanted.get(desk) != drv.config]
        # Every new driver is built before anything stops: a failure leaves all as it was.
        fresh = {
            desk: DeskUnitDriver(unit, self._on_unit_message, self._on_unit_link)
            for desk, unit in wanted.items()
            if desk not in self.drivers or desk in stale
        }
        for desk in stale:
            self._desk_tasks.pop(desk, None)
            self.watchdog.unregister(f"deskunit:{desk}")
            del self.drivers[desk]
            self._cancel_away(desk)
        for desk, driver in fresh.items():
            self.drivers[desk] = driver
            if self._tg is not None:
                # A missing port is no failure: the driver retries until the unit appears.
                self._supervise_desk(desk, driver)

    def _config_status(self, version: int, applied: bool, error: str | None) -> None:
        self.uplink.publish(
            contract.ConfigStatus(
                node=self.node,
                version=version,
                applied=applied,
                error=error[:512] if error else None,
                active_version=self.remote_config.version,
            )
        )

    def _report_config_at_start(self) -> None:
        store = self.remote_config
        if store.refused is not None and not store.refused_reported:
            self._config_status(store.refused[0], False, store.refused[1])
            store.mark_reported()
        if store.version is not None:
            # Also confirms a push that needed a restart: it runs now.
            self._config_status(store.version, True, None)

    async def _restart_when_asked(self) -> None:
        await self._restart.wait()
        raise RestartRequested("remote config needs a restart")

    # --- doors ---------------------------------------------------------------------------

    def _allow_list_from_snapshot(self) -> AllowList | None:
        """Doors use the same badge allow-list as desks: the cloud's snapshot."""
        view = self.snapshots.current
        if view is None:
            return None
        return AllowList(
            version=view.version,
            entries=tuple(
                BadgeEntry(
                    badge=b.badge,
                    person=b.person,
                    valid_until=(
                        datetime.fromtimestamp(b.valid_until, UTC) if b.valid_until else None
                    ),
                )
                for b in view.body.badges
            ),
        )

    def _audit_acknowledged(self, seqs: tuple[int, ...]) -> None:
        """Prunes the audit log up to the longest run of decisions the cloud has committed."""
        if self.audit is None:
            return
        self._audit_acked.update(seqs)
        upto = None
        for entry in self.audit.pending():
            if entry.seq not in self._audit_acked:
                break
            upto = entry.seq
        if upto is not None:
            self.audit.mark_acknowledged(upto)
            self._audit_acked = {s for s in self._audit_acked if s > upto}

    def _resend_unacknowledged_access_decisions(self) -> None:
        # Same message ids as the first time: the cloud counts each decision once.
        if self.audit is None:
            return
        for entry in self.audit.pending():
            self.uplink.publish(
                contract.AccessDecision(
                    node=self.node, id=audit_message_id(entry.hash), ts=entry.ts,
                    door=entry.door, badge=entry.badge, granted=entry.granted,
                    reason=entry.reason[:128], audit_seq=entry.seq, audit_hash=entry.hash,
                )
            )  # fmt: skip

    # --- health -------------------------------------------------------------------------

    def health(self) -> contract.NodeHealth:
        return contract.NodeHealth(
            node=self.node,
            uptime_s=time.monotonic() - self._started,
            rss_bytes=node_health.rss_bytes(),
            rejected_frames=sum(d.rejected_frames for d in self.drivers.values()),
            mqtt_reconnects=self.uplink.stats.reconnects,
            units_online=sum(1 for d in self.drivers.values() if d.health.online),
            cpu_pct=self._cpu.read(),
            mem_available_bytes=node_health.mem_available_bytes(),
            disk_free_bytes=node_health.disk_free_bytes(self.settings.state_dir),
            temperature_c=node_health.temperature_c(),
            outbox_depth=self.uplink.queued,
            dropped_telemetry=self.uplink.outbox.dropped_telemetry,
            alarms=self._alarms(),
            config_version=self.remote_config.version,
        )

    def _alarms(self) -> tuple[str, ...]:
        alarms: list[str] = []
        outbox = self.uplink.outbox
        if outbox.alarm:
            alarms.append(f"outbox {outbox.alarm}")
        if outbox.recovery is not None and outbox.recovery.lost:
            alarms.append(f"outbox recovered from damage; lost up to {outbox.recovery.lost}")
        if self.snapshots.last_error:
            alarms.append(f"snapshot: {self.snapshots.last_error}")
        alarms.extend(self.watchdog.alarms())
        return tuple(alarms)

    async def _health_loop(self) -> None:
        # WATCHDOG=1 now comes from the watchdog (edge/watchdog.py), which this loop
        # beats like every other subsystem; it ticks often enough to stay fresh.
        beat_every = self.settings.watchdog_uplink_stale_s / 4
        next_health = time.monotonic() + self.settings.health_interval_s
        while True:
            # Read every round: a remote config may change the interval at run time.
            interval = self.settings.health_interval_s
            next_health = min(next_health, time.monotonic() + interval)
            await asyncio.sleep(min(interval, beat_every))
            watchdog_beat()
            if time.monotonic() >= next_health:
                next_health = max(next_health + interval, time.monotonic())
                health = self.health()
                self.uplink.publish(health)
                for device in self.devices:
                    self.uplink.publish(device.health())
                write_status(self, health)
