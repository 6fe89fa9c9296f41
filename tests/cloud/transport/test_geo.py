"""Geometry: haversine distances and projecting fixes onto a trip's shape."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.transport.geo import bearing_deg, build_shape, haversine_m, point_at, project
from simulators.shuttle import SAMPLE_WAYPOINTS

SHAPE = build_shape(SAMPLE_WAYPOINTS)
lat = st.floats(min_value=-1.5, max_value=-0.5)
lon = st.floats(min_value=116.2, max_value=117.2)


def test_haversine_of_a_known_distance() -> None:
    # 0.01 degree of longitude near the equator is about 1.11 km.
    assert haversine_m(-0.97, 116.70, -0.97, 116.71) == pytest.approx(1111.9, abs=1)
    assert bearing_deg(-0.97, 116.70, -0.97, 116.71) == pytest.approx(90, abs=0.01)


@given(lat, lon, lat, lon, lat, lon)
def test_haversine_is_a_metric(
    a1: float, o1: float, a2: float, o2: float, a3: float, o3: float
) -> None:
    d12 = haversine_m(a1, o1, a2, o2)
    assert d12 == pytest.approx(haversine_m(a2, o2, a1, o1), abs=1e-6)
    assert haversine_m(a1, o1, a1, o1) == 0
    assert d12 <= haversine_m(a1, o1, a3, o3) + haversine_m(a3, o3, a2, o2) + 1e-6


def test_shape_distances_accumulate() -> None:
    assert SHAPE[0].dist_m == 0
    assert all(b.dist_m > a.dist_m for a, b in itertools.pairwise(SHAPE))
    total = sum(haversine_m(a.lat, a.lon, b.lat, b.lon) for a, b in itertools.pairwise(SHAPE))
    assert SHAPE[-1].dist_m == pytest.approx(total)


@settings(max_examples=200)
@given(st.floats(min_value=0, max_value=1))
def test_a_point_on_the_shape_projects_back_to_its_distance(f: float) -> None:
    d = f * SHAPE[-1].dist_m
    la, lo = point_at(SHAPE, d)
    p = project(SHAPE, la, lo)
    assert p.cross_m < 0.5
    assert p.dist_m == pytest.approx(d, abs=1.0)


@settings(max_examples=100)
@given(st.floats(min_value=0.05, max_value=0.95), st.floats(min_value=5, max_value=150))
def test_cross_track_distance_of_a_point_beside_a_segment(f: float, off: float) -> None:
    # A point `off` metres to the side of the middle of the first segment.
    a, b = SHAPE[0], SHAPE[1]
    d = a.dist_m + f * (b.dist_m - a.dist_m)
    la, lo = point_at(SHAPE, d)
    course = math.radians(bearing_deg(a.lat, a.lon, b.lat, b.lon) + 90)
    dlat = off * math.cos(course) / 111_195
    dlon = off * math.sin(course) / (111_195 * math.cos(math.radians(la)))
    p = project(SHAPE, la + dlat, lo + dlon, hi_m=b.dist_m)
    assert p.cross_m == pytest.approx(off, rel=0.02)
    assert p.dist_m == pytest.approx(d, abs=2)


def test_window_picks_the_leg_near_the_vehicle_on_a_shape_that_comes_back() -> None:
    out_and_back = build_shape([(-0.97, 116.70), (-0.97, 116.71), (-0.97, 116.70)])
    half = out_and_back[1].dist_m
    la, lo = -0.97, 116.7025
    assert project(out_and_back, la, lo, hi_m=half).dist_m == pytest.approx(half / 4, abs=2)
    assert project(out_and_back, la, lo, lo_m=half).dist_m == pytest.approx(half * 1.75, abs=2)


def test_point_at_clamps_to_the_ends() -> None:
    assert point_at(SHAPE, -10) == (SHAPE[0].lat, SHAPE[0].lon)
    assert point_at(SHAPE, 1e9) == (SHAPE[-1].lat, SHAPE[-1].lon)
