"""Tamper-evident, hash-chained log of door access decisions, kept on the node until acknowledged.

Every decision becomes one row in a SQLite file (WAL journal, synchronous=FULL
so an entry whose seq/hash was published survives a power cut)::

    hash = SHA-256( prev_hash (32 raw bytes) || canonical JSON of
                    {"badge","door","granted","reason","seq","ts"} )

Canonical JSON: keys sorted, separators ``,`` and ``:``, UTF-8, no ASCII
escaping. The first entry's prev_hash is 64 zeros. The published
`AccessDecision` carries ``audit_seq``/``audit_hash`` so the cloud can check
the chain it receives.

Rows stay until the cloud acknowledges them (`mark_acknowledged`); pruning
moves the chain's anchor (seq and hash of the last acknowledged entry) into a
one-row ``chain`` table, which also records the head, so the chain continues
across restarts and `verify()` can tell a deleted tail from a short log.
Limits: someone able to rewrite the whole file can recompute every hash; the
chain makes edits detectable against the hashes the cloud already holds.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ruang.private_files import create_private_file

GENESIS_HASH = "0" * 64

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS entries (
    seq       INTEGER PRIMARY KEY,
    ts        REAL    NOT NULL,
    door      TEXT    NOT NULL,
    badge     TEXT,
    granted   INTEGER NOT NULL,
    reason    TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS chain (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    head_seq   INTEGER NOT NULL,
    head_hash  TEXT    NOT NULL,
    acked_seq  INTEGER NOT NULL,
    acked_hash TEXT    NOT NULL
);
INSERT OR IGNORE INTO chain VALUES (1, 0, '{GENESIS_HASH}', 0, '{GENESIS_HASH}');
"""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    ts: float
    door: str
    badge: str | None
    granted: bool
    reason: str
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    broken_seq: int | None = None
    problem: str | None = None


class AuditChainError(ValueError):
    """An acknowledgement that does not fit the chain (unknown seq or different hash)."""


def canonical_record(
    seq: int, ts: float, door: str, badge: str | None, granted: bool, reason: str
) -> bytes:
    record = {
        "badge": badge,
        "door": door,
        "granted": bool(granted),
        "reason": reason,
        "seq": seq,
        "ts": ts,
    }
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, record: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + record).hexdigest()


def _entry(row: tuple[int, float, str, str | None, int, str, str, str]) -> AuditEntry:
    seq, ts, door, badge, granted, reason, prev_hash, digest = row
    return AuditEntry(seq, ts, door, badge, bool(granted), reason, prev_hash, digest)


_COLUMNS = "seq, ts, door, badge, granted, reason, prev_hash, hash"


class AuditLog:
    """One node's audit chain. Thread-safe; every method is a short blocking SQLite call."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        create_private_file(self.path)  # who opened which door, when
        self._lock = threading.Lock()
        # check_same_thread=False: the door driver appends from a worker thread so
        # the fsync never stalls the event loop; the lock serialises access.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def head(self) -> tuple[int, str]:
        with self._lock:
            row = self._db.execute("SELECT head_seq, head_hash FROM chain").fetchone()
        return int(row[0]), str(row[1])

    def append(
        self,
        *,
        door: str,
        badge: str | None,
        granted: bool,
        reason: str,
        ts: float | None = None,
    ) -> AuditEntry:
        ts = time.time() if ts is None else ts
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                head_seq, head_hash = self._db.execute(
                    "SELECT head_seq, head_hash FROM chain"
                ).fetchone()
                seq = int(head_seq) + 1
                digest = chain_hash(
                    head_hash, canonical_record(seq, ts, door, badge, granted, reason)
                )
                self._db.execute(
                    f"INSERT INTO entries ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (seq, ts, door, badge, int(granted), reason, head_hash, digest),
                )
                self._db.execute("UPDATE chain SET head_seq = ?, head_hash = ?", (seq, digest))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return AuditEntry(seq, ts, door, badge, granted, reason, head_hash, digest)

    def pending(self, limit: int | None = None) -> list[AuditEntry]:
        """Entries the cloud has not acknowledged yet, oldest first."""
        sql = f"SELECT {_COLUMNS} FROM entries ORDER BY seq"
        with self._lock:
            if limit is None:
                rows = self._db.execute(sql).fetchall()
            else:
                rows = self._db.execute(sql + " LIMIT ?", (limit,)).fetchall()
        return [_entry(r) for r in rows]

    def mark_acknowledged(self, up_to_seq: int, expected_hash: str | None = None) -> int:
        """The cloud holds every entry up to `up_to_seq`: prune them, keep the anchor.

        With `expected_hash` (the hash the cloud has for that seq) a divergent
        chain is refused instead of being silently pruned. Returns rows removed.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                acked_seq, head_seq = self._db.execute(
                    "SELECT acked_seq, head_seq FROM chain"
                ).fetchone()
                if up_to_seq <= acked_seq:
                    self._db.execute("COMMIT")
                    return 0
                if up_to_seq > head_seq:
                    raise AuditChainError(f"seq {up_to_seq} is beyond the head ({head_seq})")
                row = self._db.execute(
                    "SELECT hash FROM entries WHERE seq = ?", (up_to_seq,)
                ).fetchone()
                if row is None:
                    raise AuditChainError(f"entry {up_to_seq} is missing from the log")
                if expected_hash is not None and row[0] != expected_hash:
                    raise AuditChainError(f"entry {up_to_seq} differs from the acknowledged hash")
                removed = self._db.execute(
                    "DELETE FROM entries WHERE seq <= ?", (up_to_seq,)
                ).rowcount
                self._db.execute(
                    "UPDATE chain SET acked_seq = ?, acked_hash = ?", (up_to_seq, row[0])
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(removed)

    def verify(self) -> VerifyResult:
        """Walks the chain from the acknowledged anchor to the head; reports the first break."""
        with self._lock:
            acked_seq, acked_hash, head_seq, head_hash = self._db.execute(
                "SELECT acked_seq, acked_hash, head_seq, head_hash FROM chain"
            ).fetchone()
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM entries ORDER BY seq").fetchall()
        expected_seq, prev = int(acked_seq) + 1, str(acked_hash)
        checked = 0
        for row in rows:
            entry = _entry(row)
            if entry.seq < expected_seq:
                return VerifyResult(
                    False, checked, entry.seq, "entry before the acknowledged anchor"
                )
            if entry.seq > expected_seq:
                return VerifyResult(
                    False, checked, expected_seq, f"entry {expected_seq} is missing"
                )
            if entry.prev_hash != prev:
                return VerifyResult(
                    False, checked, entry.seq, f"entry {entry.seq} does not link to its predecessor"
                )
            record = canonical_record(
                entry.seq, entry.ts, entry.door, entry.badge, entry.granted, entry.reason
            )
            if chain_hash(prev, record) != entry.hash:
                return VerifyResult(False, checked, entry.seq, f"entry {entry.seq} was modified")
            prev, expected_seq = entry.hash, entry.seq + 1
            checked += 1
        if expected_seq - 1 != head_seq or prev != head_hash:
            # Rows at the end are gone (or the head record was altered).
            return VerifyResult(False, checked, expected_seq, f"entry {expected_seq} is missing")
        return VerifyResult(True, checked)
