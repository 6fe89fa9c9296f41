"""Files only Ruang's own user may read: databases with names and NIPs, keys and secrets.

Created with their final mode from the first byte (never written world-readable
and then tightened), and directories Ruang creates are 0700. SQLite gives its
-wal/-shm/-journal files the mode of the database file, so creating the
database 0600 before SQLite opens it covers those too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> None:
    """`mkdir -p path`, each directory it creates 0700; existing ones are left as they are."""
    missing: list[Path] = []
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=DIR_MODE)
            # mkdir's mode is filtered by the umask; say exactly what we mean.
            os.chmod(directory, DIR_MODE)


def create_private_file(path: Path) -> None:
    """Creates `path` empty and 0600 unless it exists (then it is left as it is)."""
    path = Path(path)
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))


def write_private(path: Path, data: bytes) -> None:
    """Replaces `path` atomically with `data`; the file is 0600 before anything is written."""
    path = Path(path)
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite URL (`sqlite[+driver]:///path`), None for memory or another database."""
    if not database_url.startswith("sqlite"):
        return None
    _, sep, rest = database_url.partition(":///")
    path = rest.split("?", 1)[0]
    if not sep or not path or path == ":memory:":
        return None
    return Path(path)
