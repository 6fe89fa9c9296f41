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

The app creates the one store in its lifespan (cloud/app.py) and hands it to the
routes (cloud/deps.py), the auto-releaser and QR check-in, so that on SQLite they
all queue on the same lock.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

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


class BookingStore:
    """Runs booking writes with the per-database contention policy described above."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._lock = asyncio.Lock()

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

    async def _attempt(
        self, fn: Callable[[AsyncConnection], Awaitable[T]], keys: Sequence[int]
    ) -> T:
        try:
            async with self.engine.begin() as conn:
                for key in keys:
                    # Sorted keys: two writers never wait on each other crosswise.
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
                return await fn(conn)
        except IntegrityError as exc:
            problem = conflict_problem(exc)
            if problem is None:
                raise
            raise problem from None
