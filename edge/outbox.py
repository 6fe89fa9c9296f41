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
See docs/edge-outbox.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruang import contract
from ruang.private_files import create_private_file, private_dir

log = logging.getLogger(__name__)

FILE_NAME = "outbox.sqlite3"

# Drain and shedding order, one table: lower number = more important.
PRIORITY_BY_KIND: dict[str, int] = {
    # Access control: the audit trail of who opened which door.
    "access": 0,
    "door_status": 0,
    # Desk check-ins and the units that serve them.
    "checkin": 1,
    "checkout": 1,
    "tap_refused": 1,
    "button": 1,
    "unit_status": 1,
    # The node's answer to a remote config push.
    "config_status": 1,
    # Occupancy.
    "presence": 2,
    "room_presence": 2,
    "badge_presence": 2,
    # Environment and health: the first to go when the disk bound is reached.
    "heartbeat": 3,
    "health": 3,
    "device_health": 3,
    "position": 3,
}

# Rough per-row cost on disk beyond the payload (row header, key, indexes).
ROW_OVERHEAD = 64
# Shedding frees down to this share of the bound, so a full outbox does not run one
# DELETE per new row.
SHED_TARGET = 0.95
# The "full" alarm clears below this share of the bound.
ALARM_CLEAR = 0.90
_PAGE = 512
_SALVAGE_CHUNK = 256

ALARM_FULL = "full"

# Schema version 2 added msg_id, resend_at and tries (cloud acks for events);
# `_migrate` brings a version 1 file up to date in place.
SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    priority INTEGER NOT NULL,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    created REAL NOT NULL,
    payload BLOB NOT NULL,
    is_event INTEGER NOT NULL,
    msg_id TEXT,
    resend_at REAL,
    tries INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
