"""The plain, database-free view of one scheduled trip that live tracking, ETAs and the
GTFS-Realtime feed work on.

`cloud.transport.schedule` builds these from the GTFS tables; the tracker, the ETA
predictor and the shuttle simulator take them as they are, so they stay testable
without SQL.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ShapePoint:
    """A vertex of the trip's shape; `dist_m` is the distance along the shape from its start."""

    lat: float
    lon: float
    dist_m: float


@dataclass(frozen=True, slots=True)
class StopPlan:
    """One stop of a trip, in order, with its scheduled times as Unix seconds on the service day."""

    stop_id: str
    stop_sequence: int
    name: str
    lat: float
    lon: float
    dist_m: float  # where the stop projects onto the shape
    arrival: float
    departure: float


@dataclass(frozen=True, slots=True)
class TripPlan:
    """One trip on one service day: its route, its shape and its stops with scheduled times."""

    trip_id: str
    route_id: str
    service_date: str  # YYYYMMDD, the GTFS service day (WITA)
    shape: tuple[ShapePoint, ...]
    stops: tuple[StopPlan, ...]
    headsign: str = ""
    direction_id: int = 0

    @property
    def start(self) -> float:
        return self.stops[0].departure

    @property
    def end(self) -> float:
        return self.stops[-1].arrival

    @property
    def length_m(self) -> float:
        return self.shape[-1].dist_m if self.shape else 0.0
