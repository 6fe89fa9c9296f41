"""The edge's durable outbox: every event and telemetry message, on disk until the broker has it.

One SQLite file (WAL mode) under the node's state directory. The agent's device
callbacks call `put(message)`, which never blocks: the message gets its sequence
number at once and is written with every other put of the same few milliseconds
in one transaction (a group commit). The uplink publishes rows only after that
commit and calls `published(row)` once the broker acknowledged them: telemetry
is deleted in the next group commit; an event (with cloud acks on, the default)
only moves to "awaiting cloud ack" and is deleted when the cloud's `event_ack`
names its message id (`cloud_acked`). An event the cloud has not acknowledged
within `cloud_ack_timeout_s` is due again (`due_for_resend`), with the wait
doubling per try up to `cloud_ack_max_backoff_s`: a broker killed outright can
lose messages it had PUBACKed, and only the cloud can say what it really has.

Durability guarantee: a message is durable once a flush that started after its
`put` has committed; `await flushed()` waits for exactly that. Batches that hold
an event are committed with ``synchronous=FULL`` (the WAL is fsynced: survives a
power cut); batches of telemetry and acks only use ``NORMAL`` (survives a crash of
the process, may lose the last moments on a power cut, never corrupts; a lost ack
only means one duplicate the cloud drops by message id).

Disk bound: the logical size (payload bytes plus a per-row overhead) is kept
under `max_bytes`. Past it, telemetry is shed lowest priority first, oldest first,
down to 95 % of the bound. Events are never shed: when only events are left the
outbox keeps them and raises the alarm ``full`` instead.

Corruption: `open` runs ``PRAGMA quick_check``; a damaged file is moved aside as
``<name>.corrupt-<timestamp>``, every row that can still be read and validated is
copied into a fresh file, and `recovery` says how many were kept and lost.
The file format (schema, rows, priorities) is in edge/outbox_store.py, the
salvage in edge/outbox_recovery.py; this module is the write, ack and shed
policy. See docs/edge-outbox.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ruang import contract
from ruang.private_files import private_dir

from .outbox_recovery import Recovery, integrity_problem, recover
from .outbox_store import (
    COLUMNS,
    INSERT,
    ROW_OVERHEAD,
    Row,
    connect,
    priority_of,
    row_of,
)

log = logging.getLogger(__name__)

FILE_NAME = "outbox.sqlite3"

# Shedding frees down to this share of the bound, so a full outbox does not run one
# DELETE per new row.
SHED_TARGET = 0.95
# The "full" alarm clears below this share of the bound.
ALARM_CLEAR = 0.90
_PAGE = 512

ALARM_FULL = "full"


class OutboxError(RuntimeError):
    """The outbox cannot be opened at all (for example the directory is not writable)."""


class Outbox:
    """A durable FIFO per priority of contract messages; see the module docstring."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = 200_000_000,
        batch_window_s: float = 0.002,
        cloud_ack_timeout_s: float | None = 30.0,
        cloud_ack_max_backoff_s: float = 3600.0,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._window = batch_window_s
        # None or 0: events are deleted at the broker's PUBACK (clouds without event_ack).
        self.cloud_ack_timeout_s = cloud_ack_timeout_s or None
        self.cloud_ack_max_backoff_s = cloud_ack_max_backoff_s
        self.recovery: Recovery | None = None
        self.alarm: str | None = None
        self.dropped_telemetry = 0
        self._pending: list[Row] = []
        self._acks: list[int] = []
        self._published: list[int] = []
        self._cloud_acks: list[str] = []
        self._probe_db: sqlite3.Connection | None = None
        # The probe runs on a worker thread that cancelling its task does not stop;
        # close() takes this lock so it never closes the connection under a running
        # probe (sqlite3 would crash the process).
        self._probe_lock = threading.Lock()
        self._probe_closed = False
        self._waiters: list[asyncio.Future[None]] = []
        self._handle: asyncio.Handle | asyncio.TimerHandle | None = None
        self._listeners: list[Callable[[list[Row]], None]] = []
        self._sync: str | None = None
        self._db = self._open()
        row = self._db.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0),"
            " coalesce(sum(resend_at IS NOT NULL), 0) FROM outbox"
        )
        count, payload_bytes, awaiting = row.fetchone()
        # _rows: not yet taken by the broker; _awaiting: taken, the cloud has not said so.
        self._awaiting = int(awaiting)
        self._rows = int(count) - self._awaiting
        self._bytes = int(payload_bytes) + ROW_OVERHEAD * int(count)
        self._next_seq = self._highest_seq() + 1
        self.last_committed_seq = self._next_seq - 1

    @classmethod
    def in_dir(cls, state_dir: Path, *, max_mb: float = 200.0, **kwargs: Any) -> Outbox:
        return cls(state_dir / FILE_NAME, max_bytes=int(max_mb * 1_000_000), **kwargs)

    # --- opening and recovery -------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            private_dir(self.path.parent)
        except OSError as exc:
            raise OutboxError(f"cannot create {self.path.parent}: {exc}") from None
        if self.path.exists():
            problem = integrity_problem(self.path)
            if problem is not None:
                self._recover(problem)
        db = connect(self.path)
        return db

    def _highest_seq(self) -> int:
        # AUTOINCREMENT keeps the high-water mark in sqlite_sequence even when the table
        # is empty, so seqs never repeat across restarts.
        (top,) = self._db.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()
        found = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        return max(int(top), int(found[0]) if found else 0)

    def _recover(self, problem: str) -> None:
        self.recovery = recover(self.path, problem)

    # --- writing --------------------------------------------------------------------------

    def put(self, message: contract.Message) -> int:
        """Stores a message (at the next group commit) and returns its seq; never blocks."""
        kind = contract.kind_of(message)
        event = contract.is_event(message)
        row = Row(
            seq=self._next_seq,
            priority=priority_of(kind),
            kind=kind,
            channel=contract.Channel.EVENTS if event else contract.Channel.TELEMETRY,
            created=message.ts,
            payload=contract.encode(message),
            is_event=event,
            msg_id=message.id if event else None,
        )
        self._next_seq += 1
        self._pending.append(row)
        self._rows += 1
        self._bytes += row.size
        self._schedule()
        return row.seq

    def ack(self, seq: int) -> None:
        """The message is delivered for good: delete it at the next group commit."""
        self._acks.append(seq)
        self._schedule()

    def published(self, row: Row) -> None:
        """The broker acknowledged `row`: telemetry is done, an event awaits the cloud's ack."""
        if row.is_event and self.cloud_ack_timeout_s is not None:
            self._published.append(row.seq)
            self._schedule()
        else:
            self.ack(row.seq)

    def cloud_acked(self, msg_ids: Iterable[str]) -> None:
        """The cloud committed these events (its event_ack): delete them at the next commit."""
        self._cloud_acks.extend(msg_ids)
        self._schedule()

    async def flushed(self) -> None:
        """Returns once everything put or acked before the call is committed."""
        if not (self._pending or self._acks or self._published or self._cloud_acks):
            return
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiters.append(waiter)
        # Someone waits for durability: commit at the end of this iteration rather
        # than after the batching window (puts made in this iteration still join).
        handle = self._handle
        if handle is None or isinstance(handle, asyncio.TimerHandle):
            if handle is not None:
                handle.cancel()
            self._handle = loop.call_soon(self.flush_now)
        await waiter

    def on_commit(self, listener: Callable[[list[Row]], None]) -> None:
        """Calls `listener` with the rows of each group commit, in seq order, after it."""
        self._listeners.append(listener)

    def _schedule(self) -> None:
        if self._handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # Used outside an event loop (tools, tests): no batching to wait for.
            self.flush_now()
            return
        if self._window > 0:
            self._handle = loop.call_later(self._window, self.flush_now)
        else:
            self._handle = loop.call_soon(self.flush_now)

    def _set_sync(self, level: str) -> None:
        if self._sync != level:
            self._db.execute(f"PRAGMA synchronous={level}")
            self._sync = level

    def flush_now(self) -> list[Row]:
        """One group commit of every pending put and ack; returns the rows it stored."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        rows, acks, waiters = self._pending, self._acks, self._waiters
        published, cloud_acks = self._published, self._cloud_acks
        self._pending, self._acks, self._waiters = [], [], []
        self._published, self._cloud_acks = [], []
        if not (rows or acks or published or cloud_acks):
            _resolve(waiters)
            return []
        try:
            self._set_sync("FULL" if any(r.is_event for r in rows) else "NORMAL")
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(INSERT, (r.as_params() for r in rows))
            # Marked before the deletes: a cloud ack in the same batch still wins.
            moved = self._mark_awaiting(published)
            pending_deleted, awaiting_deleted, freed = self._delete(acks)
            p2, a2, f2 = self._delete_ids(cloud_acks)
            pending_deleted, awaiting_deleted, freed = (
                pending_deleted + p2,
                awaiting_deleted + a2,
                freed + f2,
            )
            shed: set[int] = set()
            if self._bytes - freed > self.max_bytes:
                shed, shed_bytes = self._shed(
                    self._bytes - freed - int(self.max_bytes * SHED_TARGET)
                )
                freed += shed_bytes
                pending_deleted += len(shed)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            # Keep everything in memory and try again: nothing is lost while the process lives.
            self._pending = rows + self._pending
            self._acks = acks + self._acks
            self._published = published + self._published
            self._cloud_acks = cloud_acks + self._cloud_acks
            self._waiters = waiters + self._waiters
            self._set_alarm(f"disk_error: {exc}")
            with contextlib.suppress(RuntimeError):
                self._handle = asyncio.get_running_loop().call_later(1.0, self.flush_now)
            return []
        self._rows -= pending_deleted + moved
        self._awaiting += moved - awaiting_deleted
        self._bytes -= freed
        if shed:
            self.dropped_telemetry += len(shed)
            rows = [r for r in rows if r.seq not in shed]
        if rows:
            self.last_committed_seq = max(self.last_committed_seq, rows[-1].seq)
        self._update_alarm()
        for listener in self._listeners:
            listener(rows)
        _resolve(waiters)
        return rows

    def _delete(self, seqs: Sequence[int | str], column: str = "seq") -> tuple[int, int, int]:
        """Deletes rows by seq (or msg_id); returns (pending deleted, awaiting deleted, bytes)."""
        pending = awaiting = freed = 0
        for start in range(0, len(seqs), _PAGE):
            chunk = seqs[start : start + _PAGE]
            marks = ",".join("?" * len(chunk))
            found = self._db.execute(
                f"DELETE FROM outbox WHERE {column} IN ({marks})"
                " RETURNING length(payload), resend_at IS NOT NULL",
                chunk,
            ).fetchall()
            waiting = sum(1 for _, w in found if w)
            awaiting += waiting
            pending += len(found) - waiting
            freed += sum(s for s, _ in found) + ROW_OVERHEAD * len(found)
        return pending, awaiting, freed

    def _delete_ids(self, msg_ids: list[str]) -> tuple[int, int, int]:
        # An id the outbox no longer has (a second ack for a resent event) deletes nothing.
        return self._delete(msg_ids, "msg_id")

    def _mark_awaiting(self, seqs: list[int]) -> int:
        """Broker PUBACKs of events: due again after the ack timeout, doubling per try.

        Returns how many rows moved from "not yet published" to "awaiting cloud ack"
        (a resent row already was).
        """
        if not seqs or self.cloud_ack_timeout_s is None:
            return 0
        now = time.time()
        moved = 0
        due = "? + min(?, ? * (1 << min(tries, 20)))"
        params = (now, self.cloud_ack_max_backoff_s, self.cloud_ack_timeout_s)
        for start in range(0, len(seqs), _PAGE):
            chunk = seqs[start : start + _PAGE]
            marks = ",".join("?" * len(chunk))
            first = self._db.execute(
                f"UPDATE outbox SET resend_at = {due}, tries = tries + 1"
                f" WHERE seq IN ({marks}) AND resend_at IS NULL",
                (*params, *chunk),
            ).rowcount
            moved += first
            if first < len(chunk):
                self._db.execute(
                    f"UPDATE outbox SET resend_at = {due}, tries = tries + 1"
                    f" WHERE seq IN ({marks}) AND resend_at IS NOT NULL",
                    (*params, *chunk),
                )
        return moved

    def _shed(self, need: int) -> tuple[set[int], int]:
        """Deletes telemetry, lowest priority then oldest first, until `need` bytes are free."""
        shed: list[int] = []
        freed = 0
        while freed < need:
            found = self._db.execute(
                "SELECT seq, length(payload) FROM outbox WHERE is_event = 0"
                " ORDER BY priority DESC, seq LIMIT ? OFFSET ?",
                (_PAGE, len(shed)),
            ).fetchall()
            if not found:
                break
            for seq, size in found:
                shed.append(seq)
                freed += size + ROW_OVERHEAD
                if freed >= need:
                    break
        self._delete(shed)
        return set(shed), freed

    # --- alarm ----------------------------------------------------------------------------

    def _update_alarm(self) -> None:
        if self._bytes > self.max_bytes:
            # Shedding ran and only events are left: they stay, a person must look.
            self._set_alarm(ALARM_FULL)
        elif self.alarm is not None and (
            self.alarm != ALARM_FULL or self._bytes < self.max_bytes * ALARM_CLEAR
        ):
            self._set_alarm(None)

    def _set_alarm(self, alarm: str | None) -> None:
        if alarm == self.alarm:
            return
        if alarm == ALARM_FULL:
            log.error(
                "outbox alarm: full (%d bytes of events, bound %d): events are kept, "
                "telemetry is dropped",
                self._bytes,
                self.max_bytes,
            )
        elif alarm is not None:
            log.error("outbox alarm: %s", alarm)
        else:
            log.warning("outbox alarm cleared (was %s)", self.alarm)
        self.alarm = alarm

    # --- reading --------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Messages not yet acknowledged by the broker (stored or about to be)."""
        return self._rows

    @property
    def awaiting_ack(self) -> int:
        """Events the broker took but the cloud has not yet confirmed (still on disk)."""
        return self._awaiting

    def due_for_resend(self, now: float | None = None, *, limit: int = _PAGE) -> list[Row]:
        """Events awaiting a cloud ack whose wait ran out, in drain order."""
        found = self._db.execute(
            f"SELECT {COLUMNS}, msg_id FROM outbox WHERE resend_at IS NOT NULL"
            " AND resend_at <= ? ORDER BY priority, seq LIMIT ?",
            (time.time() if now is None else now, limit),
        ).fetchall()
        return [row_of(r) for r in found]

    def probe(self, timeout_s: float = 5.0) -> None:
        """A cheap read+write transaction on its own connection; raises sqlite3.Error.

        For the watchdog, which runs it on a worker thread: a locked file, a failing
        or read-only disk shows here even while no message is being written.
        """
        with self._probe_lock:
            if self._probe_closed:
                raise sqlite3.ProgrammingError("the outbox is closed")
            db = self._probe_db
            if db is None:
                db = sqlite3.connect(
                    self.path, isolation_level=None, timeout=timeout_s, check_same_thread=False
                )
                # NORMAL: the probe checks that the file takes writes, not the fsync path.
                db.execute("PRAGMA synchronous=NORMAL")
                self._probe_db = db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("SELECT count(*) FROM meta").fetchone()
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('probe', ?)", (time.time(),)
                )
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def rows(
        self, *, after: tuple[int, int] = (-1, 0), upto_seq: int | None = None, limit: int = _PAGE
    ) -> list[Row]:
        """Committed rows in drain order (priority, then seq) strictly after `after`."""
        top = self.last_committed_seq if upto_seq is None else upto_seq
        found = self._db.execute(
            f"SELECT {COLUMNS} FROM outbox WHERE seq <= ? AND (priority, seq) > (?, ?)"
            " ORDER BY priority, seq LIMIT ?",
            (top, after[0], after[1], limit),
        ).fetchall()
        return [row_of(r) for r in found]

    def all_rows(self) -> list[Row]:
        """Every committed row in drain order (for tests and tools; loads them all)."""
        found = self._db.execute(f"SELECT {COLUMNS} FROM outbox ORDER BY priority, seq")
        return [row_of(r) for r in found.fetchall()]

    def health(self) -> dict[str, Any]:
        """What node health shows about the outbox."""
        out: dict[str, Any] = {
            "outbox_depth": self._rows,
            "outbox_awaiting_ack": self._awaiting,
            "outbox_bytes": self._bytes,
            "outbox_dropped_telemetry": self.dropped_telemetry,
            "outbox_alarm": self.alarm,
        }
        if self.recovery is not None:
            out["outbox_recovered"] = self.recovery.recovered
            out["outbox_lost"] = self.recovery.lost
        return out

    def integrity(self) -> str | None:
        """None if the open file passes quick_check, else what is wrong."""
        result = self._db.execute("PRAGMA quick_check").fetchall()
        return None if result == [("ok",)] else "; ".join(str(r[0]) for r in result[:5])

    def close(self) -> None:
        self.flush_now()
        # Waits for a probe still running on its thread (at most its busy timeout).
        with self._probe_lock:
            self._probe_closed = True
            if self._probe_db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._probe_db.close()
                self._probe_db = None
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()


def _resolve(waiters: Iterable[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
