"""Splits a flush so that its events commit first, in a short transaction of their own.

Presence telemetry coalesces per desk, so a flush under load carries hundreds of
presence rows. Written in one transaction with them, a check-in waited for all
of them (and its acknowledgement and the API with it). `split` returns two lists
of items, committed one after the other:

1. every event and state message, in arrival order, together with only the
   telemetry that must be written before them: samples of a node that sent an
   event later in the flush, and presence of a desk an event later in the
   flush names. A node's messages thus keep their order (a check-in is never
   followed by presence or last_seen the node sent before it), and so does a desk.
2. the rest of the telemetry, merged into one batch: none of it precedes an event
   of its own node or desk, so writing it after every event changes no outcome;
   merged in arrival order it is what coalescing would have made of it.

A flush without events is one list, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

from cloud.ingest.items import Envelope, Item, TelemetryBatch
from ruang import contract


def split(items: Sequence[Item]) -> tuple[list[Item], list[Item]]:
    """(events with the telemetry that must precede them, the remaining telemetry)."""
    if not any(isinstance(item, Envelope) for item in items):
        return [], list(items)
    first: list[Item] = []
    later: list[TelemetryBatch] = []
    # Walked backwards, so that `nodes`/`desks` are those of the events after an item.
    nodes: set[str] = set()
    desks: set[str] = set()
    for item in reversed(items):
        if isinstance(item, Envelope):
            first.append(item)
            nodes.add(item.message.node)
            desk = getattr(item.message, "desk", None)
            if desk is not None:
                desks.add(desk)
            if isinstance(item.message, contract.NodeState):
                desks.update(info.desk for info in item.message.desks)
            continue
        keep, move = _divide(item, nodes, desks)
        if keep is not None:
            first.append(keep)
        if move is not None:
            later.append(move)
    first.reverse()
    later.reverse()
    return first, ([merge(later)] if later else [])


def _divide(
    batch: TelemetryBatch, nodes: set[str], desks: set[str]
) -> tuple[TelemetryBatch | None, TelemetryBatch | None]:
    """The part of `batch` that must precede the events of `nodes`/`desks`, and the rest."""
    if not _touches(batch, nodes, desks):
        return None, batch
    keep, move = TelemetryBatch(), TelemetryBatch()
    for node, at in batch.seen.items():
        (keep if node in nodes else move).seen[node] = at
    for node, n in batch.counts.items():
        (keep if node in nodes else move).counts[node] = n
    # Samples of a node without a per-node count (none from the pipeline) stay with the rest.
    keep.count = sum(keep.counts.values())
    move.count = batch.count - keep.count
    for desk, sample in batch.presence.items():
        (keep if sample[0] in nodes or desk in desks else move).presence[desk] = sample
    for room, reading in batch.rooms.items():
        (keep if reading[0] in nodes else move).rooms[room] = reading
    for node, health in batch.health.items():
        (keep if node in nodes else move).health[node] = health
    for key, device in batch.devices.items():
        (keep if key[0] in nodes else move).devices[key] = device
    for desk, samples in batch.backlog_presence.items():
        for sample in samples:
            part = keep if sample[0] in nodes or desk in desks else move
            part.backlog_presence.setdefault(desk, []).append(sample)
    return (None if _empty(keep) else keep), (None if _empty(move) else move)


def _touches(batch: TelemetryBatch, nodes: set[str], desks: set[str]) -> bool:
    # Every live sample's node is in `seen`; backlog samples are not, so they are looked at.
    if not nodes.isdisjoint(batch.seen) or not desks.isdisjoint(batch.presence):
        return True
    return any(
        desk in desks or node in nodes
        for desk, samples in batch.backlog_presence.items()
        for node, _, _ in samples
    )


def _empty(batch: TelemetryBatch) -> bool:
    return not (
        batch.count
        or batch.seen
        or batch.presence
        or batch.rooms
        or batch.health
        or batch.devices
        or batch.backlog_presence
    )


def merge(batches: Sequence[TelemetryBatch]) -> TelemetryBatch:
    """One batch of `batches` in arrival order: later samples replace earlier ones."""
    if len(batches) == 1:
        return batches[0]
    out = TelemetryBatch()
    for batch in batches:
        out.count += batch.count
        for node, n in batch.counts.items():
            out.counts[node] = out.counts.get(node, 0) + n
        out.seen.update(batch.seen)
        out.presence.update(batch.presence)
        out.rooms.update(batch.rooms)
        out.health.update(batch.health)
        out.devices.update(batch.devices)
        for desk, samples in batch.backlog_presence.items():
            out.backlog_presence.setdefault(desk, []).extend(samples)
    return out
