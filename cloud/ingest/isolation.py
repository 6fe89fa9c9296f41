"""Failure isolation of SQL writes: bisect a failing batch, park poison, replay it later.

When a batch fails to commit while the database still takes writes (a write
probe succeeds), the batch is bisected into separate transactions until the
message that fails on its own is found; it is parked in the dead-letter table
(cloud/ingest/dead_letters.py) and acknowledged, and everything else is applied.
When the probe fails too, the database is down: nothing is parked, the caller
keeps the batch and retries it with backoff. An admin replays a parked message
(`replay`): decoded again and applied, or its attempts and reason move on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.timestamps import utc
from cloud.ingest import dead_letters
from cloud.ingest.acks import Acks
from cloud.ingest.apply import Applier, ApplyResult, Envelope, Item, TelemetryBatch
from cloud.ingest.stats import IngestStats
from ruang import contract

log = logging.getLogger(__name__)

# Clock-skew marks per node: (edge - cloud offset or None, cloud receive time).
Skews = dict[str, tuple[float | None, float]]
# A parked event, with its message (for its event_ack).
ParkedEvent = tuple[dead_letters.Parked, contract.Message]


@dataclass(frozen=True)
class ReplayOutcome:
    replayed: bool
    duplicate: bool = False  # it had been applied meanwhile (e.g. resent and accepted)
    reason: str | None = None  # why not, when not replayed


def short_error(exc: BaseException) -> str:
    """One line of a database error: the driver's message, not the SQL and parameters."""
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    return f"{type(inner).__name__}: {text}"[:400]


class Isolation:
    """Commits item lists, isolating poison; `committed` hears of every committed part."""

    def __init__(
        self,
        engine: AsyncEngine,
        applier: Applier,
        stats: IngestStats,
        acks: Acks,
        committed: Callable[[list[Item], ApplyResult], None],
        *,
        clock: Callable[[], float],
        max_age_s: float,
        max_ahead_s: float,
    ) -> None:
        self._engine = engine
        self._applier = applier
        self._stats = stats
        self._acks = acks
        self._committed = committed
        self._clock = clock
        self._max_age = max_age_s
        self._max_ahead = max_ahead_s

    async def _commit(self, items: list[Item]) -> ApplyResult:
        async with self._engine.begin() as conn:
            return await self._applier.apply(conn, items)

    async def apply(self, items: list[Item]) -> tuple[list[Item], Exception | None]:
        """Applies `items`; returns those left unapplied because the database is down."""
        try:
            result = await self._commit(items)
        except Exception as exc:
            if not await self.database_writable():
                return items, exc
            # The database takes writes but not this batch: something in it is poison.
            self._stats.isolations += 1
            log.warning(
                "a batch of %d item(s) failed while the database takes writes; "
                "isolating the failing message(s): %s",
                len(items),
                short_error(exc),
            )
            return await self._bisect(items, exc)
        self._committed(items, result)
        return [], None

    async def _bisect(
        self, items: list[Item], exc: Exception
    ) -> tuple[list[Item], Exception | None]:
        """Applies halves of a failed batch in separate transactions, recursively, in order."""
        if len(items) == 1:
            return await self._isolated(items[0], exc)
        mid = len(items) // 2
        halves = (items[:mid], items[mid:])
        for i, half in enumerate(halves):
            try:
                result = await self._commit(half)
            except Exception as half_exc:
                left, last = await self._bisect(half, half_exc)
                if left:
                    return left + (halves[1] if i == 0 else []), last
            else:
                self._committed(half, result)
        return [], None

    async def _isolated(self, item: Item, exc: Exception) -> tuple[list[Item], Exception | None]:
        """One item failed alone: park it, unless the database (not the item) is the trouble."""
        if not await self.database_writable():
            return [item], exc
        failure: Exception = exc
        try:  # once more: a lock timeout or a serialisation conflict passes
            result = await self._commit([item])
        except Exception as again:
            failure = again
        else:
            self._committed([item], result)
            return [], None
        reason = f"apply: {short_error(failure)}"
        if isinstance(item, TelemetryBatch):
            # QoS 0 samples, already superseded by newer ones: dropped, counted.
            self._stats.telemetry_dropped += item.count
            self._stats.reject(
                f"{item.count} telemetry sample(s) could not be written: {reason}",
                category="unappliable",
            )
            return [], None
        message = item.message
        letter = dead_letters.Parked(
            message.id,
            message.node,
            item.topic or contract.topic_for(message),
            item.raw or contract.encode(message),
            reason,
            item.received_at,
        )
        try:
            await self.park([(letter, message)], {})
        except Exception as park_exc:
            return [item], park_exc
        log.error(
            "message %s from %s (%s) fails on its own; parked as a dead letter: %s",
            message.id,
            message.node,
            letter.topic,
            reason,
        )
        return [], None

    async def database_writable(self) -> bool:
        try:
            async with self._engine.begin() as conn:
                await dead_letters.write_probe(conn)
        except Exception:
            return False
        return True

    async def park(self, parked: list[ParkedEvent], skews: Skews) -> None:
        """Stores dead letters and clock-skew marks, then acknowledges the parked events."""
        async with self._engine.begin() as conn:
            await dead_letters.park(conn, [letter for letter, _ in parked])
            await dead_letters.mark_clock_skew(conn, skews)
        self._stats.dead_lettered += len(parked)
        # The node may forget them: they are kept here, to be replayed by an admin.
        # (No audit_ack for a parked access decision: the node's audit log keeps it.)
        self._acks.events(message for _, message in parked)

    # --- dead letters: replay ------------------------------------------------------------

    async def replay(self, letter_id: int, lock: asyncio.Lock) -> ReplayOutcome | None:
        """Decodes a parked message again and applies it; None if there is no such letter.

        Applied (or found already applied): the letter is deleted in the same
        transaction. Refused or failing again: its attempts, reason and last_seen move.
        `lock` keeps the replay out of the middle of a flush.
        """
        async with self._engine.connect() as conn:
            row = await dead_letters.get_letter(conn, letter_id)
        if row is None:
            return None
        now = self._clock()
        try:
            env = self._redecode(row["topic"], row["payload"], now)
        except contract.ContractError as exc:
            return await self._replay_failed(letter_id, exc.reason, now)
        async with lock:
            try:
                async with self._engine.begin() as conn:
                    result = await self._applier.apply(conn, [env])
                    await dead_letters.delete_letter(conn, letter_id)
            except Exception as exc:
                return await self._replay_failed(letter_id, f"apply: {short_error(exc)}", now)
            self._committed([env], result)
        return ReplayOutcome(replayed=True, duplicate=result.duplicates > 0)

    def _redecode(self, topic: str, payload: bytes, now: float) -> Envelope:
        parsed, message = contract.decode(topic, payload)
        if parsed.channel is contract.Channel.COMMANDS or parsed.kind in contract.TELEMETRY_KINDS:
            raise contract.ContractError(f"{parsed.channel}/{parsed.kind}: not replayable")
        if parsed.channel is not contract.Channel.STATE and not (
            now - self._max_age <= message.ts <= now + self._max_ahead
        ):
            raise contract.ContractError(
                f"clock_skew: ts {message.ts:.0f} still outside the ingestion window"
            )
        return Envelope(parsed, message, now, topic, payload)

    async def _replay_failed(self, letter_id: int, reason: str, now: float) -> ReplayOutcome:
        with contextlib.suppress(Exception):  # the outcome is reported either way
            async with self._engine.begin() as conn:
                await dead_letters.replay_failed(conn, letter_id, reason, utc(now))
        return ReplayOutcome(replayed=False, reason=reason)
