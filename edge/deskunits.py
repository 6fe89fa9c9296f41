"""Driver for the Ruang desk unit: one supervised serial link per desk.

Opens the unit by URL (a device, a pty or socket://), asks it to say hello,
turns its frames into agent callbacks, carries LED commands back, and reopens
the port with backoff when the unit disappears, without touching other desks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from firmware_bridge.deskunit import Hello, LedSet, Message
from firmware_bridge.serial_transport import DeskUnitPort
from ruang.backoff import Backoff

from .settings import DeskUnitConfig
from .watchdog import beat

log = logging.getLogger(__name__)

UnitHandler = Callable[[str, Message], Awaitable[None]]
LinkHandler = Callable[[str, bool], Awaitable[None]]


@dataclass
class UnitHealth:
    online: bool = False
    serial: str | None = None
    firmware: str | None = None
    opens: int = 0
    last_error: str | None = None


class DeskUnitDriver:
    def __init__(
        self,
        config: DeskUnitConfig,
        on_message: UnitHandler,
        on_link: LinkHandler,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self.desk = config.desk
        self._on_message = on_message
        self._on_link = on_link
        self._backoff = backoff or Backoff(base=0.2, cap=10.0)
        self._port: DeskUnitPort | None = None
        self.health = UnitHealth()
        self._rejected_before = 0

    @property
    def rejected_frames(self) -> int:
        port = self._port
        current = port.stats.decoder.rejected if port is not None else 0
        return self._rejected_before + current

    async def set_led(self, led: LedSet) -> bool:
        """Sends an LED command and waits for the unit's ack; False when the unit is away."""
        port = self._port
        if port is None:
            return False
        try:
            await port.send(led)
        except (ConnectionError, TimeoutError, OSError) as exc:
            log.warning("desk %s: LED command not acknowledged: %s", self.desk, exc)
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
                    self.health.opens += 1
                    self._backoff.reset()
                    async for frame in port:
                        beat()
                        message = frame.message
                        if isinstance(message, Hello):
                            self._note_hello(message)
                            await self._on_link(self.desk, True)
                        await self._on_message(self.desk, message)
            except (OSError, ConnectionError, TimeoutError) as exc:
                self.health.last_error = str(exc) or type(exc).__name__
                log.warning(
                    "desk %s: unit on %s unavailable: %s",
                    self.desk,
                    self.config.port,
                    self.health.last_error,
                )
            finally:
                if self._port is not None:
                    self._rejected_before += self._port.stats.decoder.rejected
                    self._port = None
                if self.health.online:
                    self.health.online = False
                    await self._on_link(self.desk, False)
            delay = self._backoff.next_delay()
            end = asyncio.get_running_loop().time() + delay
            while (left := end - asyncio.get_running_loop().time()) > 0:
                beat()
                await asyncio.sleep(min(left, 1.0))

    def _note_hello(self, hello: Hello) -> None:
        self.health.online = True
        self.health.serial = hello.serial
        self.health.firmware = ".".join(str(p) for p in hello.firmware)
