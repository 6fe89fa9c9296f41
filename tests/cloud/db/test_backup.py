"""`ruang db backup` and `ruang db restore` as an operator runs them: a backup of a cloud
in use, restored into a new database, serves the same bookings and takes new ones."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

import pytest

from cloud.settings import CloudSettings
from launch import devservers
from tests.cloud.booking_helpers import booking, seed, slot
from tests.cloud.conftest import RunningCloud, start_cloud

RUANG = str(Path(sys.executable).with_name("ruang"))
LABELS = {"desk_label", "floor_name", "zone_name"}


def _without_labels(booking: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in booking.items() if k not in LABELS}


async def _ruang(database_url: str, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        RUANG, "db", *args,
        env={**os.environ, "RUANG_DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=300)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def _new_database(settings: CloudSettings, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if settings.database_url.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{tmp_path}/restored.sqlite3"
    pg: devservers.Postgres = request.getfixturevalue("pg_server")
    return pg.create_database(f"ruang_restored_{os.getpid()}_{tmp_path.name[-12:]}".lower())


async def test_a_restored_backup_serves_the_same_bookings_and_takes_new_ones(
    cloud: RunningCloud,
    settings: CloudSettings,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    await seed(cloud, settings)
    made = []
    for i, (desk, person) in enumerate((("L1-D01", "p-ayu"), ("L1-D02", "p-budi"))):
        r = await cloud.http.post("/api/v1/bookings", json=booking(desk, person, slot(days=2 + i)))
        assert r.status_code == 201, r.text
        made.append(r.json())

    dump = tmp_path / "backups" / "ruang.dump"
    code, out = await _ruang(settings.database_url, "backup", "--output", str(dump))
    assert code == 0, out
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600  # it holds personal data
    assert dump.stat().st_size > 0

    target = _new_database(settings, request, tmp_path)
    code, out = await _ruang(target, "restore", str(dump))
    assert code == 0, out
    # A second restore would mix two histories: refused, with the reason.
    code, out = await _ruang(target, "restore", str(dump))
    assert code == 2 and "already holds tables" in out, out

    restored = settings.model_copy(
        update={"database_url": target, "mqtt_client_id": settings.mqtt_client_id + "-restored"}
    )
    async with start_cloud(restored) as again:
        r = await again.http.get("/api/v1/bookings", params={"person": "p-ayu"})
        assert r.status_code == 200, r.text
        assert [b["id"] for b in r.json()] == [made[0]["id"]]
        (got,) = (await again.http.get("/api/v1/bookings", params={"person": "p-budi"})).json()
        # The listing adds the desk's labels; the booking itself is the one made.
        assert _without_labels(got) == _without_labels(made[1])
        # The id sequences came back too: a new booking gets a new id, not a duplicate key.
        r = await again.http.post(
            "/api/v1/bookings", json=booking("L1-D03", "p-citra", slot(days=4))
        )
        assert r.status_code == 201, r.text
        assert r.json()["id"] not in {b["id"] for b in made}


async def test_a_missing_backup_file_is_refused_with_the_reason(
    settings: CloudSettings, tmp_path: Path
) -> None:
    code, out = await _ruang(settings.database_url, "restore", str(tmp_path / "nothing.dump"))
    assert code == 2 and "no backup file" in out, out
