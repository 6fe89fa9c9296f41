"""Driver of the HLK-LD2410 mmWave presence radar: one radar above one desk or one room.

Opens the radar by URL (device, pty or socket://), configures it on every
connect (max gates and no-one delay; the radar may have been power-cycled or
swapped), then streams its reports through `PresenceFilter` and publishes
`contract.Presence(source="radar")` for a desk radar, or `contract.RoomPresence`
for a radar bound to a meeting room, when presence changes, plus a periodic
re-assert so a cloud that missed a QoS 0 sample catches up. Loss of the port
is reported in `health()` and the port is reopened with backoff by
`supervisor.supervise`, so a re-plugged radar is picked up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable

import serial_asyncio_fast
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.devices import Publish
from edge.devices.supervisor import supervise
from edge.watchdog import beat
from firmware_bridge.ld2410 import (
    DEFAULT_BAUDRATE,
    MAX_GATE,
    Ack,
    Command,
    EnableConfiguration,
    EndConfiguration,
    FirmwareVersion,
    FrameDecoder,
    ReadFirmwareVersion,
    Report,
    SetMaxGates,
    command_word,
    encode_command,
)
from ruang import contract
from ruang.backoff import Backoff

log = logging.getLogger(__name__)

REASSERT_S = 60.0
COMMAND_TIMEOUT_S = 1.0
COMMAND_ATTEMPTS = 3
READ_SIZE = 4096


class RadarConfig(BaseModel):
    """One radar in the edge settings file (`radars:` list), above a desk or in a room."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: contract.DeviceId
    desk: contract.DeskId | None = None
    room: contract.DeviceId | None = None
    port: str = Field(min_length=1, description="device path, pty or socket://host:port")
    baudrate: int = Field(default=DEFAULT_BAUDRATE, gt=0)
    max_moving_gate: int = Field(default=MAX_GATE, ge=1, le=MAX_GATE)
    max_static_gate: int = Field(default=MAX_GATE, ge=1, le=MAX_GATE)
    unmanned_s: int = Field(default=5, ge=0, le=65535)
    min_energy: int = Field(default=20, ge=0, le=100)
    max_distance_cm: int = Field(default=300, gt=0)
    hold_s: float = Field(default=5.0, ge=0)

    @model_validator(mode="after")
    def _desk_or_room(self) -> RadarConfig:
        # A radar's reading means one thing: someone at this desk, or someone in this room.
        if (self.desk is None) == (self.room is None):
            raise ValueError(f"radar {self.device!r}: set exactly one of `desk` or `room`")
        return self


class PresenceFilter:
    """Turns the radar's raw reports into a steady present/absent state (sans-io).

    A report counts as "someone there" when its moving or stationary target has
    at least `min_energy` and is no farther than `max_distance_cm` (the radar also
    sees people at the next desk). Presence turns on at the first such report and
    turns off only after `hold_s` without one, because a person sitting still
    drops below the threshold for a moment now and then.
    """

    def __init__(
        self, *, min_energy: int = 20, max_distance_cm: int = 300, hold_s: float = 5.0
    ) -> None:
        self.min_energy = min_energy
        self.max_distance_cm = max_distance_cm
        self.hold_s = hold_s
        self.present = False
        self.last_seen: float | None = None

    def sees_someone(self, report: Report) -> bool:
        target = report.target
        moving = (
            target.moving
            and report.moving_energy >= self.min_energy
            and report.moving_cm <= self.max_distance_cm
        )
        still = (
            target.stationary
            and report.still_energy >= self.min_energy
            and report.still_cm <= self.max_distance_cm
        )
        return moving or still

    def update(self, report: Report, now: float) -> bool | None:
        """Feed one report received at `now`; returns the new state if it changed."""
        if self.sees_someone(report):
            self.last_seen = now
            if not self.present:
                self.present = True
                return True
            return None
        return self.expire(now)

    def expire(self, now: float) -> bool | None:
        """Turn presence off if the hold ran out; returns False if that happened now."""
        if self.present and (self.last_seen is None or now - self.last_seen >= self.hold_s):
            self.present = False
            return False
        return None


class RadarError(ConnectionError):
    """The radar did not answer a configuration command."""


