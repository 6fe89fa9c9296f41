"""Ingestion counters (served by /ingest/stats and /metrics) and the rate-limited reject log.

`LagHistogram` counts how late accepted messages arrive (cloud receive time minus
the node's `ts`) in fixed buckets; it is read by cloud/monitoring/metrics.py.
Connection figures (connected, connects) belong to the broker session
(cloud/mqtt/session.py), not here.
"""

from __future__ import annotations

import bisect
import logging
import time
from dataclasses import dataclass, field

from cloud.ingest.decode import reject_category

log = logging.getLogger(__name__)

REJECT_LOG_INTERVAL_S = 10.0

# Upper bounds (seconds) of the lag buckets: live traffic lands in the first ones,
# outbox backlogs after an outage in the last ones.
LAG_BUCKETS_S = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0, 21600.0, 86400.0,
)  # fmt: skip


_bucket_of = bisect.bisect_left


@dataclass
class LagHistogram:
    """Counts per bucket (non-cumulative, the last one is +Inf) and the sum, per channel.

    Plain lists and one bisect per message: the hot path cannot afford a lock.
    """

    counts: dict[str, list[int]] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)

    def observe(self, channel: str, lag_s: float) -> None:
        counts = self.counts.get(channel)
        if counts is None:
            counts = self.counts[channel] = [0] * (len(LAG_BUCKETS_S) + 1)
            self.sums[channel] = 0.0
        if lag_s < 0.0:  # a node clock slightly ahead is not negative lateness
            lag_s = 0.0
        counts[_bucket_of(LAG_BUCKETS_S, lag_s)] += 1
        self.sums[channel] += lag_s


@dataclass
class IngestStats:
    received: int = 0
    # Decoded, valid and inside the clock window, by message kind ("state" for births/wills).
    accepted: dict[str, int] = field(default_factory=dict)
    lag: LagHistogram = field(default_factory=LagHistogram, repr=False)
    applied: int = 0
    duplicates: int = 0
    stale_deaths: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    write_errors: int = 0
    # Messages parked in the dead-letter table (poison or refused for the node's clock).
    dead_lettered: int = 0
    # Failed batches split up to find the message that fails alone.
    isolations: int = 0
    telemetry_dropped: int = 0
    # Boarding and pool-car events applied, by outcome (cloud/transport/rides.py).
    transport: dict[str, int] = field(default_factory=dict)
    nodes_timed_out: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    # category -> (monotonic time of the last log line, refusals folded since).
    _reject_logged: dict[str, tuple[float, int]] = field(default_factory=dict, repr=False)

    def accept(self, kind: str, lag_channel: str | None, lag_s: float) -> None:
        """Counts a message that passed validation, and its lag unless `lag_channel` is None."""
        accepted = self.accepted
        accepted[kind] = accepted.get(kind, 0) + 1
        if lag_channel is not None:
            self.lag.observe(lag_channel, lag_s)

    def error(self, text: str) -> None:
        self.last_error, self.last_error_at = text[:500], time.time()

    def reject(self, reason: str, category: str | None = None) -> None:
        """Counts a dropped message by category and logs it, at most once per interval."""
        category = category or reject_category(reason)
        rejected = self.rejected
        rejected[category] = rejected.get(category, 0) + 1
        self.error(f"rejected ({category}): {reason}")
        # Rate-limited per category: a misbehaving node must not flood the log.
        now = time.monotonic()
        last, folded = self._reject_logged.get(category, (float("-inf"), 0))
        if now - last >= REJECT_LOG_INTERVAL_S:
            log.warning(
                "dropped message (%s, %d similar since last report): %s", category, folded, reason
            )
            self._reject_logged[category] = (now, 0)
        else:
            self._reject_logged[category] = (last, folded + 1)
