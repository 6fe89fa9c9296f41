"""The demo's door set-up through the API: the lobby door bound to the demo node, Otorita IKN's
group granted it every day; run twice (a kept demo database) it still succeeds and bumps the
rights' version. The door opening and refusing at the edge is pinned in tests/e2e/test_doors.py."""

from __future__ import annotations

from pathlib import Path

from cloud.buildings.layout import SAMPLE_LAYOUT
from cloud.settings import CloudSettings
from launch import devservers
from launch.demo import DEMO_NODE
from launch.demo_doors import DEMO_DOOR, GROUP, set_up_doors
from tests.cloud.conftest import start_cloud, unique


async def test_the_demo_sets_up_the_lobby_door_and_its_grant(
    database_url: str, mosquitto_server: devservers.Mosquitto, tmp_path: Path
) -> None:
    settings = CloudSettings(
        database_url=database_url,
        mqtt_url=mosquitto_server.url,
        mqtt_client_id=unique("ruang-demo-doors"),
        telemetry_sqlite_path=tmp_path / "telemetry.sqlite3",
        layout_file=SAMPLE_LAYOUT,
    )
    async with start_cloud(settings) as cloud:
        first = await set_up_doors(cloud.http, DEMO_NODE)
        again = await set_up_doors(cloud.http, DEMO_NODE)
        assert again > first
        doors = (await cloud.http.get("/api/v1/access/doors")).json()
        assert [(d["id"], d["nodes"]) for d in doors] == [(DEMO_DOOR, [DEMO_NODE])]
        grants = (await cloud.http.get("/api/v1/access/grants")).json()
        assert [(g["group_id"], g["door_id"]) for g in grants] == [(GROUP, DEMO_DOOR)]
