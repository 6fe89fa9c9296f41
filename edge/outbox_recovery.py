"""Recovery of a damaged outbox file: move it aside, salvage every row that still reads.

The outbox (edge/outbox.py) runs ``PRAGMA quick_check`` when it opens its
file. A file that fails is renamed ``<name>.corrupt-<timestamp>`` (with its
WAL), every row that can still be read and whose payload still validates as
its contract kind is copied into a fresh file, and `Recovery` says how many
were kept and (at most) how many were lost.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruang import contract

from .outbox_store import COLUMNS, INSERT, Row, connect, priority_of

log = logging.getLogger(__name__)

_SALVAGE_CHUNK = 256


@dataclass(frozen=True, slots=True)
class Recovery:
    """What `open` found and did with a corrupt file."""

    problem: str
    moved_to: Path
    recovered: int
    # Upper estimate: unreadable stretches may have been gaps left by acked rows.
    # None when not even the extent of the table could be read.
    lost: int | None


def recover(path: Path, problem: str) -> Recovery:
    """Moves a damaged file aside and copies every row still readable into a fresh one."""
    stamp = time.strftime("%Y%m%dT%H%M%S") + f"-{time.time_ns() % 1_000_000:06d}"
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    path.replace(aside)
    # The WAL belongs to the damaged file: it may hold its newest rows.
    for suffix in ("-wal", "-shm"):
        side = Path(f"{path}{suffix}")
        if side.exists():
            side.replace(Path(f"{aside}{suffix}"))
    rows, lost = _salvage(aside)
    fresh = connect(path)
    try:
        fresh.execute("BEGIN")
        # Recovered events start over as unpublished: a resend is harmless.
        fresh.executemany(INSERT, (r.as_params() for r in rows))
        fresh.execute("COMMIT")
    finally:
        fresh.close()
    log.error(
        "outbox %s was corrupt (%s): moved to %s, recovered %d message(s), lost %s",
        path,
        problem,
        aside.name,
        len(rows),
        "an unknown number" if lost is None else f"at most {lost}",
    )
    return Recovery(problem=problem, moved_to=aside, recovered=len(rows), lost=lost)


def integrity_problem(path: Path) -> str | None:
    try:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            result = db.execute("PRAGMA quick_check").fetchall()
            if result != [("ok",)]:
                return "; ".join(str(r[0]) for r in result[:3])
            db.execute(f"SELECT {COLUMNS} FROM outbox LIMIT 1").fetchall()
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
                    f"SELECT {COLUMNS} FROM outbox WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
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
                            f"SELECT {COLUMNS} FROM outbox WHERE seq = ?", (seq,)
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
