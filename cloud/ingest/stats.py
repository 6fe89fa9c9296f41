"""Ingestion counters (served by /ingest/stats) and the rate-limited log of refusals.

Connection figures (connected, connects) belong to the broker session
(cloud/mqtt/session.py), not here.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from cloud.ingest.decode import reject_category

log = logging.getLogger(__name__)

REJECT_LOG_INTERVAL_S = 10.0


@dataclass
class IngestStats:
    received: int = 0
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
