"""Door access driver: the OSDP Control Panel for one RS-485 bus of card readers.

`DoorController` drives one serial port (a USB-RS485 adapter) with one or more
OSDP readers (PDs) on it, each with its own address and sealed SCBK, always in
secure channel (`LibFlag.EnforceSecure`). For every card read it

1. decides locally (`AccessPolicy`: allow-list snapshot + door schedule), so
   doors keep working with the uplink down,
2. commands the reader: grant = output 0 (door strike) on for ``open_ms``, LED
   green, one short beep; deny = LED red blinking, two beeps,
3. appends the decision to the hash-chained `AuditLog`,
4. publishes `contract.AccessDecision` with the audit seq and hash.

Reader online/offline, tamper and power reports become `contract.DoorStatus`.

Threads: libosdp runs its own refresh thread and calls our event handler on
it. The handler only forwards the event with ``loop.call_soon_threadsafe``
onto an asyncio.Queue; all decisions, state and publishing happen on the
event loop. The serial channel reports a vanished port the same way, which
ends the session; `supervisor.supervise` reports it and reopens with backoff.

Badge refs: the card data bytes as upper-case hex when they are 4..10 bytes
(ISO 14443 UIDs of 4, 7 or 10 bytes). Other raw formats (e.g. 26-bit
Wiegand) are carried the same way: the bits as libosdp delivers them, MSB
first and left-aligned in ceil(bits/8) bytes, as hex (26 bits -> 4 bytes ->
8 hex digits). Card data shorter than 4 or longer than 10 bytes cannot be a
contract `BadgeRef`: it is denied as "unsupported card format" with no badge.

The reader commands, badge refs and the serial channel are in edge/devices/osdp_link.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import serial
from osdp import (
    ControlPanel,
    Event,
    EventNotification,
    LibFlag,
    LogLevel,
    PDInfo,
    StatusReportType,
)
from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge.devices import Publish
from edge.devices.access_policy import AccessPolicy, WeeklySchedule
from edge.devices.audit_log import AuditLog
from edge.devices.door_keys import check_sealed_form, open_key
from edge.devices.osdp_link import (
    PortLost,
    SerialChannel,
    badge_ref,
    deny_commands,
    grant_commands,
    restart_pd,
)
from edge.devices.supervisor import supervise
from edge.watchdog import beat
from ruang import contract
from ruang.backoff import Backoff
from ruang.contract import ID_PATTERN

log = logging.getLogger(__name__)

OSDP_BAUDRATES = (9600, 19200, 38400, 57600, 115200, 230400)
# After libosdp gives up on a PD it waits minutes before trying again; we
# restart the PD's state machine ourselves with this floor plus jittered backoff.
REPROBE_FLOOR_S = 1.0
# The session loop wakes at least this often to beat its watchdog while no card is read.
IDLE_BEAT_S = 1.0
# Time a reader gets to come online after the port opens before we start re-probing.
FIRST_CONTACT_S = 10.0

DoorCondition = Literal[
    "online", "offline", "tamper", "tamper_cleared", "power_fail", "power_restored"
]


class DoorConfig(BaseModel):
    """One door = one OSDP reader on an RS-485 bus."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=ID_PATTERN, description="door id used in the contract")
    port: str = Field(min_length=1, description="serial port of the RS-485 adapter")
    pd_address: int = Field(default=101, ge=0, le=126, description="OSDP address of the reader")
    baudrate: int = Field(default=9600, description="OSDP bus speed; 9600 is the usual default")
    scbk_sealed: str = Field(description="the reader's SCBK sealed with door_keys (enc:v1:...)")
    schedule: WeeklySchedule = Field(description="when the door may be opened by badge")
    open_ms: int = Field(default=3000, ge=100, le=25_500, description="strike release time")

    @field_validator("baudrate")
    @classmethod
    def _osdp_speed(cls, value: int) -> int:
        if value not in OSDP_BAUDRATES:
            raise ValueError(f"OSDP baud rate must be one of {OSDP_BAUDRATES}")
        return value

    @field_validator("scbk_sealed")
    @classmethod
    def _sealed(cls, value: str) -> str:
        return check_sealed_form(value)

    @field_validator("schedule", mode="before")
    @classmethod
    def _windows_list(cls, value: Any) -> Any:
        # Config files may give the schedule directly as a list of windows.
        return {"windows": value} if isinstance(value, list) else value


