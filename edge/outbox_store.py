"""The outbox's file: its schema, rows and priorities, and recovery of a damaged file.

One SQLite file (WAL mode) holds every message the node has not yet delivered
(edge/outbox.py decides when rows are written, published, acknowledged and shed).
This module knows the on-disk format: the table and its indexes, schema
migration (version 1 -> 2 added cloud acks), how a stored row maps to `Row`,
the drain/shed priority of each message kind, (recovery of a damaged file is in
edge/outbox_recovery.py). See docs/edge-outbox.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruang.private_files import create_private_file

log = logging.getLogger(__name__)

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
    # Boardings and pool-car pick-ups/returns decided at a vehicle's door (ridership, trip logs).
    "boarding": 1,
    "poolcar": 1,
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
COLUMNS = "seq, priority, kind, channel, created, payload, is_event"
INSERT = (
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


def priority_of(kind: str) -> int:
    try:
        return PRIORITY_BY_KIND[kind]
    except KeyError:
        raise ValueError(f"{kind!r} is not an event or telemetry kind") from None


def connect(path: Path) -> sqlite3.Connection:
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


def row_of(values: tuple[Any, ...]) -> Row:
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
