"""A job's failed pass: a locked SQLite database is one warning line, a bug keeps its traceback."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from cloud.db.job_errors import is_transient, log_failed_pass


def _locked_write_error(tmp_path: Path) -> BaseException:
    db = tmp_path / "busy.sqlite3"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    engine = create_engine(f"sqlite:///{db}", connect_args={"timeout": 0})
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
    except Exception as exc:  # the error the jobs meet
        return exc
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        engine.dispose()
    raise AssertionError("the write was not refused")


def test_a_locked_database_is_one_warning_line_without_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    exc = _locked_write_error(tmp_path)
    assert is_transient(exc)
    log = logging.getLogger("tests.jobs")
    with caplog.at_level(logging.WARNING, logger="tests.jobs"):
        log_failed_pass(log, "purge failed", exc)
    [record] = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "database is locked" in record.getMessage()


def test_a_bug_is_logged_as_an_error_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    try:
        {}["missing"]
    except KeyError as exc:
        assert not is_transient(exc)
        with caplog.at_level(logging.WARNING, logger="tests.jobs"):
            log_failed_pass(logging.getLogger("tests.jobs"), "pass failed", exc)
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None
