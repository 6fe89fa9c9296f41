"""What the ingestion pipeline hands to the Applier, and what one transaction reports back.

`TelemetryBatch` is telemetry coalesced in memory between two ordered messages;
`Envelope` one event or state message; `ApplyResult` what a transaction wrote,
for the caches, counters, listeners and acks that follow its commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.ingest.bindings import Refusal
from ruang import contract


@dataclass
class TelemetryBatch:
    """Telemetry received between two ordered messages, reduced to its latest values."""

    count: int = 0
    # node -> how many of `count` it sent (to split a batch by node: cloud/ingest/events_first.py)
    counts: dict[str, int] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)  # node -> cloud receive time
    # desk -> (node, present, edge ts)
    presence: dict[str, tuple[str, bool, float]] = field(default_factory=dict)
    # room -> (node, occupied, edge ts, sensor), from room sensors (room_presence)
    rooms: dict[str, tuple[str, bool, float, str | None]] = field(default_factory=dict)
    # node -> (latest NodeHealth, cloud receive time); (node, device) -> (DeviceHealth, same)
    health: dict[str, tuple[contract.NodeHealth, float]] = field(default_factory=dict)
    devices: dict[tuple[str, str], tuple[contract.DeviceHealth, float]] = field(
        default_factory=dict
    )
    # desk -> [(node, present, edge ts)] drained from outboxes (backlog channel): history
    # only, merged into presence_changes by cloud/ingest/presence_history.py.
    backlog_presence: dict[str, list[tuple[str, bool, float]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Envelope:
    """One event or state message, applied individually and in order."""

    parsed: contract.ParsedTopic
    message: contract.Message
    received_at: float
    # The message as it came off the wire, for the dead-letter table (a replay
    # re-decodes it). References to bytes paho already holds: nothing is copied.
    topic: str = ""
    raw: bytes = b""


Item = TelemetryBatch | Envelope
RideEvent = contract.Boarding | contract.PoolCarUse


class RideApplier(Protocol):
    """Applies a flush's new `boarding`/`poolcar` events in its transaction, counting
    outcomes into `counts` (cloud/transport/rides.py; given to the Ingestor by the app,
    so ingestion does not import the transport domain)."""

    async def apply(
        self, conn: AsyncConnection, events: Sequence[RideEvent], counts: dict[str, int]
    ) -> None: ...


@dataclass
class ApplyResult:
    applied: int = 0
    duplicates: int = 0
    stale_deaths: int = 0
    lines: list[str] = field(default_factory=list)  # node_state series for the sink
    # What this transaction wrote, remembered by Applier.committed() once it commits.
    presence_written: dict[str, bool] = field(default_factory=dict)
    rooms_written: dict[str, bool] = field(default_factory=dict)
    # Rooms whose occupancy this transaction changed (for live maps).
    rooms_changed: set[str] = field(default_factory=set)
    # Messages (or coalesced samples) naming what their node may not speak for, by
    # reason (bindings.UNKNOWN / NOT_BOUND); the last one, for the log.
    refused: dict[str, int] = field(default_factory=dict)
    last_refusal: str | None = None
    seen_written: dict[str, float] = field(default_factory=dict)
    sampled_written: dict[str, float] = field(default_factory=dict)  # node -> health sample time
    # Nodes whose bookings this transaction changed: their snapshots are out of date.
    booking_nodes: set[str] = field(default_factory=set)
    # Boarding / pool-car events applied, by outcome (cloud/transport/rides.py).
    transport: dict[str, int] = field(default_factory=dict)

    def refuse(self, node: str, kind: str, refusal: Refusal) -> None:
        self.refused[refusal.category] = self.refused.get(refusal.category, 0) + 1
        self.last_refusal = f"node {node} may not speak for {refusal.resource} ({kind})"