class RadarDriver:
    """Supervised driver for one LD2410; see the module docstring."""

    kind = "radar"

    def __init__(
        self,
        config: RadarConfig,
        node_id: str,
        publish: Publish,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] | None = None,
        reassert_s: float = REASSERT_S,
        command_timeout_s: float = COMMAND_TIMEOUT_S,
    ) -> None:
        self.config = config
        self.device_id = config.device
        self.node_id = node_id
        self._publish = publish
        self._backoff = backoff or Backoff(base=0.2, cap=10.0)
        # Injectable so tests can step the hold time instead of sleeping through it.
        self._clock = clock or time.monotonic
        self._reassert_s = reassert_s
        self._command_timeout_s = command_timeout_s
        self.filter = PresenceFilter(
            min_energy=config.min_energy,
            max_distance_cm=config.max_distance_cm,
            hold_s=config.hold_s,
        )
        self._decoder = FrameDecoder()
        self._rejected_before = 0
        self._reasons_before: Counter[str] = Counter()
        self._online = False
        self._last_reading_ts: float | None = None
        self._last_publish: float | None = None
        self.firmware: FirmwareVersion | None = None
        self.reports = 0
        self.sessions = 0
        self.published = 0
        self.last_error: str | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    # -- public ---------------------------------------------------------------------------

    @property
    def online(self) -> bool:
        return self._online

    @property
    def rejected_frames(self) -> int:
        return self._rejected_before + self._decoder.stats.rejected

    @property
    def rejected_by_reason(self) -> Counter[str]:
        """Rejected input by the codec's reason code, over every session (for /metrics)."""
        return self._reasons_before + self._decoder.stats.by_reason

    async def run(self) -> None:
        """Keep the radar session alive until cancelled."""
        await supervise(
            f"radar {self.device_id} on {self.config.port}",
            self._session,
            backoff=self._backoff,
            on_down=self._on_down,
        )

    def health(self) -> contract.DeviceHealth:
        if self._online:
            detail = str(self.firmware) if self.firmware is not None else None
        else:
            detail = f"offline: {self.last_error}" if self.last_error else "offline"
        return contract.DeviceHealth(
            node=self.node_id,
            device=self.device_id,
            kind="radar",
            online=self._online,
            rejected_frames=self.rejected_frames,
            last_reading_ts=self._last_reading_ts,
            detail=detail[:128] if detail else None,
        )

    # -- session ------------------------------------------------------------------------------

    async def _session(self) -> None:
        reader, writer = await serial_asyncio_fast.open_serial_connection(
            url=self.config.port, baudrate=self.config.baudrate
        )
        self.sessions += 1
        self._rejected_before += self._decoder.stats.rejected
        self._reasons_before.update(self._decoder.stats.by_reason)
        self._decoder = FrameDecoder()
        self._reader, self._writer = reader, writer
        try:
            await self._configure()
            self._online = True
            self._backoff.reset()
            self.last_error = None
            log.info("radar %s online (%s)", self.device_id, self.firmware)
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    raise EOFError("port closed")
                # A device that stops sending (port open, nothing arrives) stops beating.
                beat()
                self._handle(data)
        finally:
            self._online = False
            self._reader = self._writer = None
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _configure(self) -> None:
        # Always leave configuration mode, even when a step failed: a radar left
        # in it stops reporting until it is power-cycled.
        await self._command(EnableConfiguration())
        try:
            ack = await self._command(ReadFirmwareVersion())
            if isinstance(ack.info, FirmwareVersion):
                self.firmware = ack.info
            cfg = self.config
            ack = await self._command(
                SetMaxGates(cfg.max_moving_gate, cfg.max_static_gate, cfg.unmanned_s)
            )
            if not ack.ok:
                log.warning("radar %s refused max gates (status %d)", self.device_id, ack.status)
        finally:
            await self._command(EndConfiguration())

    async def _command(self, command: Command) -> Ack:
        """Send one command and wait for its ACK, handling reports that arrive meanwhile."""
        assert self._reader is not None and self._writer is not None
        word = command_word(command)
        wire = encode_command(command)
        for _attempt in range(COMMAND_ATTEMPTS):
            self._writer.write(wire)
            try:
                async with asyncio.timeout(self._command_timeout_s):
                    while True:
                        data = await self._reader.read(READ_SIZE)
                        if not data:
                            raise EOFError("port closed")
                        ack = self._handle(data, want=word)
                        if ack is not None:
                            return ack
            except TimeoutError:
                continue
        raise RadarError(f"no ACK to {type(command).__name__} after {COMMAND_ATTEMPTS} tries")

    def _handle(self, data: bytes, want: int | None = None) -> Ack | None:
        found: Ack | None = None
        for item in self._decoder.feed(data):
            if isinstance(item, Report):
                self._on_report(item)
            elif isinstance(item, Ack) and item.command == want:
                found = item
        return found

    def _on_report(self, report: Report) -> None:
        now = self._clock()
        self.reports += 1
        self._last_reading_ts = contract.now()
        changed = self.filter.update(report, now)
        due = self._last_publish is None or now - self._last_publish >= self._reassert_s
        if changed is not None or due:
            self._last_publish = now
            self.published += 1
            self._publish(self._presence_message())

    def _presence_message(self) -> contract.Message:
        cfg = self.config
        if cfg.room is not None:
            return contract.RoomPresence(
                node=self.node_id, room=cfg.room, present=self.filter.present, sensor=cfg.device
            )
        assert cfg.desk is not None  # the config validator guarantees one of the two
        return contract.Presence(
            node=self.node_id, desk=cfg.desk, present=self.filter.present, source="radar"
        )

    def _on_down(self, reason: str) -> None:
        self._online = False
        self.last_error = reason
