"""The demo's meeting rooms: two rooms booked through the API with working panel URLs; run
twice (a kept demo database) it still succeeds."""

from __future__ import annotations

import csv
from pathlib import Path
from urllib.parse import urlsplit

from cloud.buildings.layout import SAMPLE_LAYOUT
from cloud.settings import CloudSettings
from launch import devservers
from launch.demo_rooms import MEETINGS, set_up_rooms
from tests.cloud.conftest import start_cloud, unique

ROSTER = SAMPLE_LAYOUT.parent / "ikn-people.csv"


async def test_the_demo_books_two_rooms_whose_panels_show_their_meetings(
    database_url: str, mosquitto_server: devservers.Mosquitto, tmp_path: Path
) -> None:
    settings = CloudSettings(
        database_url=database_url,
        mqtt_url=mosquitto_server.url,
        mqtt_client_id=unique("ruang-demo-rooms"),
        telemetry_sqlite_path=tmp_path / "telemetry.sqlite3",
        layout_file=SAMPLE_LAYOUT,
    )
    async with start_cloud(settings) as cloud:
        with ROSTER.open(encoding="utf-8") as f:
            columns = ["id", "kind", "name", "role", "agency"]
            rows = [{k: r[k] for k in columns} for r in csv.DictReader(f) if r["kind"] == "asn"]
        body = ",".join(columns) + "\n" + "".join(",".join(r.values()) + "\n" for r in rows)
        r = await cloud.http.post(
            "/api/v1/people/import", content=body, headers={"content-type": "text/csv"}
        )
        assert r.status_code == 200, r.text
        panels = await set_up_rooms(cloud.http)
        assert set(panels) == {m[0] for m in MEETINGS}
        assert await set_up_rooms(cloud.http) == panels
        running = urlsplit(panels["A1-L1-R1"])
        schedule = await cloud.http.get(f"/api/v1{running.path}?{running.query}", headers={})
        assert schedule.status_code == 200, schedule.text
        now = schedule.json()["now"]
        # Another agency's meeting in a room of no agency's zone: no title on the panel.
        assert now is not None and now["title"] is None
        later = urlsplit(panels["A1-L1-R2"])
        upcoming = (await cloud.http.get(f"/api/v1{later.path}?{later.query}")).json()
        # A PUPR meeting in the PUPR zone's room: its own agency's panel shows the title.
        assert upcoming["next"]["title"] == "Rapat teknis PUPR"
