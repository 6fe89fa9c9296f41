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
  the measurements); the wait is bounded and answered with 503.

New bookings go one step further on both (`read_then_insert`): the requests that
arrive while a write is under way queue for one writer task, which writes them
together in one transaction (one multi-row INSERT, one statement of events). Per
booking that saves the pool checkout, BEGIN, lock and COMMIT round trips, which
were most of the API's CPU per booking (docs/performance.md). A batch that fails
anywhere is rolled back and its bookings are written one by one, so every request
gets exactly the answer it would have had alone.

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
# PostgreSQL: batches written at once (each on its own connection). A request that
# finds one free is written at once; under load the queue behind them is the batch.
PG_WRITERS = 8
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


def _lock_keys(desks: Sequence[str], people: Sequence[str], rooms: Sequence[str] = ()) -> list[int]:
    return sorted(
        {_lock_key("desk", d) for d in desks}
        | {_lock_key("person", p) for p in people}
        | {_lock_key("room", r) for r in rooms}
    )


# Sorted keys, taken in array order in one statement (one round trip): two writers
# never wait on each other crosswise. One text for any number of keys, so asyncpg
# prepares it once per connection; a text per count made PostgreSQL parse and plan
# again for nearly every batch (docs/performance.md).
_TAKE_LOCKS = text(
    "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS bigint[])) AS k"
)


async def _take_locks(conn: AsyncConnection, keys: Sequence[int]) -> None:
    if keys:
        await conn.execute(_TAKE_LOCKS, {"keys": list(keys)})


Row = dict[str, Any]


ReadMany = Callable[[AsyncConnection, list[Any]], Awaitable[list["Row | DomainError"]]]