CREATE INDEX IF NOT EXISTS outbox_drain ON outbox (priority, seq);
CREATE INDEX IF NOT EXISTS outbox_shed ON outbox (is_event, priority DESC, seq);
"""
# Created after `_migrate`: they name columns a version 1 file does not have yet.
_INDEXES_V2 = """
CREATE INDEX IF NOT EXISTS outbox_msg_id ON outbox (msg_id) WHERE msg_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_resend ON outbox (resend_at) WHERE resend_at IS NOT NULL;
"""
_COLUMNS = "seq, priority, kind, channel, created, payload, is_event"
_INSERT = (
    "INSERT INTO outbox (seq, priority, kind, channel, created, payload, is_event, msg_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class Row:
    """One stored message; `payload` is the contract encoding, published as is."""

    seq: int
    priority: int
    kind: str
    channel: str  # contract.Channel.EVENTS or TELEMETRY: where it goes when live
    created: float
    payload: bytes
    is_event: bool
    # The message's own id, for events only: what the cloud's event_ack names.
    msg_id: str | None = None

    @property
    def size(self) -> int:
        return len(self.payload) + ROW_OVERHEAD

    def as_params(self) -> tuple[Any, ...]:
        return (
            self.seq,
            self.priority,
            self.kind,
            self.channel,
            self.created,
            self.payload,
            int(self.is_event),
            self.msg_id,
        )


@dataclass(frozen=True, slots=True)
class Recovery:
    """What `open` found and did with a corrupt file."""

    problem: str
    moved_to: Path
    recovered: int
    # Upper estimate: unreadable stretches may have been gaps left by acked rows.
    # None when not even the extent of the table could be read.
    lost: int | None


class OutboxError(RuntimeError):
    """The outbox cannot be opened at all (for example the directory is not writable)."""


def priority_of(kind: str) -> int:
    try:
        return PRIORITY_BY_KIND[kind]
    except KeyError:
        raise ValueError(f"{kind!r} is not an event or telemetry kind") from None


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
            problem = _integrity_problem(self.path)
            if problem is not None:
                self._recover(problem)
        db = self._connect(self.path)
        return db

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        create_private_file(path)  # badge ids and presence wait here
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one per group commit.
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        # Keep the WAL from staying large after a burst has been checkpointed.
        db.execute("PRAGMA journal_size_limit=67108864")
        db.executescript(_SCHEMA)
        _migrate(db)
        db.executescript(_INDEXES_V2)
        return db

    def _highest_seq(self) -> int:
        # AUTOINCREMENT keeps the high-water mark in sqlite_sequence even when the table
        # is empty, so seqs never repeat across restarts.
        (top,) = self._db.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()
        found = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        return max(int(top), int(found[0]) if found else 0)

    def _recover(self, problem: str) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S") + f"-{time.time_ns() % 1_000_000:06d}"
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        self.path.replace(aside)
        # The WAL belongs to the damaged file: it may hold its newest rows.
        for suffix in ("-wal", "-shm"):
            side = Path(f"{self.path}{suffix}")
            if side.exists():
                side.replace(Path(f"{aside}{suffix}"))
        rows, lost = _salvage(aside)
        fresh = self._connect(self.path)
        try:
            fresh.execute("BEGIN")
            # Recovered events start over as unpublished: a resend is harmless.
            fresh.executemany(_INSERT, (r.as_params() for r in rows))
            fresh.execute("COMMIT")
        finally:
            fresh.close()
        self.recovery = Recovery(problem=problem, moved_to=aside, recovered=len(rows), lost=lost)
        log.error(
            "outbox %s was corrupt (%s): moved to %s, recovered %d message(s), lost %s",
            self.path,
            problem,
            aside.name,
            len(rows),
            "an unknown number" if lost is None else f"at most {lost}",
        )

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
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._schedule()
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
            self._db.executemany(_INSERT, (r.as_params() for r in rows))
            # Marked before the deletes: a cloud ack in the same batch still wins.
            moved = self._mark_awaiting(published)
            pending_deleted, awaiting_deleted, freed = self._delete(acks)
            p2, a2, f2 = self._delete_ids(cloud_acks)
            pending_deleted, awaiting_deleted, freed = (
                pending_deleted + p2, awaiting_deleted + a2, freed + f2
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
            f"SELECT {_COLUMNS}, msg_id FROM outbox WHERE resend_at IS NOT NULL"
            " AND resend_at <= ? ORDER BY priority, seq LIMIT ?",
            (time.time() if now is None else now, limit),
        ).fetchall()
        return [_row(r) for r in found]

    def probe(self, timeout_s: float = 5.0) -> None:
        """A cheap read+write transaction on its own connection; raises sqlite3.Error.

        For the watchdog, which runs it on a worker thread: a locked file, a failing
        or read-only disk shows here even while no message is being written.
        """
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
            f"SELECT {_COLUMNS} FROM outbox WHERE seq <= ? AND (priority, seq) > (?, ?)"
            " ORDER BY priority, seq LIMIT ?",
            (top, after[0], after[1], limit),
        ).fetchall()
        return [_row(r) for r in found]

    def all_rows(self) -> list[Row]:
        """Every committed row in drain order (for tests and tools; loads them all)."""
        found = self._db.execute(f"SELECT {_COLUMNS} FROM outbox ORDER BY priority, seq")
        return [_row(r) for r in found.fetchall()]

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


def _row(values: tuple[Any, ...]) -> Row:
    seq, priority, kind, channel, created, payload, is_event = values[:7]
    return Row(
        int(seq),
        int(priority),
        str(kind),
        str(channel),
        float(created),
        bytes(payload),
        bool(is_event),
        str(values[7]) if len(values) > 7 and values[7] is not None else None,
    )


def _migrate(db: sqlite3.Connection) -> None:
    """Brings a version 1 file (no cloud acks) to version 2 in place, in one transaction."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(outbox)")}
    if {"msg_id", "resend_at", "tries"} <= columns:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for name, decl in (("msg_id", "TEXT"), ("resend_at", "REAL"),
                           ("tries", "INTEGER NOT NULL DEFAULT 0")):  # fmt: skip
            if name not in columns:
                db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {decl}")
        # Every stored row is still unpublished (version 1 deleted at PUBACK); events
        # need their message id so a cloud ack can find them.
        found = db.execute("SELECT seq, payload FROM outbox WHERE is_event = 1").fetchall()
        ids = []
        for seq, payload in found:
            try:
                ident = json.loads(payload).get("id")
            except (ValueError, AttributeError):
                ident = None
            ids.append((ident if isinstance(ident, str) else None, seq))
        db.executemany("UPDATE outbox SET msg_id = ? WHERE seq = ?", ids)
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
            (SCHEMA_VERSION,),
        )
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    log.info("outbox migrated to schema version %d (%d event(s) kept)", SCHEMA_VERSION, len(ids))


