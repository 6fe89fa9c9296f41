"""The hash-chained audit log: verification, tamper detection, restart and acknowledgement."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.devices.audit_log import (
    GENESIS_HASH,
    AuditChainError,
    AuditLog,
    canonical_record,
    chain_hash,
)


def _fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.append(
            door="door-a", badge=f"{i:08X}", granted=i % 2 == 0, reason="allowed", ts=1e9 + i
        )


def test_appended_entries_form_a_verifiable_chain(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "a.db") as log:
        first = log.append(door="door-a", badge="04A1B2C3", granted=True, reason="allowed", ts=1.5)
        second = log.append(door="door-a", badge=None, granted=False, reason="x", ts=2.0)
        assert (first.seq, second.seq) == (1, 2)
        assert first.prev_hash == GENESIS_HASH and second.prev_hash == first.hash
        expected = chain_hash(
            GENESIS_HASH, canonical_record(1, 1.5, "door-a", "04A1B2C3", True, "allowed")
        )
        assert first.hash == expected
        result = log.verify()
        assert result.ok and result.checked == 2


def test_modified_row_is_detected_at_its_seq(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with AuditLog(path) as log:
        _fill(log, 5)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE entries SET granted = 1 WHERE seq = 2")  # a denial turned grant
    with AuditLog(path) as log:
        result = log.verify()
    assert not result.ok and result.broken_seq == 2 and "modified" in (result.problem or "")


def test_row_rewritten_with_a_fresh_hash_breaks_the_next_link(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with AuditLog(path) as log:
        _fill(log, 5)
        entry = log.pending()[1]
    forged = chain_hash(
        entry.prev_hash, canonical_record(2, entry.ts, "door-a", entry.badge, True, "allowed")
    )
    with sqlite3.connect(path) as db:
        db.execute("UPDATE entries SET granted = 1, hash = ? WHERE seq = 2", (forged,))
    with AuditLog(path) as log:
        assert log.verify().broken_seq == 3


def test_deleted_row_is_detected_at_its_seq(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with AuditLog(path) as log:
        _fill(log, 5)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM entries WHERE seq = 2")
    with AuditLog(path) as log:
        result = log.verify()
    assert not result.ok and result.broken_seq == 2 and "missing" in (result.problem or "")


def test_deleted_last_row_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with AuditLog(path) as log:
        _fill(log, 4)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM entries WHERE seq = 4")
    with AuditLog(path) as log:
        assert log.verify().broken_seq == 4


def test_chain_continues_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with AuditLog(path) as log:
        _fill(log, 3)
        head = log.head()
    with AuditLog(path) as log:
        entry = log.append(door="door-b", badge="0A0B0C0D", granted=True, reason="allowed")
        assert entry.seq == 4 and entry.prev_hash == head[1]
        assert log.verify().ok


def test_acknowledged_entries_are_pruned_and_the_rest_stays_pending(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with AuditLog(path) as log:
        _fill(log, 5)
        assert [e.seq for e in log.pending()] == [1, 2, 3, 4, 5]
        third = log.pending()[2]
        assert log.mark_acknowledged(3, expected_hash=third.hash) == 3
        assert [e.seq for e in log.pending()] == [4, 5]
        assert log.mark_acknowledged(2) == 0  # already acknowledged
        assert log.verify().ok
    with AuditLog(path) as log:  # the anchor survives a restart
        assert log.verify().ok
        assert log.append(door="door-a", badge=None, granted=False, reason="x").seq == 6
        log.mark_acknowledged(6)
        assert log.pending() == [] and log.verify().ok


def test_acknowledgement_that_does_not_match_the_chain_is_refused(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "a.db") as log:
        _fill(log, 3)
        with pytest.raises(AuditChainError, match="beyond the head"):
            log.mark_acknowledged(9)
        with pytest.raises(AuditChainError, match="differs"):
            log.mark_acknowledged(2, expected_hash="0" * 64)
        assert len(log.pending()) == 3
