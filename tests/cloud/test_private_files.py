"""Databases (names, NIPs) and keys the cloud creates are readable by its own user only."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.settings import CloudSettings

from .conftest import start_cloud


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The common 022: what a service gets unless its unit file says otherwise."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_cloud_creates_its_database_keys_and_secrets_0600_in_a_0700_dir(
    settings: CloudSettings, tmp_path: Path, permissive_umask: None
) -> None:
    var = tmp_path / "srv" / "var"
    url = settings.database_url
    if url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{var}/ruang.sqlite3"
    private = CloudSettings(
        **{
            **settings.model_dump(),
            "database_url": url,
            "telemetry_sqlite_path": var / "telemetry.sqlite3",
            "auth_dev_key_path": var / "dev-signing-key.pem",
            "snapshot_key_path": var / "snapshot-signing-key.pem",
        }
    )
    async with start_cloud(private) as cloud:
        assert (await cloud.http.get("/api/v1/desks")).status_code == 200
        created = sorted(p.name for p in var.iterdir())
        for name in created:
            assert _mode(var / name) == 0o600, (name, oct(_mode(var / name)))
    expected = {
        "dev-signing-key.pem",
        "snapshot-signing-key.pem",
        "checkin-qr-secret",
        "telemetry.sqlite3",
    }
    if url.startswith("sqlite"):
        expected.add("ruang.sqlite3")
    assert expected <= set(created)
    assert _mode(var) == 0o700 and _mode(var.parent) == 0o700
