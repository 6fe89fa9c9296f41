"""Where BLE badges are: RSSI filtering and zone fusion (sans-io, injectable time).

Per (badge, scanner) the calibrated RSSI is smoothed with hysteresis
(`RssiFilter`); all scanners of a node are fused into one zone/desk estimate
with dwell (`ZoneFusion`), whose changes become `BadgePresence`; a badge held
close to a desk scanner, or its button pressed, is a tap (edge/devices/ble_taps.py).
The scanner driver (edge/devices/ble.py) feeds these from adverts.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from .ble_config import BleScannerConfig

# --- filtering ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FilteredReading:
    rssi: float  # calibrated, smoothed dBm
    near: bool
    ts: float  # monotonic time of the last sample


class RssiFilter:
    """Exponential moving average per key with enter/exit hysteresis.

    A single body turning or a hand over the badge moves RSSI by 10 dB for one
    advert; the average absorbs that, and the gap between `enter_dbm` and
    `exit_dbm` stops a badge sitting right at the threshold from flickering.
    """

    def __init__(self, alpha: float = 0.3, enter_dbm: float = -70.0, exit_dbm: float = -78.0):
        if exit_dbm >= enter_dbm:
            raise ValueError("exit_dbm must be below enter_dbm")
        self.alpha = alpha
        self.enter_dbm = enter_dbm
        self.exit_dbm = exit_dbm
        self._state: dict[Hashable, FilteredReading] = {}

    def update(
        self,
        key: Hashable,
        rssi: float,
        now: float,
        *,
        enter_dbm: float | None = None,
        exit_dbm: float | None = None,
    ) -> FilteredReading:
        enter = self.enter_dbm if enter_dbm is None else enter_dbm
        leave = self.exit_dbm if exit_dbm is None else exit_dbm
        previous = self._state.get(key)
        if previous is None:
            value, near = rssi, False
        else:
            value = previous.rssi + self.alpha * (rssi - previous.rssi)
            near = previous.near
        if near and value <= leave:
            near = False
        elif not near and value >= enter:
            near = True
        reading = FilteredReading(value, near, now)
        self._state[key] = reading
        return reading

    def get(self, key: Hashable) -> FilteredReading | None:
        return self._state.get(key)

    def forget(self, key: Hashable) -> None:
        self._state.pop(key, None)


# --- fusion ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScannerPlace:
    scanner_id: str
    zone: str
    desk: str | None = None
    calibration_db: float = 0.0
    tap_threshold_dbm: float = -45.0
    enter_dbm: float | None = None
    exit_dbm: float | None = None

    @classmethod
    def from_config(cls, config: BleScannerConfig) -> ScannerPlace:
        return cls(
            config.id,
            config.zone,
            config.desk,
            config.calibration_db,
            config.tap_threshold_dbm,
            config.enter_dbm,
            config.exit_dbm,
        )


Place = tuple[str, str | None]  # (zone, desk)


@dataclass(frozen=True, slots=True)
class Estimate:
    place: Place | None
    confidence: float
    rssi: float | None


@dataclass(frozen=True, slots=True)
class PresenceChange:
    badge: str
    zone: str
    desk: str | None
    present: bool
    confidence: float
    rssi: float | None


@dataclass
class _BadgeTrack:
    readings: dict[str, FilteredReading] = field(default_factory=dict)
    reported: Place | None = None
    reported_confidence: float = 0.0
    has_pending: bool = False
    pending: Place | None = None
    pending_since: float = 0.0


class ZoneFusion:
    """Fuses the filtered readings of several scanners into one place per badge.

    Estimate: among fresh readings (younger than `stale_s`), the places whose
    scanner considers the badge "near" (filtered calibrated RSSI crossed that
    scanner's entry threshold, the zone floor) are candidates; the strongest
    wins. Confidence is a softmax over all fresh places' RSSI with temperature
    T dB: ``1 / sum(exp((r_i - r_best) / T))`` — 1.0 when only one place hears
    the badge, 0.5 for a tie, about 0.88 for a 6 dB margin at T = 3.

    A change (arrive, move, leave) is reported only once the same estimate has
    held for `dwell_s`, so walking past a zone does not register.
    """

    def __init__(
        self,
        scanners: Iterable[ScannerPlace],
        *,
        alpha: float = 0.3,
        enter_dbm: float = -70.0,
        exit_dbm: float = -78.0,
        stale_s: float = 15.0,
        dwell_s: float = 10.0,
        temperature_db: float = 3.0,
    ) -> None:
        self.places = {s.scanner_id: s for s in scanners}
        self.filter = RssiFilter(alpha, enter_dbm, exit_dbm)
        self.stale_s = stale_s
        self.dwell_s = dwell_s
        self.temperature_db = temperature_db
        self._tracks: dict[str, _BadgeTrack] = {}

    def observe(self, badge: str, scanner_id: str, rssi: float, now: float) -> list[PresenceChange]:
        """One calibrated reading of `badge` at `scanner_id`; returns any reported changes."""
        place = self.places[scanner_id]
        reading = self.filter.update(
            (badge, scanner_id), rssi, now, enter_dbm=place.enter_dbm, exit_dbm=place.exit_dbm
        )
        track = self._tracks.setdefault(badge, _BadgeTrack())
        track.readings[scanner_id] = reading
        return self._evaluate(badge, track, now)

    def tick(self, now: float) -> list[PresenceChange]:
        """Re-evaluates every badge so silent badges expire; call about once a second."""
        changes: list[PresenceChange] = []
        for badge, track in list(self._tracks.items()):
            changes.extend(self._evaluate(badge, track, now))
            if track.reported is None and not track.has_pending and not self._fresh(track, now):
                for scanner_id in track.readings:
                    self.filter.forget((badge, scanner_id))
                del self._tracks[badge]
        return changes

    def located(self, badge: str) -> Place | None:
        track = self._tracks.get(badge)
        return track.reported if track else None

    def reading(self, badge: str, scanner_id: str) -> FilteredReading | None:
        track = self._tracks.get(badge)
        return track.readings.get(scanner_id) if track else None

    def nearest_desk(self, badge: str, now: float) -> str | None:
        """The desk whose scanner hears `badge` strongest and considers it near."""
        track = self._tracks.get(badge)
        if track is None:
            return None
        best: tuple[float, str] | None = None
        for scanner_id, reading in self._fresh(track, now).items():
            desk = self.places[scanner_id].desk
            if desk is not None and reading.near and (best is None or reading.rssi > best[0]):
                best = (reading.rssi, desk)
        return best[1] if best else None

    def estimate(self, badge: str, now: float) -> Estimate:
        track = self._tracks.get(badge)
        if track is None:
            return Estimate(None, 0.0, None)
        return self._estimate(track, now)

    def _fresh(self, track: _BadgeTrack, now: float) -> dict[str, FilteredReading]:
        return {s: r for s, r in track.readings.items() if now - r.ts <= self.stale_s}

    def _estimate(self, track: _BadgeTrack, now: float) -> Estimate:
        strongest: dict[Place, float] = {}
        near: dict[Place, float] = {}
        for scanner_id, reading in self._fresh(track, now).items():
            scanner = self.places[scanner_id]
            place = (scanner.zone, scanner.desk)
            strongest[place] = max(strongest.get(place, -math.inf), reading.rssi)
            if reading.near:
                near[place] = max(near.get(place, -math.inf), reading.rssi)
        if not near:
            return Estimate(None, 0.0, None)
        best = max(near, key=lambda p: near[p])
        best_rssi = near[best]
        total = sum(math.exp((r - best_rssi) / self.temperature_db) for r in strongest.values())
        # strongest[best] can exceed near[best] when two scanners share a place; clamp.
        return Estimate(best, min(1.0, 1.0 / total), best_rssi)

    def _evaluate(self, badge: str, track: _BadgeTrack, now: float) -> list[PresenceChange]:
        estimate = self._estimate(track, now)
        if estimate.place == track.reported:
            track.has_pending = False
            if estimate.place is not None:
                track.reported_confidence = estimate.confidence
            return []
        if not track.has_pending or track.pending != estimate.place:
            track.has_pending, track.pending, track.pending_since = True, estimate.place, now
        if now - track.pending_since < self.dwell_s:
            return []
        changes: list[PresenceChange] = []
        if track.reported is not None:
            zone, desk = track.reported
            changes.append(PresenceChange(badge, zone, desk, False, estimate.confidence, None))
            if estimate.place is None:
                # Leaving with nobody else hearing it: as sure as the last sighting was.
                changes[-1] = PresenceChange(
                    badge, zone, desk, False, track.reported_confidence, None
                )
        if estimate.place is not None:
            zone, desk = estimate.place
            changes.append(
                PresenceChange(badge, zone, desk, True, estimate.confidence, estimate.rssi)
            )
        track.reported = estimate.place
        track.reported_confidence = estimate.confidence
        track.has_pending = False
        return changes
