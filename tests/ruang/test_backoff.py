"""Reconnect backoff: full jitter under an exponential cap."""

from __future__ import annotations

import random

from ruang.backoff import Backoff


def test_backoff_delays_stay_under_the_exponential_cap() -> None:
    b = Backoff(base=0.5, cap=8.0, rng=random.Random(1))
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    for ceiling in ceilings:
        assert 0 <= b.next_delay() <= ceiling


def test_backoff_reset_starts_again_from_base() -> None:
    b = Backoff(base=1.0, cap=60.0, rng=random.Random(2))
    for _ in range(10):
        b.next_delay()
    b.reset()
    assert b.next_delay() <= 1.0


def test_many_nodes_spread_their_reconnects() -> None:
    # 200 nodes that lost the broker at the same moment do not come back at once.
    delays = sorted(
        Backoff(base=1.0, cap=30.0, rng=random.Random(i)).next_delay() for i in range(200)
    )
    assert delays[-1] - delays[0] > 0.5
    assert len({round(d, 3) for d in delays}) > 150