def _integrity_problem(path: Path) -> str | None:
    try:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            result = db.execute("PRAGMA quick_check").fetchall()
            if result != [("ok",)]:
                return "; ".join(str(r[0]) for r in result[:3])
            db.execute(f"SELECT {_COLUMNS} FROM outbox LIMIT 1").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        if "no such table" in str(exc):
            return None  # an empty file from an interrupted first start: the schema follows
        return str(exc)
    return None


def _valid(values: tuple[Any, ...]) -> Row | None:
    """The row if its payload still decodes as its kind, else None (damaged in place)."""
    try:
        seq, _, kind, _, created, payload, _ = values
        model = contract.EVENT_KINDS.get(kind) or contract.TELEMETRY_KINDS.get(kind)
        if model is None or not isinstance(payload, bytes):
            return None
        decoded = model.model_validate_json(payload)
        event = kind in contract.EVENT_KINDS
        # Priority and channel are recomputed: the stored ones may be what got damaged.
        return Row(
            seq=int(seq),
            priority=priority_of(kind),
            kind=kind,
            channel=contract.Channel.EVENTS if event else contract.Channel.TELEMETRY,
            created=float(created),
            payload=payload,
            is_event=event,
            msg_id=str(decoded.id) if event else None,
        )
    except (ValueError, TypeError):
        return None


def _salvage(path: Path) -> tuple[list[Row], int | None]:
    """Reads every row it can from a damaged outbox file; returns them and how many were lost."""
    try:
        src = sqlite3.connect(path, isolation_level=None)
    except sqlite3.DatabaseError:
        return [], None
    try:
        hi = _first_int(
            src,
            "SELECT max(seq) FROM outbox",
            "SELECT seq FROM sqlite_sequence WHERE name='outbox'",
        )
        if hi is None:
            return [], None
        lo = _first_int(src, "SELECT min(seq) FROM outbox") or 1
        top = _first_int(src, "SELECT max(seq) FROM outbox")
        kept: list[Row] = []
        lost = 0
        cursor = lo - 1
        while cursor < hi:
            chunk: list[Any] | None
            try:
                chunk = src.execute(
                    f"SELECT {_COLUMNS} FROM outbox WHERE seq > ? AND seq <= ?"
                    " ORDER BY seq LIMIT ?",
                    (cursor, hi, _SALVAGE_CHUNK),
                ).fetchall()
            except sqlite3.DatabaseError:
                chunk = None
            if chunk == [] and (top is None or cursor >= top):
                break  # the true end of the table
            if not chunk:
                # A damaged page under this stretch: the scan failed, or (a torn leaf)
                # silently ended before `hi`. Walk it one seq at a time, keeping whatever
                # still reads; a seq that does not is counted lost (it may be a gap).
                end = min(cursor + _SALVAGE_CHUNK, hi)
                for seq in range(cursor + 1, end + 1):
                    try:
                        one = src.execute(
                            f"SELECT {_COLUMNS} FROM outbox WHERE seq = ?", (seq,)
                        ).fetchone()
                    except sqlite3.DatabaseError:
                        one = None
                    row = None if one is None else _valid(one)
                    if row is None:
                        lost += 1
                    else:
                        kept.append(row)
                cursor = end
                continue
            for values in chunk:
                row = _valid(values)
                if row is None:
                    lost += 1
                else:
                    kept.append(row)
            cursor = int(chunk[-1][0])
        return kept, lost
    finally:
        src.close()


def _first_int(db: sqlite3.Connection, *queries: str) -> int | None:
    for query in queries:
        try:
            found = db.execute(query).fetchone()
        except sqlite3.DatabaseError:
            continue
        if found is not None and found[0] is not None:
            return int(found[0])
    return None
