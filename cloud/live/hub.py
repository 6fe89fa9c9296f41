"""In-process hub of live desk and room changes: who announces them and how streams wait.

Whoever changes a desk's state (or a room sensor's reading) announces the desk
(or room) ids *after* its transaction
committed (ingestion batches, booking routes, auto-release, QR check-in), so a
listener that re-reads the database always sees the change. Listeners are the
SSE floor streams (`cloud.buildings.floorstream.floor_stream`). Everything runs on the event
loop: `announce` is a plain non-blocking call, no threads, no locks.

Each subscriber has a bounded queue. A subscriber that does not keep up (a slow
browser: the stream blocks on its socket) overflows it; the hub then drops what
was queued and raises the subscriber's `resync` flag instead of growing
without bound, and the stream tells the client to reload the whole map.

The hub lives for one app (`app.state.live`); closing it (lifespan shutdown,
or earlier in `launch.webapp.serve`, because uvicorn waits for open responses
before running the lifespan shutdown) ends every stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass

# Batches of desk ids a subscriber may have waiting; ingestion flushes at most a
# few times a second, so only a stalled reader ever reaches this.
QUEUE_SIZE = 64


@dataclass(frozen=True)
class Batch:
    """What a subscriber gets from `Subscription.next`."""

    desks: frozenset[str] = frozenset()
    rooms: frozenset[str] = frozenset()
    resync: bool = False  # desks were dropped: reload everything
    idle: bool = False  # nothing happened within the wait (time for a keep-alive)


# (desk ids, room ids) changed by one announcement. Rooms are kept apart from desks
# because the two id spaces may overlap.
_Change = tuple[frozenset[str], frozenset[str]]
_NOTHING: _Change = (frozenset(), frozenset())


class Subscription:
    """One listener's queue of changed desk and room ids (see the module docstring)."""

    def __init__(
        self, desks: Collection[str] | None, queue_size: int, rooms: Collection[str] | None = None
    ) -> None:
        self.desks = frozenset(desks) if desks is not None else None
        # None: every room, like desks; a desk-only listener passes an empty set.
        self.rooms = frozenset(rooms) if rooms is not None else None
        self.resync = False
        self.closed = False
        # None is the end-of-stream marker; closing drains first so it always fits.
        self._queue: asyncio.Queue[_Change | None] = asyncio.Queue(queue_size)

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    def offer(self, desks: frozenset[str], rooms: frozenset[str] = frozenset()) -> None:
        if self.closed:
            return
        if self.desks is not None:
            desks = desks & self.desks
        if self.rooms is not None:
            rooms = rooms & self.rooms
        if not desks and not rooms:
            return
        try:
            self._queue.put_nowait((desks, rooms))
        except asyncio.QueueFull:
            # What is queued is superseded by a full reload; the empty batch
            # wakes a reader that is waiting.
            self.resync = True
            self._drain()
            self._queue.put_nowait(_NOTHING)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._drain()
            self._queue.put_nowait(None)

    async def next(self, *, coalesce_s: float, idle_s: float) -> Batch | None:
        """Desks and rooms changed since the last call; None once the hub or subscription closed.

        Waits up to `idle_s` for a first change (then returns an idle batch),
        and after it keeps collecting for `coalesce_s`, so a burst is one batch.
        """
        if self.closed and self._queue.empty():
            return None
        try:
            async with asyncio.timeout(idle_s):
                first = await self._queue.get()
        except TimeoutError:
            return Batch(idle=True)
        if first is None:
            return None
        desks, rooms = set(first[0]), set(first[1])
        await asyncio.sleep(coalesce_s)
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                return None
            desks |= item[0]
            rooms |= item[1]
        if self.resync:
            self.resync = False
            return Batch(resync=True)
        return Batch(desks=frozenset(desks), rooms=frozenset(rooms))


class LiveHub:
    """Fans desk and room changes out to the current subscribers."""

    def __init__(self, *, queue_size: int = QUEUE_SIZE) -> None:
        self._queue_size = queue_size
        self._subscriptions: set[Subscription] = set()
        self.closed = False
        self.announced = 0

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def announce(self, desks: Iterable[str], rooms: Iterable[str] = ()) -> None:
        """Desks (and rooms) whose state changed in a committed transaction; never blocks."""
        ids = frozenset(d for d in desks if d)
        room_ids = frozenset(r for r in rooms if r)
        if (not ids and not room_ids) or self.closed:
            return
        self.announced += 1
        for subscription in list(self._subscriptions):
            subscription.offer(ids, room_ids)

    def announce_rooms(self, rooms: Iterable[str]) -> None:
        """Rooms whose sensor reading changed in a committed transaction; never blocks."""
        self.announce((), rooms)

    @contextlib.contextmanager
    def subscribe(
        self, desks: Collection[str] | None = None, rooms: Collection[str] | None = None
    ) -> Iterator[Subscription]:
        """A subscription to `desks` and `rooms` (None: all), removed when the block ends."""
        subscription = Subscription(desks, self._queue_size, rooms)
        if self.closed:
            subscription.close()
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)
            subscription.close()

    def close(self) -> None:
        """Ends every stream; later subscriptions end at once."""
        self.closed = True
        for subscription in list(self._subscriptions):
            subscription.close()


class DeskChanges:
    """Tells everyone who must hear of committed desk changes: the signed snapshots of
    the nodes serving them, and the open floor maps. Call it after the commit."""

    def __init__(self, *listeners: Callable[[list[str]], object]) -> None:
        self._listeners = listeners

    def __call__(self, desks: Iterable[str]) -> None:
        changed = list(desks)
        for listener in self._listeners:
            listener(changed)
