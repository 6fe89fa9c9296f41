"""Badge ids reach the time series only as keyed pseudonyms (docs/privacy.md).

Drives real messages through a real broker into the cloud and reads back what
VictoriaMetrics and the local telemetry file hold: the clear id is nowhere, the
pseudonym is stable per badge, and a rotated key gives new pseudonyms marked with
their key id.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import aiomqtt
import pytest
from pydantic import SecretStr

from cloud.keys import MissingKey, key_problems
from cloud.privacy.pseudonyms import DIGEST_HEX, Pseudonyms
from cloud.settings import CloudSettings
from launch import devservers
from ruang import contract
from tests.cloud.binding_helpers import bind
from tests.cloud.conftest import eventually, publish, start_cloud, unique

SECRET = "9f" * 32


def test_one_badge_one_pseudonym_per_key_and_none_without_the_secret() -> None:
    first = Pseudonyms(SECRET.encode(), "k1")
    again = Pseudonyms(SECRET.encode(), "k1")
    rotated = Pseudonyms(("7a" * 32).encode(), "k2")
    badge = "04a1b2c3d4e5f6"
    assert first.badge(badge) == again.badge(badge)  # stable: counts stay the same
    assert first.badge(badge) != first.badge("04a1b2c3d4e5f7")
    key_id, digest = first.badge(badge).split(".")
    assert key_id == "k1" and len(digest) == DIGEST_HEX and badge not in digest
    # A new key gives new pseudonyms, visibly: the key id says which key made them.
    assert rotated.badge(badge).startswith("k2.") and rotated.badge(badge)[3:] != digest


def test_production_refuses_to_start_without_a_configured_pseudonym_secret(
    tmp_path: Path,
) -> None:
    settings = CloudSettings(environment="production", snapshot_key_path=tmp_path / "k.pem")
    assert any("RUANG_PSEUDONYM_SECRET" in p for p in key_problems(settings))
    with pytest.raises(MissingKey, match="RUANG_PSEUDONYM_SECRET"):
        Pseudonyms.from_settings(settings)


def _vm_export_text(victoria: devservers.VictoriaMetrics, node: str) -> str:
    victoria.force_flush()
    query = urllib.parse.urlencode({"match[]": f'{{node="{node}"}}'})
    with urllib.request.urlopen(f"{victoria.url}/api/v1/export?{query}", timeout=10) as r:
        return str(r.read().decode())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_badge_ids_reach_victoriametrics_only_as_pseudonyms(
    settings: CloudSettings,
    victoria: devservers.VictoriaMetrics,
    publisher: aiomqtt.Client,
    tmp_path: Path,
) -> None:
    node = unique("node")
    tag = unique("tag")
    badge = f"ble:{tag}"
    settings = settings.model_copy(
        update={
            "influx_url": victoria.url,
            "pseudonym_secret": SecretStr(SECRET),
            "snapshot_key_path": tmp_path / "keys" / "snapshot.pem",
        }
    )
    expected = Pseudonyms(SECRET.encode(), "k1").badge(badge)
    async with start_cloud(settings) as cloud:
        await bind(cloud.app.state.engine, node, ["D-1"])
        await publish(
            publisher,
            contract.BadgePresence(
                node=node, badge=badge, zone=f"z-{node}", present=True, confidence=0.9
            ),
        )
        await publish(
            publisher,
            contract.DeviceHealth(
                node=node, device=tag, kind="ble_badge", online=True, battery_pct=64
            ),
        )

        # By kind: the shared broker also hands over other tests' retained births.
        async def both_taken() -> bool:
            accepted = cloud.ingestor.stats.accepted
            return accepted.get("badge_presence", 0) >= 1 and accepted.get("device_health", 0) >= 1

        await eventually(both_taken, within=60)
    # Leaving the app closed the sink, which sent what it still held.
    found = ""

    async def indexed() -> bool:
        nonlocal found
        found = await asyncio.to_thread(_vm_export_text, victoria, node)
        return "device_health_battery_pct" in found

    await eventually(indexed, within=60)
    assert tag not in found
    series = [json.loads(line)["metric"] for line in found.splitlines() if line.strip()]
    assert any(m["__name__"] == "badge_presence_present" for m in series)
    battery = next(m for m in series if m["__name__"] == "device_health_battery_pct")
    assert battery["device"] == expected


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_local_telemetry_file_holds_the_pseudonym_not_the_badge(
    settings: CloudSettings, publisher: aiomqtt.Client, tmp_path: Path
) -> None:
    node = unique("node")
    badge = f"04{uuid.uuid4().hex[:12].upper()}"  # an NFC UID: 7 bytes in hex
    settings = settings.model_copy(
        update={
            "pseudonym_secret": SecretStr(SECRET),
            "pseudonym_key_id": "k7",
            "snapshot_key_path": tmp_path / "keys" / "snapshot.pem",
        }
    )
    async with start_cloud(settings) as cloud:
        await bind(cloud.app.state.engine, node, ["D-1"])
        await publish(
            publisher,
            contract.BadgePresence(
                node=node, badge=badge, zone=f"z-{node}", present=True, confidence=0.5
            ),
        )

        async def taken() -> bool:
            return cloud.ingestor.stats.accepted.get("badge_presence", 0) >= 1

        await eventually(taken, within=60)
    path = settings.telemetry_sqlite_path
    with sqlite3.connect(path) as db:
        lines = [line for (line,) in db.execute("SELECT line FROM points")]
    presence = [line for line in lines if line.startswith("badge_presence,")]
    assert len(presence) == 1
    assert badge not in presence[0]
    pseudonym = Pseudonyms(SECRET.encode(), "k7").badge(badge)
    assert f'badge="{pseudonym}"' in presence[0] and pseudonym.startswith("k7.")
