"""A serial GNSS receiver on a pseudo-terminal, driving a route around the IKN campus.

`GpsSimulator` moves a vehicle along a closed route of waypoints at a set speed
and emits GGA, RMC and VTG sentences once per simulated second, like a typical
9600-baud u-blox/MediaTek module. `time_factor` compresses time: at 10 the
simulated second lasts 0.1 s and the vehicle covers ten times the ground per
real second, so tests do not wait. Faults: bad checksums, garbage and periods
without a fix (for tunnels and car parks).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from firmware_bridge.nmea import GGA, KNOT_KMH, RMC, VTG, encode
from simulators.pty import PtyDevice

EARTH_RADIUS_M = 6_371_000.0
# A loop around the Nusantara (IKN) government core, near -0.97, 116.70.
IKN_ROUTE: tuple[tuple[float, float], ...] = (
    (-0.9700, 116.7000),
    (-0.9700, 116.7080),
    (-0.9640, 116.7080),
    (-0.9640, 116.7000),
)
DEFAULT_START = dt.datetime(2024, 8, 17, 1, 0, 0, tzinfo=dt.UTC)


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def bearing_deg(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Initial course from a to b, degrees true, 0..360."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    y = math.sin(lon2 - lon1) * math.cos(lat2)
    x = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(lon2 - lon1)
    return math.degrees(math.atan2(y, x)) % 360


@dataclass
class GpsFault:
    """bad_checksum_next: spoil the checksum of the next N sentences.
    garbage_before_next: raw bytes written before the next sentence.
    """

    bad_checksum_next: int = 0
    garbage_before_next: bytes = b""


@dataclass(frozen=True)
class Sample:
    """Where the simulated vehicle is at one simulated second."""

    when: dt.datetime
    lat: float
    lon: float
    speed_kmh: float
    course_deg: float
    fix: bool


class GpsSimulator(PtyDevice):
    """Use as `async with GpsSimulator(route, speed_kmh=30, time_factor=20) as gps`."""

    def __init__(
        self,
        route: Sequence[tuple[float, float]] = IKN_ROUTE,
        *,
        speed_kmh: float = 30.0,
        time_factor: float = 1.0,
        start: dt.datetime = DEFAULT_START,
        satellites: int = 9,
        hdop: float = 0.9,
        altitude_m: float = 45.0,
        talker: str = "GN",
        fault: GpsFault | None = None,
    ) -> None:
        super().__init__()
        if len(route) < 2:
            raise ValueError("a route needs at least two waypoints")
        self.route = tuple(route)
        self.speed_kmh = speed_kmh
        self.time_factor = time_factor
        self.satellites = satellites
        self.hdop = hdop
        self.altitude_m = altitude_m
        self.talker = talker
        self.fault = fault or GpsFault()
        self.sim_time = start
        self.travelled_m = 0.0
        self.lost_fix = False
        self._lost_ticks = 0
        self.sentences_sent = 0
        self.last_sample: Sample | None = None
        self._legs = [
            distance_m(self.route[i], self.route[(i + 1) % len(self.route)])
            for i in range(len(self.route))
        ]
        self._timer: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> GpsSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- knobs ------------------------------------------------------------------------

    def lose_fix(self, seconds: int | None = None) -> None:
        """No fix from now on: for `seconds` simulated seconds, or until `regain_fix()`."""
        self.lost_fix = seconds is None
        self._lost_ticks = seconds or 0

    def regain_fix(self) -> None:
        self.lost_fix = False
        self._lost_ticks = 0

    @property
    def has_fix(self) -> bool:
        return not self.lost_fix and self._lost_ticks == 0

    def position(self) -> tuple[float, float, float]:
        """(lat, lon, course) after `travelled_m` metres on the closed route."""
        along = self.travelled_m % sum(self._legs)
        for i, leg in enumerate(self._legs):
            if along <= leg or i == len(self._legs) - 1:
                a, b = self.route[i], self.route[(i + 1) % len(self.route)]
                f = along / leg if leg else 0.0
                lat = a[0] + (b[0] - a[0]) * f
                lon = a[1] + (b[1] - a[1]) * f
                return lat, lon, bearing_deg(a, b)
            along -= leg
        raise AssertionError("unreachable")  # pragma: no cover

    def sentences(self, sample: Sample) -> list[bytes]:
        """The GGA, RMC and VTG a receiver would send for `sample`."""
        when = sample.when.time().replace(tzinfo=None)
        t = self.talker
        if not sample.fix:
            return [
                encode(GGA(t, when, None, None, 0, 0, None, None)),
                encode(RMC(t, when, False, None, None, None, None, sample.when.date(), mode="N")),
                encode(VTG(t, None, None, None, None, "N")),
            ]
        knots = sample.speed_kmh / KNOT_KMH
        return [
            encode(
                GGA(t, when, sample.lat, sample.lon, 1, self.satellites, self.hdop, self.altitude_m)
            ),
            encode(
                RMC(
                    t,
                    when,
                    True,
                    sample.lat,
                    sample.lon,
                    knots,
                    sample.course_deg,
                    sample.when.date(),
                    mode="A",
                )
            ),
            encode(VTG(t, sample.course_deg, None, knots, sample.speed_kmh, "A")),
        ]

    # -- internals ----------------------------------------------------------------------

    def _started(self) -> None:
        self._schedule()

    def _stopped(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _schedule(self) -> None:
        if not self._closed and self.time_factor > 0:
            assert self._loop is not None
            self._timer = self._loop.call_later(1 / self.time_factor, self._tick)

    def _tick(self) -> None:
        if self._closed:
            return
        self.sim_time += dt.timedelta(seconds=1)
        fix = self.has_fix
        if self._lost_ticks:
            self._lost_ticks -= 1
        # The vehicle keeps driving in a tunnel; only the receiver loses track.
        self.travelled_m += self.speed_kmh / 3.6
        lat, lon, course = self.position()
        sample = Sample(self.sim_time, lat, lon, self.speed_kmh, course, fix)
        self.last_sample = sample
        for sentence in self.sentences(sample):
            self._emit(sentence)
        self._schedule()

    def _emit(self, sentence: bytes) -> None:
        fault = self.fault
        if fault.garbage_before_next:
            garbage, fault.garbage_before_next = fault.garbage_before_next, b""
            self._write(garbage)
        if fault.bad_checksum_next > 0:
            fault.bad_checksum_next -= 1
            star = sentence.rindex(b"*")
            wrong = (int(sentence[star + 1 : star + 3], 16) ^ 0x5A) & 0xFF
            sentence = sentence[: star + 1] + f"{wrong:02X}".encode() + b"\r\n"
        self._write(sentence)
        self.sentences_sent += 1
