"""Driver of a serial NMEA 0183 GNSS receiver fitted to a vehicle (shuttle, pool car).

Reads sentences from the receiver, merges GGA (fix quality, satellites, HDOP),
RMC (validity, speed, course) and VTG (course, speed in km/h) into one fix
state, and publishes `contract.Position` on a fixed interval rather than per
sentence: a 1 Hz receiver would otherwise flood a cellular uplink. While the
receiver reports no fix nothing is published and `health()` says "no fix".
The port is supervised like every device: unplugged -> offline, retried,
picked up again when it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import serial_asyncio_fast
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.devices import Publish
from edge.devices.supervisor import supervise
from edge.watchdog import beat
from firmware_bridge.nmea import GGA, RMC, VTG, LineDecoder
from ruang import contract
from ruang.backoff import Backoff

log = logging.getLogger(__name__)

READ_SIZE = 4096
MIN_STALE_S = 3.0


class GpsConfig(BaseModel):
    """One GNSS receiver in the edge settings file (`gps:` list)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: contract.DeviceId
    vehicle: contract.DeviceId | None = None
    """Vehicle id published in Position; defaults to the device id."""
    port: str = Field(min_length=1, description="device path, pty or socket://host:port")
    baudrate: int = Field(default=9600, gt=0)
    publish_interval_s: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _default_vehicle(self) -> GpsConfig:
        if self.vehicle is None:
            object.__setattr__(self, "vehicle", self.device)
        return self


@dataclass
class FixState:
    """What the receiver last told us, merged over sentence types."""

    lat: float | None = None
    lon: float | None = None
    fix_quality: int = 0
    satellites: int | None = None
    hdop: float | None = None
    speed_kmh: float | None = None
    heading_deg: float | None = None
    has_fix: bool = False
    updated: float | None = None
    """Clock time of the last sentence that said anything about the fix."""

    def apply(self, sentence: GGA | RMC | VTG, now: float) -> None:
        if isinstance(sentence, GGA):
            self.fix_quality = sentence.fix_quality
            self.satellites = sentence.satellites
            self.hdop = sentence.hdop
            self.has_fix = sentence.has_fix
            if sentence.has_fix:
                self.lat, self.lon = sentence.lat, sentence.lon
        elif isinstance(sentence, RMC):
            self.has_fix = sentence.has_fix
            if sentence.has_fix:
                self.lat, self.lon = sentence.lat, sentence.lon
                if sentence.speed_kmh is not None:
                    self.speed_kmh = sentence.speed_kmh
                if sentence.course_deg is not None:
                    self.heading_deg = sentence.course_deg
                if self.fix_quality == 0:
                    # RMC alone (some receivers are set to RMC only): a valid fix
                    # without a GGA quality is a plain GPS fix.
                    self.fix_quality = 1
        elif sentence.mode != "N":
            # VTG carries km/h directly; the RMC knots conversion is only a fallback.
            if sentence.speed_kmh is not None:
                self.speed_kmh = sentence.speed_kmh
            if sentence.course_true_deg is not None:
                self.heading_deg = sentence.course_true_deg
        self.updated = now


class GpsDriver:
    """Supervised driver for one serial GNSS receiver; see the module docstring."""

    kind = "gps"

    def __init__(
        self,
        config: GpsConfig,
        node_id: str,
        publish: Publish,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.config = config
        self.device_id = config.device
        self.vehicle = config.vehicle or config.device
        self.node_id = node_id
        self._publish = publish
        self._backoff = backoff or Backoff(base=0.2, cap=10.0)
        self._clock = clock or time.monotonic
        self._decoder = LineDecoder()
        self._rejected_before = 0
        self._reasons_before: Counter[str] = Counter()
        self._online = False
        self._last_reading_ts: float | None = None
        self.fix = FixState()
        self.sentences = 0
        self.sessions = 0
        self.published = 0
        self.last_error: str | None = None

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

    def current_fix(self) -> bool:
        """True when the last word from the receiver is a fix and it is recent."""
        fix = self.fix
        if not fix.has_fix or fix.updated is None or fix.lat is None or fix.lon is None:
            return False
        stale_after = max(MIN_STALE_S, 2 * self.config.publish_interval_s)
        return self._clock() - fix.updated <= stale_after

    def last_fix(self, max_age_s: float) -> tuple[float, float] | None:
        """(lat, lon) of the last fix if it is at most `max_age_s` old (stop inference)."""
        fix = self.fix
        if not fix.has_fix or fix.updated is None or fix.lat is None or fix.lon is None:
            return None
        return (fix.lat, fix.lon) if self._clock() - fix.updated <= max_age_s else None

    def position(self) -> contract.Position | None:
        """The Position to publish now, or None without a current fix."""
        if not self.current_fix():
            return None
        fix = self.fix
        assert fix.lat is not None and fix.lon is not None
        heading = fix.heading_deg % 360 if fix.heading_deg is not None else None
        return contract.Position(
            node=self.node_id,
            vehicle=self.vehicle,
            lat=fix.lat,
            lon=fix.lon,
            speed_kmh=min(max(fix.speed_kmh or 0.0, 0.0), 400.0),
            heading_deg=heading,
            fix_quality=min(fix.fix_quality, 8),
            satellites=fix.satellites,
            hdop=min(fix.hdop, 99.99) if fix.hdop is not None else None,
        )

    async def run(self) -> None:
        await supervise(
            f"gps {self.device_id} on {self.config.port}",
            self._session,
            backoff=self._backoff,
            on_down=self._on_down,
        )

    def health(self) -> contract.DeviceHealth:
        if not self._online:
            detail = f"offline: {self.last_error}" if self.last_error else "offline"
        elif self.current_fix():
            detail = f"fix quality {self.fix.fix_quality}, {self.fix.satellites or 0} satellites"
        else:
            detail = "no fix"
        return contract.DeviceHealth(
            node=self.node_id,
            device=self.device_id,
            kind="gps",
            online=self._online,
            rejected_frames=self.rejected_frames,
            last_reading_ts=self._last_reading_ts,
            detail=detail[:128],
        )

    # -- session ----------------------------------------------------------------------------

    async def _session(self) -> None:
        reader, writer = await serial_asyncio_fast.open_serial_connection(
            url=self.config.port, baudrate=self.config.baudrate
        )
        self.sessions += 1
        self._rejected_before += self._decoder.stats.rejected
        self._reasons_before.update(self._decoder.stats.by_reason)
        self._decoder = LineDecoder()
        self.fix = FixState()
        self._online = True
        self.last_error = None
        self._backoff.reset()
        ticker = asyncio.create_task(self._tick())
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    raise EOFError("port closed")
                # A device that stops sending (port open, nothing arrives) stops beating.
                beat()
                self._handle(data)
        finally:
            self._online = False
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _handle(self, data: bytes) -> None:
        now = self._clock()
        for item in self._decoder.feed(data):
            if isinstance(item, GGA | RMC | VTG):
                self.sentences += 1
                self._last_reading_ts = contract.now()
                self.fix.apply(item, now)

    async def _tick(self) -> None:
        # A fixed cadence, independent of how many sentences arrive.
        while True:
            await asyncio.sleep(self.config.publish_interval_s)
            position = self.position()
            if position is not None:
                self.published += 1
                self._publish(position)

    def _on_down(self, reason: str) -> None:
        self._online = False
        self.last_error = reason
