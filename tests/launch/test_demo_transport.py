"""The demo's transport set-up through the API: the sample schedule, the vehicles bound to their
nodes, the kiosk's stops; run twice (a kept demo database) it still succeeds."""

from __future__ import annotations

from pathlib import Path

from cloud.buildings.layout import SAMPLE_LAYOUT
from cloud.settings import CloudSettings
from launch import devservers
from launch.demo_transport import DEMO_SITE, POOL_CARS, SHUTTLES, node_of, set_up_transport
from tests.cloud.conftest import start_cloud, unique


async def test_the_demo_loads_the_schedule_vehicles_and_the_sites_stops(
    database_url: str, mosquitto_server: devservers.Mosquitto, tmp_path: Path
) -> None:
    settings = CloudSettings(
        database_url=database_url,
        mqtt_url=mosquitto_server.url,
        mqtt_client_id=unique("ruang-demo-transport"),
        telemetry_sqlite_path=tmp_path / "telemetry.sqlite3",
        layout_file=SAMPLE_LAYOUT,
    )
    async with start_cloud(settings) as cloud:
        rows = await set_up_transport(cloud.http)
        assert rows["routes.txt"] == 3 and rows["trips.txt"] == 234
        again = await set_up_transport(cloud.http)
        assert again == rows
        vehicles = (await cloud.http.get("/api/v1/transport/vehicles")).json()
        assert {v["id"]: v["node_id"] for v in vehicles} == {
            vid: node_of(vid) for vid in [s[0] for s in SHUTTLES] + [c[0] for c in POOL_CARS]
        }
        assert {v["kind"] for v in vehicles} == {"shuttle", "poolcar"}
        stops = (await cloud.http.get(f"/api/v1/transport/sites/{DEMO_SITE}/stops")).json()
        assert stops[0]["stop_id"] == "KIPP-TERM"
