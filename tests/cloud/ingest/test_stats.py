"""The ingestion counters /metrics reads: accepted kinds and the lag histogram's buckets."""

from __future__ import annotations

from cloud.ingest.pipeline import _lag_channel
from cloud.ingest.stats import LAG_BUCKETS_S, IngestStats
from ruang import contract


def test_lag_lands_in_the_first_bucket_whose_bound_holds_it_and_negative_lag_is_zero() -> None:
    stats = IngestStats()
    for lag in (0.0, 0.01, 0.011, 7.0, -3.0, 10 * LAG_BUCKETS_S[-1]):
        stats.accept("presence", "telemetry", lag)
    counts = stats.lag.counts["telemetry"]
    assert len(counts) == len(LAG_BUCKETS_S) + 1
    assert counts[0] == 3  # 0.0, 0.01 (le is inclusive) and -3.0 counted as 0
    assert counts[LAG_BUCKETS_S.index(0.025)] == 1
    assert counts[LAG_BUCKETS_S.index(10.0)] == 1
    assert counts[-1] == 1  # past the last bound: +Inf only
    assert stats.lag.sums["telemetry"] == 0.01 + 0.011 + 7.0 + 10 * LAG_BUCKETS_S[-1]
    assert stats.accepted == {"presence": 6}


def test_state_messages_are_counted_but_have_no_lag() -> None:
    stats = IngestStats()
    channel = _lag_channel(contract.Channel.STATE)
    assert channel is None
    stats.accept("state", channel, 3.0e6)
    assert stats.accepted == {"state": 1}
    assert stats.lag.counts == {}
    assert [_lag_channel(c) for c in (contract.Channel.EVENTS, contract.Channel.BACKLOG)] == [
        "events",
        "backlog",
    ]
