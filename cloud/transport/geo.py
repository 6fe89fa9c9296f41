"""Plane geometry on a small patch of the Earth: distances, and where a GNSS fix lies along
a trip's shape.

Everything here is pure and database-free. Distances are great-circle (haversine) metres.
Projection onto a shape works segment by segment in a local equirectangular frame centred
on each segment: across the few hundred metres of one segment of a city route the error of
that frame is far below GNSS noise, and it keeps the maths to a dot product.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cloud.transport.plan import ShapePoint

EARTH_RADIUS_M = 6_371_000.0


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial course from the first point to the second, degrees true in [0, 360)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


def build_shape(points: Sequence[tuple[float, float]]) -> tuple[ShapePoint, ...]:
    """Shape vertices with their cumulative distance along the polyline."""
    out: list[ShapePoint] = []
    along = 0.0
    for i, (lat, lon) in enumerate(points):
        if i:
            prev = out[-1]
            along += haversine_m(prev.lat, prev.lon, lat, lon)
        out.append(ShapePoint(lat, lon, along))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Projection:
    """The nearest point of a shape to a fix."""

    dist_m: float  # distance along the shape from its start
    cross_m: float  # distance from the fix to the shape (always >= 0)
    lat: float
    lon: float
    segment: int  # index of the segment's first vertex


def _project_segment(
    a: ShapePoint, b: ShapePoint, lat: float, lon: float
) -> tuple[float, float, float, float]:
    """(fraction along a->b clamped to [0, 1], cross-track metres, lat, lon) of the foot."""
    # Local frame in metres around a: x east, y north.
    k = math.radians(1.0) * EARTH_RADIUS_M
    coslat = math.cos(math.radians(a.lat))
    bx, by = (b.lon - a.lon) * k * coslat, (b.lat - a.lat) * k
    px, py = (lon - a.lon) * k * coslat, (lat - a.lat) * k
    seg2 = bx * bx + by * by
    f = 0.0 if seg2 == 0 else max(0.0, min(1.0, (px * bx + py * by) / seg2))
    fx, fy = bx * f, by * f
    cross = math.hypot(px - fx, py - fy)
    return f, cross, a.lat + (b.lat - a.lat) * f, a.lon + (b.lon - a.lon) * f


def project(
    shape: Sequence[ShapePoint],
    lat: float,
    lon: float,
    *,
    lo_m: float = -math.inf,
    hi_m: float = math.inf,
) -> Projection:
    """Project a fix onto the shape, considering only the part between `lo_m` and `hi_m`.

    The window matters on shapes that come back on themselves (out-and-back routes,
    loops): the same street is then at two distances along the shape, and the tracker
    keeps the one near where the vehicle already is.
    """
    if not shape:
        raise ValueError("empty shape")
    if len(shape) == 1:
        p = shape[0]
        return Projection(p.dist_m, haversine_m(lat, lon, p.lat, p.lon), p.lat, p.lon, 0)
    best: Projection | None = None
    for i in range(len(shape) - 1):
        a, b = shape[i], shape[i + 1]
        if b.dist_m < lo_m or a.dist_m > hi_m:
            continue
        f, cross, flat, flon = _project_segment(a, b, lat, lon)
        along = a.dist_m + (b.dist_m - a.dist_m) * f
        if along < lo_m or along > hi_m:
            # The foot lies outside the window: use the window's edge on this segment.
            along = max(lo_m, min(hi_m, along))
            flat, flon = point_at(shape, along)
            cross = haversine_m(lat, lon, flat, flon)
        if best is None or cross < best.cross_m:
            best = Projection(along, cross, flat, flon, i)
    if best is None:
        # The window lies wholly outside the shape: fall back to the whole shape.
        return project(shape, lat, lon)
    return best


def point_at(shape: Sequence[ShapePoint], dist_m: float) -> tuple[float, float]:
    """The (lat, lon) at `dist_m` along the shape, clamped to its ends."""
    if not shape:
        raise ValueError("empty shape")
    if dist_m <= shape[0].dist_m:
        return shape[0].lat, shape[0].lon
    if dist_m >= shape[-1].dist_m:
        return shape[-1].lat, shape[-1].lon
    lo, hi = 0, len(shape) - 1
    while hi - lo > 1:  # binary search: shapes of real routes have hundreds of vertices
        mid = (lo + hi) // 2
        if shape[mid].dist_m <= dist_m:
            lo = mid
        else:
            hi = mid
    a, b = shape[lo], shape[hi]
    span = b.dist_m - a.dist_m
    f = 0.0 if span <= 0 else (dist_m - a.dist_m) / span
    return a.lat + (b.lat - a.lat) * f, a.lon + (b.lon - a.lon) * f


def course_at(shape: Sequence[ShapePoint], dist_m: float) -> float:
    """Direction of travel (degrees true) of the shape's segment at `dist_m`."""
    if len(shape) < 2:
        return 0.0
    for i in range(len(shape) - 1):
        a, b = shape[i], shape[i + 1]
        if b.dist_m >= dist_m and b.dist_m > a.dist_m:
            return bearing_deg(a.lat, a.lon, b.lat, b.lon)
    a, b = shape[-2], shape[-1]
    return bearing_deg(a.lat, a.lon, b.lat, b.lon)
