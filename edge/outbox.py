"""The edge's durable outbox: every event and telemetry message, on disk until the broker has it.

One SQLite file (WAL mode) under the node's state directory. The agent's device
callbacks call `put(message)`, which never blocks: the message gets its sequence
number at once and is written with every other put of the same few milliseconds
in one transaction (a group commit). The uplink publishes rows only after that
commit and calls `ack(seq)` once the broker acknowledged them; acks are deleted
in the next group commit too.

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
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruang import contract

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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    priority INTEGER NOT NULL,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    created REAL NOT NULL,
    payload BLOB NOT NULL,
    is_event INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_drain ON outbox (priority, seq);
CREATE INDEX IF NOT EXISTS outbox_shed ON outbox (is_event, priority DESC, seq);
"""
_COLUMNS = "seq, priority, kind, channel, created, payload, is_event"


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
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._window = batch_window_s
        self.recovery: Recovery | None = None
        self.alarm: str | None = None
        self.dropped_telemetry = 0
        self._pending: list[Row] = []
        self._acks: list[int] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._handle: asyncio.Handle | asyncio.TimerHandle | None = None
        self._listeners: list[Callable[[list[Row]], None]] = []
        self._sync: str | None = None
        self._db = self._open()
        row = self._db.execute("SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox")
        count, payload_bytes = row.fetchone()
        self._rows = int(count)
        self._bytes = int(payload_bytes) + ROW_OVERHEAD * self._rows
        self._next_seq = self._highest_seq() + 1
        self.last_committed_seq = self._next_seq - 1

    @classmethod
    def in_dir(cls, state_dir: Path, *, max_mb: float = 200.0, **kwargs: Any) -> Outbox:
        return cls(state_dir / FILE_NAME, max_bytes=int(max_mb * 1_000_000), **kwargs)

    # --- opening and recovery -------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
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
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one per group commit.
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        # Keep the WAL from staying large after a burst has been checkpointed.
        db.execute("PRAGMA journal_size_limit=67108864")
        db.executescript(_SCHEMA)
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
            fresh.executemany(
                f"INSERT INTO outbox ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (r.as_params() for r in rows),
            )
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
        )
        self._next_seq += 1
        self._pending.append(row)
        self._rows += 1
        self._bytes += row.size
        self._schedule()
        return row.seq

    def ack(self, seq: int) -> None:
        """The broker has the message: delete it at the next group commit."""
        self._acks.append(seq)
        self._schedule()

    async def flushed(self) -> None:
        """Returns once everything put or acked before the call is committed."""
        if not self._pending and not self._acks:
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
        self._pending, self._acks, self._waiters = [], [], []
        if not rows and not acks:
            _resolve(waiters)
            return []
        try:
            self._set_sync("FULL" if any(r.is_event for r in rows) else "NORMAL")
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                f"INSERT INTO outbox ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (r.as_params() for r in rows),
            )
            deleted, freed = self._delete(acks)
            shed: set[int] = set()
            if self._bytes - freed > self.max_bytes:
                shed, shed_bytes = self._shed(
                    self._bytes - freed - int(self.max_bytes * SHED_TARGET)
                )
                freed += shed_bytes
                deleted += len(shed)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            # Keep everything in memory and try again: nothing is lost while the process lives.
            self._pending = rows + self._pending
            self._acks = acks + self._acks
            self._waiters = waiters + self._waiters
            self._set_alarm(f"disk_error: {exc}")
            with contextlib.suppress(RuntimeError):
                self._handle = asyncio.get_running_loop().call_later(1.0, self.flush_now)
            return []
        self._rows -= deleted
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

    def _delete(self, seqs: list[int]) -> tuple[int, int]:
        deleted = freed = 0
        for start in range(0, len(seqs), _PAGE):
            chunk = seqs[start : start + _PAGE]
            marks = ",".join("?" * len(chunk))
            sizes = self._db.execute(
                f"DELETE FROM outbox WHERE seq IN ({marks}) RETURNING length(payload)", chunk
            ).fetchall()
            deleted += len(sizes)
            freed += sum(s for (s,) in sizes) + ROW_OVERHEAD * len(sizes)
        return deleted, freed

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
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()


def _resolve(waiters: Iterable[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)


def _row(values: tuple[Any, ...]) -> Row:
    seq, priority, kind, channel, created, payload, is_event = values
    return Row(
        int(seq),
        int(priority),
        str(kind),
        str(channel),
        float(created),
        bytes(payload),
        bool(is_event),
    )


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
        model.model_validate_json(payload)
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
