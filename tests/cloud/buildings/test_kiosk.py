"""The lobby kiosk's public availability: counts per floor, and nothing about any person."""

from __future__ import annotations

import httpx

from cloud.settings import CloudSettings
from tests.cloud.booking_helpers import seed
from tests.cloud.conftest import RunningCloud
from tests.cloud.map_helpers import seed_states

ROSTER_SECRETS = (
    "p-ayu",
    "p-budi",
    "p-citra",
    "p-tamu",
    "Ayu",
    "Budi",
    "Citra",
    "Tamu",
    "198703142010122001",
    "199001012015031002",
    "ayu@example.go.id",
    "G-0001",
)
BADGES = ("04A1B2C3D4E5F6", "ble:kiosk-test-badge")


async def test_public_availability_counts_without_personal_data(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    for uid, kind, person in ((BADGES[0], "nfc", "p-ayu"), (BADGES[1], "ble", "p-budi")):
        r = await cloud.http.post(
            "/api/v1/badges", json={"kind": kind, "uid": uid, "person_id": person}
        )
        assert r.status_code == 201, r.text
    await seed_states(cloud.http, cloud.app.state.engine)

    transport = httpx.ASGITransport(app=cloud.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cloud") as anonymous:
        r = await anonymous.get("/api/v1/public/availability", params={"site": "ikn-kipp"})
        assert r.status_code == 200, r.text
        everything = await anonymous.get("/api/v1/public/availability")
        unknown = await anonymous.get("/api/v1/public/availability", params={"site": "nope"})
    body = r.json()
    assert set(body) == {
        "generated_at",
        "site",
        "timezone",
        "buildings",
        "shuttles",
        "shuttle_alerts",
    }
    # No transport schedule in this cloud: no departures (tests/dashboards/test_kiosk_departures.py
    # has a building with shuttles).
    assert body["shuttles"] == [] and body["shuttle_alerts"] == [] and body["site"] == "ikn-kipp"
    assert body["timezone"] == "Asia/Makassar"  # the lobby clock shows WITA
    (building,) = body["buildings"]
    assert building["id"] == "A1"
    l1, l2, l3 = building["floors"]
    assert l1 == {
        "id": "A1-L1",
        "name": "Lantai 1",
        "level": 1,
        "total": 24,
        "free": 18,
        "booked": 1,
        "checked_in": 2,
        "occupied": 1,
        "unavailable": 2,
    }
    assert (l2["total"], l2["free"], l2["unavailable"]) == (24, 23, 1)
    assert l3["id"] == "A1-L3"
    for text in (r.text, everything.text):
        for secret in (*ROSTER_SECRETS, *BADGES, BADGES[1].removeprefix("ble:")):
            assert secret.lower() not in text.lower(), secret
    assert everything.json()["buildings"] == body["buildings"]
    assert unknown.status_code == 404
