"""The serialised booking store: every booking write runs through one `BookingStore` per app.

The database is what prevents double booking (see migration 0002); the store turns
the database's refusal into a 409 and keeps contention bounded:

* PostgreSQL: each booking write takes transaction-scoped advisory locks on
  its desk or meeting room (cloud/rooms/) and person (in key order) before
  touching the table, so racing requests queue on the lock instead of
  deadlocking inside the exclusion constraint check; a deadlock or
  serialisation failure that still happens is retried a few times and then
  answered with 409, never 500.
* SQLite: one writer at a time anyway, so writes of this process queue on one
  FIFO asyncio.Lock (fair, unlike busy_timeout polling, which starved writers in
  the measurements); the wait is bounded and answered with 503. New bookings go
  one step further (`read_then_insert`): concurrent ones are inserted together by
  one writer task, in one transaction under that lock.

The app creates the one store in its lifespan (cloud/app.py) and hands it to the
routes (cloud/deps.py), the auto-releaser and QR check-in, so that on SQLite they
all queue on the same lock.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.errors import Conflict, DomainError, Unavailable

DESK_TAKEN = "Desk already booked for that time"
PERSON_TAKEN = "You already have a desk for that time"
ROOM_TAKEN = "Room already booked for that time"
SQLITE_WRITE_WAIT_S = 10.0
PG_RETRIES = 4
# PostgreSQL SQLSTATEs worth retrying: deadlock_detected, serialization_failure.
_RETRYABLE = {"40P01", "40001"}

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)


def _sqlstate(exc: DBAPIError) -> str | None:
    orig: Any = exc.orig
    for candidate in (orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if code:
            return str(code)
    return None


def conflict_problem(exc: IntegrityError) -> DomainError | None:
    """The 409 for an overlap refused by the database, or None for another integrity error."""
    message = str(exc.orig)
    if "ex_bookings_desk_overlap" in message:
        return Conflict(
            "another active booking holds this desk in that time range", title=DESK_TAKEN
        )
    if "ex_room_bookings_overlap" in message:
        return Conflict(
            "another active booking holds this room in that time range", title=ROOM_TAKEN
        )
    if "ex_bookings_person_overlap" in message:
        return Conflict(
            "you hold another desk in that time range; one desk per person per slot",
            title=PERSON_TAKEN,
        )
    return None


def _lock_key(kind: str, ident: str) -> int:
    # A stable signed 63-bit key; crc32 twice keeps it well spread and cheap.
    raw = f"{kind}:{ident}".encode()
    return (zlib.crc32(raw) << 31) ^ zlib.crc32(raw[::-1])


Row = dict[str, Any]


@dataclass(eq=False)
class _Queued:
    """A row waiting for the SQLite writer, with how to insert it and who waits."""

    row: Row
    one: Callable[[AsyncConnection, Row], Awaitable[Any]]
    many: Callable[[AsyncConnection, list[Row]], Awaitable[list[Any]]]
    done: asyncio.Future[Any]


def _settle(
    done: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None
) -> None:
    if done.done():
        return
    if error is not None:
        done.set_exception(error)
        done.exception()  # retrieved here: a waiter that gave up must not log it as lost
    else:
        done.set_result(result)


class BookingStore:
    """Runs booking writes with the per-database contention policy described above."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._lock = asyncio.Lock()
        # SQLite: rows waiting for the writer task (read_then_insert).
        self._queued: list[_Queued] = []
        self._writer: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def _sqlite_turn(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(SQLITE_WRITE_WAIT_S):
                await self._lock.acquire()
        except TimeoutError:
            raise Unavailable(
                f"the booking store is busy (waited {SQLITE_WRITE_WAIT_S:g} s); retry shortly",
                title="Booking store busy",
            ) from None
        try:
            yield
        finally:
            self._lock.release()

    async def write(
        self,
        fn: Callable[[AsyncConnection], Awaitable[T]],
        *,
        desks: Sequence[str] = (),
        people: Sequence[str] = (),
        rooms: Sequence[str] = (),
    ) -> T:
        """Runs `fn` in one write transaction; overlaps become Conflict errors."""
        if self.sqlite:
            async with self._sqlite_turn():
                return await self._attempt(fn, ())
        keys = sorted(
            {_lock_key("desk", d) for d in desks}
            | {_lock_key("person", p) for p in people}
            | {_lock_key("room", r) for r in rooms}
        )
        for attempt in range(PG_RETRIES + 1):
            try:
                return await self._attempt(fn, keys)
            except DBAPIError as exc:
                if isinstance(exc, IntegrityError) or _sqlstate(exc) not in _RETRYABLE:
                    raise
                if attempt == PG_RETRIES:
                    raise Conflict(
                        "the desk was contended too long; try again", title=DESK_TAKEN
                    ) from exc
                await asyncio.sleep(0.01 * 2**attempt)
        raise AssertionError("unreachable")

    async def read_then_write(
        self,
        read: Callable[[AsyncConnection], Awaitable[R]],
        write: Callable[[AsyncConnection, R], Awaitable[T]],
        *,
        desks: Sequence[str] = (),
        people: Sequence[str] = (),
    ) -> T:
        """Runs `read` (checks that may refuse) and then `write` on one pooled connection.

        One checkout instead of one per step: on PostgreSQL both run in the write
        transaction, after its advisory locks (retried together); on SQLite `read`
        runs in its own read transaction, which ends before the write lock is taken,
        so the write never starts from a snapshot that another writer made stale.
        """
        if not self.sqlite:

            async def both(conn: AsyncConnection) -> T:
                return await write(conn, await read(conn))

            return await self.write(both, desks=desks, people=people)
        async with self.engine.connect() as conn:
            ready = await read(conn)
            await conn.rollback()
            async with self._sqlite_turn():
                try:
                    async with conn.begin():
                        return await write(conn, ready)
                except IntegrityError as exc:
                    problem = conflict_problem(exc)
                    if problem is None:
                        raise
                    raise problem from None

    async def read_then_insert(
        self,
        read: Callable[[AsyncConnection], Awaitable[Row]],
        one: Callable[[AsyncConnection, Row], Awaitable[T]],
        many: Callable[[AsyncConnection, list[Row]], Awaitable[list[T]]],
        *,
        desks: Sequence[str] = (),
        people: Sequence[str] = (),
    ) -> T:
        """Like `read_then_write` for an insert that can also be done for many rows at once.

        On SQLite the rows of concurrent requests queue for one writer task, which
        inserts everything queued in one transaction (`many`, under the same FIFO lock
        as every other booking write). A write lock held across a dozen aiosqlite
        hand-offs per booking was what bounded the rate (docs/performance.md). If
        the batch fails (one row conflicts, with the database or with another row of
        the batch), the batch is rolled back and each row is inserted alone (`one`),
        so every request gets exactly its own answer.
        """
        if not self.sqlite:
            return await self.read_then_write(read, one, desks=desks, people=people)
        async with self.engine.connect() as conn:
            row = await read(conn)
        entry = _Queued(row, one, many, asyncio.get_running_loop().create_future())
        self._queued.append(entry)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued(), name="ruang-booking-writer")
        try:
            async with asyncio.timeout(SQLITE_WRITE_WAIT_S):
                result: T = await asyncio.shield(entry.done)
                return result
        except TimeoutError:
            if entry not in self._queued:
                return cast(T, await entry.done)  # being written: its outcome is the answer
            self._queued.remove(entry)
            raise Unavailable(
                f"the booking store is busy (waited {SQLITE_WRITE_WAIT_S:g} s); retry shortly",
                title="Booking store busy",
            ) from None
        except asyncio.CancelledError:
            if entry in self._queued:
                self._queued.remove(entry)
            raise

    async def _write_queued(self) -> None:
        while self._queued:
            async with self._lock:
                batch, self._queued = self._queued, []
                await self._write_batch(batch)

    async def _write_batch(self, batch: list[_Queued]) -> None:
        try:
            if len(batch) > 1 and all(e.many is batch[0].many for e in batch):
                try:
                    async with self.engine.begin() as conn:
                        results = await batch[0].many(conn, [e.row for e in batch])
                except Exception as exc:  # a conflict somewhere: each row alone below
                    log.debug("batch of %d bookings rolled back (%s); one by one", len(batch), exc)
                else:
                    for e, created in zip(batch, results, strict=True):
                        _settle(e.done, result=created)
                    return
            for e in batch:
                try:
                    async with self.engine.begin() as conn:
                        created = await e.one(conn, e.row)
                except IntegrityError as exc:
                    problem = conflict_problem(exc)
                    _settle(e.done, error=problem if problem is not None else exc)
                except Exception as exc:
                    _settle(e.done, error=exc)
                else:
                    _settle(e.done, result=created)
        finally:
            for e in batch:  # the writer was cancelled (shutdown): nobody waits forever
                _settle(e.done, error=Unavailable("the booking store stopped; retry"))

    async def _attempt(
        self, fn: Callable[[AsyncConnection], Awaitable[T]], keys: Sequence[int]
    ) -> T:
        try:
            async with self.engine.begin() as conn:
                if keys:
                    # Sorted keys, taken left to right in one statement (one round
                    # trip): two writers never wait on each other crosswise.
                    calls = ", ".join(f"pg_advisory_xact_lock(:k{i})" for i in range(len(keys)))
                    await conn.execute(
                        text(f"SELECT {calls}"), {f"k{i}": key for i, key in enumerate(keys)}
                    )
                return await fn(conn)
        except IntegrityError as exc:
            problem = conflict_problem(exc)
            if problem is None:
                raise
            raise problem from None
