"""The edge's outbox (badge ids, presence) and door audit log are readable by its user only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from edge.devices.audit_log import AuditLog
from edge.outbox import FILE_NAME, Outbox


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_outbox_and_audit_log_files_are_0600_in_a_0700_state_dir(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        state = tmp_path / "var" / "lib" / "ruang"
        box = Outbox(state / FILE_NAME)
        box.close()
        audit = AuditLog(state / "door_audit.sqlite3")
        audit.close()
    finally:
        os.umask(old)
    files = sorted(p.name for p in state.iterdir())
    assert {FILE_NAME, "door_audit.sqlite3"} <= set(files)
    assert {name: oct(_mode(state / name)) for name in files} == {
        name: oct(0o600) for name in files
    }
    for directory in (state, state.parent, state.parent.parent):
        assert _mode(directory) == 0o700, directory