@dataclass(eq=False)
class _Queued:
    """A booking waiting for a writer task: the request, how to check and insert it
    (the same functions for every request, so that requests can go together), and
    who waits."""

    request: Any
    read_many: ReadMany
    one: Callable[[AsyncConnection, Row], Awaitable[Any]]
    many: Callable[[AsyncConnection, list[Row]], Awaitable[list[Any]]]
    done: asyncio.Future[Any]
    desks: Sequence[str] = ()
    people: Sequence[str] = ()

    async def read(self, conn: AsyncConnection) -> Row:
        """This request's checks alone: its row, or its refusal raised."""
        (checked,) = await self.read_many(conn, [self.request])
        if isinstance(checked, DomainError):
            raise checked
        return checked


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
        self._writers: set[asyncio.Task[None]] = set()

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
        keys = _lock_keys(desks, people, rooms)
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
        """Runs `read` (checks that may refuse) and then `write` in one write transaction.

        On PostgreSQL both run after the transaction's advisory locks (and are retried
        together). On SQLite `read` runs before the first write statement, and the
        driver opens the transaction only at that statement: the write lock is taken
        there, so the write never starts from a snapshot another writer made stale.
        """
        if self.sqlite:
            async with self._sqlite_turn():
                return await self._read_and_write_sqlite(read, write)

        async def both(conn: AsyncConnection) -> T:
            return await write(conn, await read(conn))

        return await self.write(both, desks=desks, people=people)

    async def _read_and_write_sqlite(
        self,
        read: Callable[[AsyncConnection], Awaitable[R]],
        write: Callable[[AsyncConnection, R], Awaitable[T]],
    ) -> T:
        try:
            async with self.engine.begin() as conn:
                return await write(conn, await read(conn))
        except IntegrityError as exc:
            problem = conflict_problem(exc)
            if problem is None:
                raise
            raise problem from None

    async def read_then_insert(
        self,
        request: Any,
        read_many: ReadMany,
        one: Callable[[AsyncConnection, Row], Awaitable[T]],
        many: Callable[[AsyncConnection, list[Row]], Awaitable[list[T]]],
        *,
        desks: Sequence[str] = (),
        people: Sequence[str] = (),
    ) -> T:
        """Checks and inserts one new row, written together with the rows of concurrent
        requests where it can be.

        `read_many(conn, requests)` checks requests (the desk and person rules, the
        caller's right) and answers for each the row to insert or the refusal;
        `one` inserts a row, `many` a list of rows in one statement.

        The request queues for the writer tasks (one on SQLite, under the same FIFO
        lock as every other booking write; `PG_WRITERS` on PostgreSQL). A writer takes
        everything queued and, in one transaction, checks them all with one
        `read_many` (a refusal answers only its own request) and inserts the rows that
        passed with `many`. If the batch fails (a row conflicts with the database or
        with another row of the batch), it is rolled back and each request is written
        alone, so every request gets exactly the answer it would have had alone.
        """
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        entry = _Queued(request, read_many, one, many, done, desks, people)
        self._enqueue(entry)
        try:
            if not self.sqlite:
                result: T = await asyncio.shield(done)
                return result
            async with asyncio.timeout(SQLITE_WRITE_WAIT_S):
                written: T = await asyncio.shield(done)
                return written
        except TimeoutError:
            if entry not in self._queued:
                return cast(T, await done)  # being written: its outcome is the answer
            self._queued.remove(entry)
            raise Unavailable(
                f"the booking store is busy (waited {SQLITE_WRITE_WAIT_S:g} s); retry shortly",
                title="Booking store busy",
            ) from None
        except asyncio.CancelledError:
            if entry in self._queued:
                self._queued.remove(entry)
            raise

    def _enqueue(self, entry: _Queued) -> None:
        self._queued.append(entry)
        self._writers = {w for w in self._writers if not w.done()}
        if len(self._writers) < (1 if self.sqlite else PG_WRITERS):
            writer = asyncio.create_task(self._write_queued(), name="ruang-booking-writer")
            self._writers.add(writer)

    async def _write_queued(self) -> None:
        while self._queued:
            if self.sqlite:
                async with self._lock:  # what queued while it waited joins the batch
                    batch, self._queued = self._queued, []
                    await self._write_batch(batch)
            else:
                batch, self._queued = self._queued, []
                await self._write_batch(batch)

    async def _write_batch(self, batch: list[_Queued]) -> None:
        try:
            alone = await self._try_batch(batch)
            if self.sqlite:  # under the lock this writer holds
                for e in alone:
                    await self._settle_alone(e, self._read_and_write_sqlite(e.read, e.one))
            else:  # each on its own connection, with the retries of `write`
                await asyncio.gather(
                    *(
                        self._settle_alone(
                            e, self.read_then_write(e.read, e.one, desks=e.desks, people=e.people)
                        )
                        for e in alone
                    )
                )
        finally:
            for e in batch:  # the writer was cancelled (shutdown): nobody waits forever
                _settle(e.done, error=Unavailable("the booking store stopped; retry"))

    async def _try_batch(self, batch: list[_Queued]) -> list[_Queued]:
        """Writes the batch in one transaction; returns the entries to write one by one."""
        first = batch[0]
        # A batch of one takes this path too: it is the cheaper one (every statement
        # prepared once, sent on the driver connection), and a request that finds a
        # writer free, the common case below full load, is such a batch.
        if any(e.many is not first.many or e.read_many is not first.read_many for e in batch):
            return batch
        ready: list[tuple[_Queued, Row]] = []
        refused: list[tuple[_Queued, DomainError]] = []
        try:
            async with self.engine.begin() as conn:
                if not self.sqlite:
                    await _take_locks(
                        conn,
                        _lock_keys(
                            [d for e in batch for d in e.desks],
                            [p for e in batch for p in e.people],
                        ),
                    )
                checked = await first.read_many(conn, [e.request for e in batch])
                for e, got in zip(batch, checked, strict=True):
                    if isinstance(got, DomainError):  # a refusal: the others go on
                        refused.append((e, got))
                    else:
                        ready.append((e, got))
                results = await first.many(conn, [row for _, row in ready]) if ready else []
        except Exception as exc:  # a conflict or a failure somewhere: each one alone
            problem = conflict_problem(exc) if isinstance(exc, IntegrityError) else None
            if len(batch) == 1 and problem is not None:
                _settle(first.done, error=problem)  # alone, it would be refused the same way
                return []
            log.debug("batch of %d bookings rolled back (%s); one by one", len(batch), exc)
            return batch
        for e, refusal in refused:
            _settle(e.done, error=refusal)
        for (e, _), created in zip(ready, results, strict=True):
            _settle(e.done, result=created)
        return []

    @staticmethod
    async def _settle_alone(e: _Queued, written: Awaitable[Any]) -> None:
        try:
            created = await written
        except Exception as exc:
            _settle(e.done, error=exc)
        else:
            _settle(e.done, result=created)

    async def _attempt(
        self, fn: Callable[[AsyncConnection], Awaitable[T]], keys: Sequence[int]
    ) -> T:
        try:
            async with self.engine.begin() as conn:
                await _take_locks(conn, keys)
                return await fn(conn)
        except IntegrityError as exc:
            problem = conflict_problem(exc)
            if problem is None:
                raise
            raise problem from None
