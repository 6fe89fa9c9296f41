"""Private files helper: 0600 files, 0700 only for directories it creates, SQLite URL paths."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ruang.private_files import private_dir, sqlite_file, write_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_private_replaces_the_file_0600_and_leaves_existing_dirs_alone(
    tmp_path: Path,
) -> None:
    os.chmod(tmp_path, 0o755)
    old = os.umask(0o000)  # even with no umask at all
    try:
        write_private(tmp_path / "new" / "key.pem", b"one")
        write_private(tmp_path / "new" / "key.pem", b"two")
        private_dir(tmp_path)
    finally:
        os.umask(old)
    assert (tmp_path / "new" / "key.pem").read_bytes() == b"two"
    assert _mode(tmp_path / "new" / "key.pem") == 0o600
    assert _mode(tmp_path / "new") == 0o700 and _mode(tmp_path) == 0o755
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["key.pem"]


def test_sqlite_file_of_a_database_url() -> None:
    assert sqlite_file("sqlite+aiosqlite:///./var/ruang.sqlite3") == Path("var/ruang.sqlite3")
    assert sqlite_file("sqlite:////srv/ruang/db.sqlite3?mode=rwc") == Path("/srv/ruang/db.sqlite3")
    assert sqlite_file("sqlite+aiosqlite:///:memory:") is None
    assert sqlite_file("postgresql+asyncpg://u@127.0.0.1/ruang") is None