# --- per-door state -------------------------------------------------------------------------


@dataclass
class _DoorState:
    config: DoorConfig
    scbk: bytes
    online: bool | None = None
    was_online: bool = False
    detail: str = "not connected yet"
    tamper: bool | None = None
    power_fail: bool | None = None
    last_read_ts: float | None = None
    unreadable_cards: int = 0
    went_offline: asyncio.Event = field(default_factory=asyncio.Event)


class DoorController:
    """OSDP Control Panel for one bus; follows the `edge.devices.DeviceDriver` shape."""

    kind = "door"

    def __init__(
        self,
        doors: Sequence[DoorConfig],
        *,
        node_id: str,
        publish: Publish,
        policy: AccessPolicy,
        audit: AuditLog,
        kek: bytes,
        bus_id: str | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], datetime] | None = None,
        log_level: int = LogLevel.Error,
    ) -> None:
        if not doors:
            raise ValueError("a door bus needs at least one door")
        ports = {d.port for d in doors}
        if len(ports) != 1:
            raise ValueError(f"doors of one controller must share a port, got {sorted(ports)}")
        if len({d.baudrate for d in doors}) != 1:
            raise ValueError("doors on one bus must use the same baud rate")
        addresses = [d.pd_address for d in doors]
        if len(set(addresses)) != len(addresses):
            raise ValueError(f"OSDP addresses on one bus must differ: {addresses}")
        self.node = node_id
        self.port = doors[0].port
        self.baudrate = doors[0].baudrate
        self.device_id = bus_id or doors[0].id
        self._publish = publish
        self._policy = policy
        self._audit = audit
        self._backoff = backoff or Backoff(base=0.5, cap=15.0)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._log_level = log_level
        # Opening the keys here makes a wrong node key fail at start-up, not at first read.
        self._doors: dict[int, _DoorState] = {
            d.pd_address: _DoorState(d, open_key(d.scbk_sealed, kek)) for d in doors
        }
        for d in doors:
            policy.set_schedule(d.id, d.schedule)

    # --- driver shape -----------------------------------------------------------------------

    async def run(self) -> None:
        await supervise(
            f"door bus {self.port}", self._session, backoff=self._backoff, on_down=self._on_down
        )

    def health(self) -> contract.DeviceHealth:
        states = list(self._doors.values())
        online = all(s.online for s in states)
        if len(states) == 1:
            detail = self._detail(states[0])
        else:
            up = sum(1 for s in states if s.online)
            down = ", ".join(s.config.id for s in states if not s.online)
            detail = f"{up}/{len(states)} readers in secure channel" + (
                f"; offline: {down}" if down else ""
            )
        reads = [s.last_read_ts for s in states if s.last_read_ts is not None]
        return contract.DeviceHealth(
            node=self.node,
            device=self.device_id,
            kind="door",
            online=online,
            rejected_frames=sum(s.unreadable_cards for s in states),
            last_reading_ts=max(reads) if reads else None,
            detail=detail[:128],
        )

    def door_health(self) -> list[contract.DeviceHealth]:
        """One DeviceHealth per door on this bus."""
        return [
            contract.DeviceHealth(
                node=self.node,
                device=s.config.id,
                kind="door",
                online=bool(s.online),
                rejected_frames=s.unreadable_cards,
                last_reading_ts=s.last_read_ts,
                detail=self._detail(s)[:128],
            )
            for s in self._doors.values()
        ]

    @staticmethod
    def _detail(state: _DoorState) -> str:
        alarms = [a for a, on in (("tamper", state.tamper), ("power fail", state.power_fail)) if on]
        return state.detail + (f"; {', '.join(alarms)}" if alarms else "")

    # --- session ----------------------------------------------------------------------------

    async def _session(self) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[int, dict[str, Any]] | PortLost] = asyncio.Queue()

        def forward(item: tuple[int, dict[str, Any]] | PortLost) -> None:
            # Called on libosdp's thread: hand over and return at once.
            with contextlib.suppress(RuntimeError):  # the loop is already closed at shutdown
                loop.call_soon_threadsafe(queue.put_nowait, item)

        port = await asyncio.to_thread(
            serial.serial_for_url, self.port, baudrate=self.baudrate, timeout=0
        )
        channel = SerialChannel(port, lambda reason: forward(PortLost(reason)))
        addresses = list(self._doors)
        infos = [
            PDInfo(
                address,
                channel,
                scbk=state.scbk,
                name=state.config.id,
                flags=[LibFlag.EnforceSecure, LibFlag.EnableNotification],
            )
            for address, state in self._doors.items()
        ]
        cp = ControlPanel(infos, log_level=self._log_level)

        def on_event(pd_index: int, event: dict[str, Any]) -> int:
            forward((addresses[pd_index], event))
            return 0

        # Registered on the binding itself, not through the wrapper: the wrapper
        # also puts every event on an internal queue.Queue for its polling API,
        # which would grow forever here, and taking that queue's lock on libosdp's
        # thread deadlocked when the session was torn down after a port loss.
        cp.ctx.set_event_callback(on_event)
        for state in self._doors.values():
            state.went_offline = asyncio.Event()
        cp.start()
        log.info("door bus %s: control panel started for %s", self.port, addresses)
        probes = [asyncio.create_task(self._keep_probing(cp, s)) for s in self._doors.values()]
        try:
            while True:
                # Card reads are rare: wake now and then to tell the watchdog this loop
                # still turns (libosdp's own thread reports a lost port as PortLost).
                beat()
                try:
                    async with asyncio.timeout(IDLE_BEAT_S):
                        item = await queue.get()
                except TimeoutError:
                    continue
                if isinstance(item, PortLost):
                    raise OSError(f"port {self.port} lost: {item.reason}")
                address, event = item
                await self._handle(cp, self._doors[address], event)
        finally:
            for task in probes:
                task.cancel()
            await asyncio.gather(*probes, return_exceptions=True)
            # Synchronous on purpose: joining libosdp's thread takes one refresh
            # cycle (~20 ms) and must finish even when this task is being cancelled.
            cp.stop()
            # Free the libosdp context here, on this thread, rather than whenever the
            # garbage collector breaks the cp <-> callback cycle on some other thread.
            cp.ctx = None
            port.close()

    async def _keep_probing(self, cp: ControlPanel, state: _DoorState) -> None:
        """While a reader is offline, make libosdp retry it now and then, not after minutes."""
        backoff = Backoff(base=1.0, cap=30.0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FIRST_CONTACT_S):
                await state.went_offline.wait()
        while True:
            if state.online:
                backoff.reset()
                state.went_offline.clear()
                await state.went_offline.wait()
            await asyncio.sleep(REPROBE_FLOOR_S + backoff.next_delay())
            if not state.online:
                log.info("door %s: re-probing reader %d", state.config.id, state.config.pd_address)
                await asyncio.to_thread(restart_pd, cp, state.config.pd_address)

    def _on_down(self, reason: str) -> None:
        for state in self._doors.values():
            self._set_online(state, False, f"port unavailable: {reason}")

    # --- events -----------------------------------------------------------------------------

    async def _handle(self, cp: ControlPanel, state: _DoorState, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == Event.CardRead:
            await self._on_card(cp, state, event)
        elif kind == Event.Notification:
            if event.get("type") == EventNotification.PeripheralDeviceStatus:
                if event.get("arg0"):
                    self._set_online(state, True, "secure channel active")
                elif state.was_online:
                    self._set_online(state, False, "reader stopped answering")
                else:
                    self._set_online(
                        state, False, "no secure channel (reader silent or SCBK mismatch)"
                    )
        elif kind == Event.Status and event.get("type") == StatusReportType.Local:
            report = bytes(event.get("report") or b"")
            if len(report) >= 1:
                self._alarm(state, "tamper", report[0] != 0)
            if len(report) >= 2:
                self._alarm(state, "power_fail", report[1] != 0)

    def _set_online(self, state: _DoorState, online: bool, detail: str) -> None:
        changed = state.online is not online
        state.online = online
        state.detail = detail
        if online:
            state.was_online = True
        else:
            state.went_offline.set()
        if changed:
            log.info("door %s: %s (%s)", state.config.id, "online" if online else "offline", detail)
            self._status(state, "online" if online else "offline", detail)

    def _alarm(self, state: _DoorState, which: Literal["tamper", "power_fail"], on: bool) -> None:
        previous = getattr(state, which)
        setattr(state, which, on)
        # Unknown -> normal is the reader's first report, not a change worth an event.
        if previous == on or (previous is None and not on):
            return
        condition: DoorCondition
        if which == "tamper":
            condition = "tamper" if on else "tamper_cleared"
        else:
            condition = "power_fail" if on else "power_restored"
        self._status(state, condition, None)

    def _status(self, state: _DoorState, condition: DoorCondition, detail: str | None) -> None:
        self._publish(
            contract.DoorStatus(
                node=self.node,
                door=state.config.id,
                condition=condition,
                detail=detail[:128] if detail else None,
            )
        )

    async def _on_card(self, cp: ControlPanel, state: _DoorState, event: dict[str, Any]) -> None:
        now = self._clock()
        ts = now.timestamp()
        door = state.config
        badge = badge_ref(event)
        state.last_read_ts = ts
        if badge is None:
            state.unreadable_cards += 1
        decision = self._policy.decide(door.id, badge, now)
        # The reader first: the person at the door waits on this, not on the log.
        commands = grant_commands(door.open_ms) if decision.granted else deny_commands()
        for command in commands:
            # submit_command only queues (it takes libosdp's lock for one refresh at most).
            if not cp.submit_command(door.pd_address, command):
                log.warning("door %s: reader refused command %s", door.id, command["command"])
        entry = await asyncio.to_thread(
            self._audit.append,
            door=door.id,
            badge=badge,
            granted=decision.granted,
            reason=decision.reason,
            ts=ts,
        )
        self._publish(
            contract.AccessDecision(
                node=self.node,
                id=audit_message_id(entry.hash),
                ts=ts,
                door=door.id,
                badge=badge,
                granted=decision.granted,
                reason=decision.reason,
                audit_seq=entry.seq,
                audit_hash=entry.hash,
            )
        )


def audit_message_id(entry_hash: str) -> str:
    """The message id of an audit entry's AccessDecision: the same on every resend, so
    the cloud de-duplicates a decision re-sent after an outage instead of counting it twice."""
    return f"audit-{entry_hash[:40]}"


def controllers_for(
    doors: Iterable[DoorConfig],
    *,
    node_id: str,
    publish: Publish,
    policy: AccessPolicy,
    audit: AuditLog,
    kek: bytes,
) -> list[DoorController]:
    """One `DoorController` per serial port (RS-485 bus), in config order."""
    by_port: dict[str, list[DoorConfig]] = {}
    for door in doors:
        by_port.setdefault(door.port, []).append(door)
    return [
        DoorController(group, node_id=node_id, publish=publish, policy=policy, audit=audit, kek=kek)
        for group in by_port.values()
    ]


__all__ = [
    "DoorConfig",
    "DoorController",
    "audit_message_id",
    "controllers_for",
]
