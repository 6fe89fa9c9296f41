"""Backups of the cloud's database and their restore (`ruang db backup` / `ruang db restore`).

PostgreSQL: `pg_dump` in its custom format (compressed, one consistent snapshot
taken while the cloud keeps running) and `pg_restore` into an empty database in
one transaction, so a restore that fails half-way leaves nothing behind. The
connection comes from the cloud's own `RUANG_DATABASE_URL`; its password travels
in the child's environment, never on a command line other users can read.

SQLite: the online backup API, a consistent copy even while the cloud writes; a
restore copies it into a new database file (created 0600: it holds personal data).

A restore refuses a target that already holds tables: restoring over a live
database would mix two histories. After a restore the cloud starts on it as usual
and its start-up migrations bring an older backup's schema to the current one.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from cloud.db.engine import is_sqlite
from cloud.db.pg_direct import connect
from ruang.private_files import create_private_file, sqlite_file

COMMAND_TIMEOUT_S = 3600.0  # a bound for a hung tool, not for a large database


class BackupError(RuntimeError):
    """The backup or restore did not happen; the message says why."""


def _tool(name: str) -> str:
    # Debian's /usr/bin wrappers pick the newest installed server version's tool.
    found = shutil.which(name) or next(
        reversed(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None
    )
    if found is None:
        raise BackupError(f"{name} not found: install postgresql-client")
    return found


def _pg_env(database_url: str) -> dict[str, str]:
    url = make_url(database_url)
    env = dict(os.environ)
    for key, value in (
        ("PGHOST", url.host),
        ("PGPORT", str(url.port) if url.port else None),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
    ):
        if value:
            env[key] = str(value)
    return env


def _run(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        tool = Path(argv[0]).name
        raise BackupError(f"{tool} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


async def _pg_tables(database_url: str) -> int:
    conn = await connect(database_url, "ruang-restore-check")
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
    finally:
        await conn.close()
    return count


def _sqlite_tables(path: Path) -> int:
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with sqlite3.connect(path) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
        ).fetchone()
    return int(count)


def _sqlite_copy(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


async def backup(database_url: str, output: Path) -> None:
    """Writes a consistent backup of the database to `output` (created 0600)."""
    create_private_file(output)
    path = sqlite_file(database_url)
    if path is not None:
        if not path.exists():
            raise BackupError(f"no database at {path}")
        await asyncio.to_thread(_sqlite_copy, path, output)
        return
    argv = [_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={output}"]
    await asyncio.to_thread(_run, argv, _pg_env(database_url))


async def restore(database_url: str, source: Path) -> None:
    """Restores a backup made by `backup` into the (empty) database at `database_url`."""
    if not source.is_file():
        raise BackupError(f"no backup file at {source}")
    path = sqlite_file(database_url)
    if is_sqlite(database_url):
        if path is None:
            raise BackupError("restoring into an in-memory SQLite database keeps nothing")
        if _sqlite_tables(path):
            raise BackupError(f"{path} already holds tables: restore into a new database")
        create_private_file(path)
        await asyncio.to_thread(_sqlite_copy, source, path)
        return
    if await _pg_tables(database_url):
        raise BackupError("the target database already holds tables: restore into a new one")
    argv = [
        _tool("pg_restore"),
        "--no-owner",
        "--exit-on-error",
        "--single-transaction",
        f"--dbname={make_url(database_url).database}",
        str(source),
    ]
    await asyncio.to_thread(_run, argv, _pg_env(database_url))
