"""Driver of the Ruang desk unit (NFC reader, presence sensor, LED, buttons) on one desk.

Follows the device-driver shape of edge/devices/: built from its typed config,
the node id and `publish`; `run()` keeps one serial link alive (a device, a pty
or socket:// URL, so a simulated unit plugs in like a real one); `health()`
says how the unit is. It asks the unit to say hello on every open, publishes
what needs no decision itself (unit status, presence, heartbeats, buttons) and
hands what the node decides on (badge reads, presence, a rebooted unit) to
`DeskEvents`, which answers the unit with LED commands through `set_led`. The
port is reopened with backoff when the unit disappears, without touching other
desks.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from firmware_bridge.deskunit import (
    BadgeRead,
    Beep,
    ButtonPressed,
    Capability,
    Heartbeat,
    Hello,
    LedSet,
    Message,
    PresenceChanged,
)
from firmware_bridge.serial_transport import DeskUnitPort
from ruang import contract
from ruang.backoff import Backoff
from ruang.contract import ID_PATTERN

from ..watchdog import beat
from . import Publish

log = logging.getLogger(__name__)


class DeskUnitConfig(BaseModel):
    """One desk unit in the edge settings file (`desk_units:` list)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    desk: str = Field(pattern=ID_PATTERN, description="desk id this unit serves")
    port: str = Field(
        min_length=1, description="serial port: /dev/ttyUSB0, a pty path or socket://host:port"
    )
    baudrate: int = Field(default=115200, gt=0)


class DeskEvents(Protocol):
    """What the node decides on locally (edge/desks.py); called from the reader loop."""

    def badge(self, desk: str, badge: str) -> None: ...

    def presence(self, desk: str, present: bool) -> None: ...

    def hello(self, desk: str) -> None: ...


@dataclass
class UnitState:
    online: bool = False
    serial: str | None = None
    firmware: str | None = None
    capabilities: Capability = Capability.NONE
    opens: int = 0
    last_error: str | None = None


class DeskUnitDriver:
    """Supervised driver for one desk unit; see the module docstring."""

    kind = "deskunit"

    def __init__(
        self,
        config: DeskUnitConfig,
        node_id: str,
        publish: Publish,
        events: DeskEvents,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self.desk = self.device_id = config.desk
        self.node_id = node_id
        self._publish = publish
        self._events = events
        self._backoff = backoff or Backoff(base=0.2, cap=10.0)
        self._port: DeskUnitPort | None = None
        self.state = UnitState()
        self._rejected_before = 0
        self._reasons_before: Counter[str] = Counter()

    @property
    def rejected_frames(self) -> int:
        port = self._port
        current = port.stats.decoder.rejected if port is not None else 0
        return self._rejected_before + current

    @property
    def rejected_by_reason(self) -> Counter[str]:
        """Rejected frames by the codec's reason code, over every session (for /metrics)."""
        port = self._port
        return self._reasons_before + (port.stats.decoder.by_reason if port else Counter())

    def health(self) -> contract.DeviceHealth:
        state = self.state
        detail = self.config.port if state.online else state.last_error
        return contract.DeviceHealth(
            node=self.node_id,
            device=self.device_id,
            kind="deskunit",
            online=state.online,
            rejected_frames=self.rejected_frames,
            detail=detail[:128] if detail else None,
        )

    async def set_led(self, led: LedSet) -> bool:
        """Sends an LED command and waits for the unit's ack; False when the unit is away."""
        return await self._send(led, "LED command")

    async def beep(self, beep: Beep) -> bool:
        """Sounds the buzzer of a unit that announced one (door readers); False otherwise."""
        if not self.state.capabilities & Capability.BUZZER:
            return False
        return await self._send(beep, "beep")

    async def _send(self, message: LedSet | Beep, what: str) -> bool:
        port = self._port
        if port is None:
            return False
        try:
            await port.send(message)
        except (ConnectionError, TimeoutError, OSError) as exc:
            log.warning("desk %s: %s not acknowledged: %s", self.desk, what, exc)
            return False
        return True

    async def run(self) -> None:
        while True:
            # Every frame and every reopen beat this desk's watchdog (edge/watchdog.py):
            # a port that stays open but goes silent makes it stale, and the watchdog
            # restarts this task, which reopens the port.
            beat()
            try:
                # open() asks the unit for its Hello, so we learn who is there even
                # when its power-on Hello went out before we were listening.
                async with DeskUnitPort.open(
                    self.config.port, baudrate=self.config.baudrate
                ) as port:
                    self._port = port
                    self.state.opens += 1
                    self._backoff.reset()
                    async for frame in port:
                        beat()
                        self._dispatch(frame.message)
            except (OSError, ConnectionError, TimeoutError) as exc:
                self.state.last_error = str(exc) or type(exc).__name__
                log.warning(
                    "desk %s: unit on %s unavailable: %s",
                    self.desk,
                    self.config.port,
                    self.state.last_error,
                )
            finally:
                if self._port is not None:
                    self._rejected_before += self._port.stats.decoder.rejected
                    self._reasons_before.update(self._port.stats.decoder.by_reason)
                    self._port = None
                if self.state.online:
                    self.state.online = False
                    self._link(False)
            delay = self._backoff.next_delay()
            end = asyncio.get_running_loop().time() + delay
            while (left := end - asyncio.get_running_loop().time()) > 0:
                beat()
                await asyncio.sleep(min(left, 1.0))

    def _dispatch(self, message: Message) -> None:
        desk, node = self.desk, self.node_id
        if isinstance(message, Hello):
            self._note_hello(message)
            self._link(True)
            # A unit that rebooted lost its LED state: the node shows what the desk is now.
            self._events.hello(desk)
        elif isinstance(message, BadgeRead):
            self._events.badge(desk, message.uid.hex().upper())
        elif isinstance(message, PresenceChanged):
            self._events.presence(desk, message.present)
            self._publish(contract.Presence(node=node, desk=desk, present=message.present))
        elif isinstance(message, Heartbeat):
            self._publish(contract.Heartbeat(node=node, desk=desk, uptime_s=message.uptime_s))
        elif isinstance(message, ButtonPressed):
            self._publish(
                contract.ButtonPressed(
                    node=node, desk=desk, button=message.button, long_press=message.long_press
                )
            )

    def _link(self, online: bool) -> None:
        self._publish(
            contract.UnitStatus(
                node=self.node_id,
                desk=self.desk,
                online=online,
                unit=self.state.serial,
                firmware=self.state.firmware,
            )
        )

    def _note_hello(self, hello: Hello) -> None:
        self.state.online = True
        self.state.serial = hello.serial
        self.state.firmware = ".".join(str(p) for p in hello.firmware)
        self.state.capabilities = hello.capabilities
