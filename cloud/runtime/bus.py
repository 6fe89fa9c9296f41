"""Signals between the cloud's parts: which desks, rooms and snapshots changed.

Ingestion, the API and the jobs tell each other what a committed transaction
changed (a desk's state for the live floor maps, a node's snapshot for the
snapshot publisher). In one process (`role=all`) that is a plain call
(`InProcessBus`); when the parts run in separate processes the same signals go
through PostgreSQL's LISTEN/NOTIFY (`cloud/runtime/pgbus.py`), so a tap ingested
by one worker reaches a floor map streamed by another process.

A signal is a name and a list of ids. Signals are hints to re-read the database,
never data: a lost one costs a stale map until the next change (or a snapshot
until the periodic refresh), never a wrong state. `publish` never blocks and is
called only after the commit, as the in-process calls it replaces were.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Protocol

log = logging.getLogger(__name__)


class Signal(StrEnum):
    """What changed; each is heard by the parts named."""

    LIVE_DESKS = "live_desks"  # desk ids -> the live hub (floor map streams)
    LIVE_ROOMS = "live_rooms"  # room ids -> the live hub
    SNAPSHOT_NODES = "snapshot_nodes"  # node ids -> the snapshot publisher
    SNAPSHOT_DESKS = "snapshot_desks"  # desk ids -> the snapshot publisher (their nodes)
    SNAPSHOT_ALL = "snapshot_all"  # no ids: every node's snapshot is due


Listener = Callable[[list[str]], object]


class Bus(Protocol):
    """Carries signals to every listener of every process sharing the bus."""

    def publish(self, signal: Signal, ids: Iterable[str] = ()) -> None:
        """Queues `signal` with `ids` for every listener; never blocks."""
        ...

    def listen(self, signal: Signal, listener: Listener) -> None:
        """Calls `listener(ids)` for every `signal` published from now on."""
        ...

    async def start(self) -> None:
        """Connects (if the bus has anything to connect to)."""
        ...

    async def stop(self) -> None:
        """Stops delivering; what was still queued may be lost."""
        ...


class Listeners:
    """The listeners of one process, per signal; a listener's failure is logged, not raised."""

    def __init__(self) -> None:
        self._by_signal: dict[Signal, list[Listener]] = {}

    def add(self, signal: Signal, listener: Listener) -> None:
        self._by_signal.setdefault(signal, []).append(listener)

    def deliver(self, signal: Signal, ids: list[str]) -> None:
        for listener in self._by_signal.get(signal, ()):
            try:
                listener(ids)
            except Exception:  # one broken listener must not starve the others
                log.exception("listener of %s failed", signal.value)


class InProcessBus:
    """One process: publishing calls the listeners at once (what `role=all` used to do)."""

    def __init__(self) -> None:
        self._listeners = Listeners()

    def publish(self, signal: Signal, ids: Iterable[str] = ()) -> None:
        self._listeners.deliver(signal, list(ids))

    def listen(self, signal: Signal, listener: Listener) -> None:
        self._listeners.add(signal, listener)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def publisher(bus: Bus, signal: Signal) -> Callable[[Iterable[str]], None]:
    """A callable that publishes `signal` with the ids it is given (for callback slots)."""

    def send(ids: Iterable[str]) -> None:
        bus.publish(signal, ids)

    return send
