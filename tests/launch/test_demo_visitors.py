"""The demo's visitors through the API: after the roster import, one guest is checked in with a
temporary card and one is expected; reception's list of today shows both."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cloud.buildings.layout import SAMPLE_LAYOUT
from cloud.settings import CloudSettings
from launch import devservers
from launch.demo import roster_for_today, roster_path
from launch.demo_visitors import GUESTS, SITE, set_up_visitors
from tests.cloud.conftest import start_cloud, unique
from tests.helpers import auth_headers


async def test_the_demo_invites_two_visitors_and_checks_the_arrived_one_in(
    database_url: str, mosquitto_server: devservers.Mosquitto, tmp_path: Path
) -> None:
    settings = CloudSettings(
        database_url=database_url,
        mqtt_url=mosquitto_server.url,
        mqtt_client_id=unique("ruang-demo-visitors"),
        telemetry_sqlite_path=tmp_path / "telemetry.sqlite3",
        layout_file=SAMPLE_LAYOUT,
    )
    async with start_cloud(settings) as cloud:
        roster, _ = roster_for_today(roster_path().read_text(encoding="utf-8"), datetime.now(UTC))
        r = await cloud.http.post(
            "/api/v1/people/import", content=roster.encode(), headers={"content-type": "text/csv"}
        )
        assert r.status_code == 200, r.text
        visits = await set_up_visitors(cloud.http)
        assert [v["status"] for v in visits] == ["checked_in", "invited"]
        assert visits[0]["card_uid"] == GUESTS[0][5]
        desk = auth_headers(settings, "p-reception", ("reception",), (SITE,))
        r = await cloud.http.get("/api/v1/reception/visits", headers=desk)
        assert [v["guest_name"] for v in r.json()] == [g[0] for g in GUESTS]
        host = auth_headers(settings, "p-ayu", ("asn",))
        r = await cloud.http.get("/api/v1/me/notifications", headers=host)
        assert [n["kind"] for n in r.json()["items"]] == ["visitor_arrived"]
