"""The transport API on the running cloud: GTFS upload and download, the schedule's listings,
vehicles by role and site, the stops near a site."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime, timedelta

from cloud.buildings.layout import apply_layout, parse_layout
from cloud.db.engine import make_engine
from cloud.transport.gtfs_export import sample_zip
from tests.cloud.conftest import RunningCloud
from tests.helpers import auth_headers

from .gtfs_helpers import edited, sample_files

ZIP = {"content-type": "application/zip"}


def next_monday() -> date:
    today = date.today()
    return today + timedelta(days=7 - today.weekday())


async def site(cloud: RunningCloud, tag: str) -> None:
    engine = make_engine(cloud.app.state.settings.database_url)
    try:
        await apply_layout(
            engine,
            parse_layout(
                {
                    "site": {"id": f"{tag}-site", "name": tag},
                    "buildings": [{"id": f"{tag}-b", "name": tag, "floors": []}],
                }
            ),
        )
    finally:
        await engine.dispose()


async def test_upload_then_download_the_schedule(cloud: RunningCloud) -> None:
    r = await cloud.http.post("/api/v1/transport/gtfs", content=sample_zip(), headers=ZIP)
    assert r.status_code == 200, r.text
    assert r.json()["rows"]["trips.txt"] == 234
    r = await cloud.http.get("/api/v1/transport/gtfs")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert "stop_times.txt" in names and "shapes.txt" in names


async def test_a_bad_upload_is_a_problem_listing_every_error(cloud: RunningCloud) -> None:
    await cloud.http.post("/api/v1/transport/gtfs", content=sample_zip(), headers=ZIP)
    trips = sample_files()["trips.txt"].replace("K1,WEEKDAY,K1-0-0600", "K9,WEEKDAY,K1-0-0600")
    r = await cloud.http.post(
        "/api/v1/transport/gtfs", content=edited(trips_txt=trips), headers=ZIP
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["title"] == "GTFS import refused"
    assert body["errors"] == [
        {"file": "trips.txt", "line": 2, "field": "route_id", "message": "unknown route 'K9'"}
    ]
    # Nothing changed: the earlier schedule is still there.
    day = next_monday().isoformat()
    assert len((await cloud.http.get(f"/api/v1/transport/trips?date={day}")).json()) == 234
    r = await cloud.http.post("/api/v1/transport/gtfs", content=b"not a zip", headers=ZIP)
    assert r.status_code == 422 and r.json()["errors"][0]["message"].startswith("not a zip")


async def test_only_admins_replace_the_schedule(cloud: RunningCloud) -> None:
    settings = cloud.app.state.settings
    fm = auth_headers(settings, "fm", ("facility_manager",), ("s-site",))
    r = await cloud.http.post("/api/v1/transport/gtfs", content=sample_zip(), headers={**ZIP, **fm})
    assert r.status_code == 403
    asn = auth_headers(settings, "asn-1", ("asn",))
    assert (await cloud.http.get("/api/v1/transport/gtfs", headers=asn)).status_code == 200
    assert (
        await cloud.http.get("/api/v1/transport/stops", headers={"Authorization": ""})
    ).status_code == 401


async def test_listings_of_stops_routes_shapes_and_trips(cloud: RunningCloud) -> None:
    await cloud.http.post("/api/v1/transport/gtfs", content=sample_zip(), headers=ZIP)
    monday = next_monday()
    stops = (await cloud.http.get("/api/v1/transport/stops", params={"route": "K3"})).json()
    assert {s["stop_id"] for s in stops} == {"HT-TIMUR", "OTORITA", "KIPP-SETNEG", "KIPP-TERM"}
    routes = (await cloud.http.get("/api/v1/transport/routes")).json()
    assert [r["route_id"] for r in routes] == ["K1", "K2", "K3"]
    shapes = (await cloud.http.get("/api/v1/transport/shapes", params={"route": "K2"})).json()
    assert {s["shape_id"] for s in shapes} == {"K2-0", "K2-1"}
    trips = (
        await cloud.http.get(
            "/api/v1/transport/trips",
            params={"date": monday.isoformat(), "route": "K2", "stop": "HB-BARAT-2"},
        )
    ).json()
    assert len(trips) == 78 and trips[0]["trip_id"] == "K2-0-0600"
    start = datetime.fromisoformat(trips[0]["start"])
    assert start.utcoffset() == timedelta(hours=8) and start.hour == 6
    sunday = (monday - timedelta(days=1)).isoformat()
    assert (await cloud.http.get(f"/api/v1/transport/trips?date={sunday}")).json() == []
    r = await cloud.http.get(
        "/api/v1/transport/trips/K2-0-0600", params={"date": monday.isoformat()}
    )
    plan = r.json()
    assert [s["stop_id"] for s in plan["stops"]][-1] == "KIPP-TERM"
    assert plan["length_m"] > 1000 and plan["shape_id"] == "K2-0"
    r = await cloud.http.get("/api/v1/transport/trips/K2-0-0600", params={"date": sunday})
    assert r.status_code == 404


async def test_vehicles_by_role_and_site(cloud: RunningCloud) -> None:
    await site(cloud, "va")
    await site(cloud, "vb")
    settings = cloud.app.state.settings
    fm_a = auth_headers(settings, "fm-a", ("facility_manager",), ("va-site",))
    tech_a = auth_headers(settings, "tech-a", ("technician",), ("va-site",))
    fm_b = auth_headers(settings, "fm-b", ("facility_manager",), ("vb-site",))
    car = {
        "id": "car-a1", "kind": "poolcar", "label": "Mobil Dinas 1", "seats": 4,
        "plate": "KT 1001 IKN", "site_id": "va-site", "node_id": "car-node-a1",
    }  # fmt: skip
    r = await cloud.http.post("/api/v1/transport/vehicles", json=car, headers=fm_a)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["capacity"] == 4 and created["state"] == "at_depot"
    # Another site's manager: that site is not theirs (404), a technician may not create.
    other = {**car, "id": "car-a2", "node_id": None}
    assert (
        await cloud.http.post("/api/v1/transport/vehicles", json=other, headers=fm_b)
    ).status_code == 404
    assert (
        await cloud.http.post("/api/v1/transport/vehicles", json=other, headers=tech_a)
    ).status_code == 403
    # A pool car without a plate, a second vehicle on the same node.
    bad = {**other, "plate": None}
    assert (await cloud.http.post("/api/v1/transport/vehicles", json=bad)).status_code == 422
    taken = {**other, "node_id": "car-node-a1"}
    assert (await cloud.http.post("/api/v1/transport/vehicles", json=taken)).status_code == 409
    shuttle = {"id": "bus-x", "kind": "shuttle", "label": "Bus X", "seats": 20, "capacity": 30,
               "wheelchair_accessible": True}  # fmt: skip
    assert (await cloud.http.post("/api/v1/transport/vehicles", json=shuttle)).status_code == 201
    # A shuttle with no home site is for admins only.
    assert (
        await cloud.http.post(
            "/api/v1/transport/vehicles", json={**shuttle, "id": "bus-y"}, headers=fm_a
        )
    ).status_code == 403
    listed = (await cloud.http.get("/api/v1/transport/vehicles", headers=tech_a)).json()
    assert [v["id"] for v in listed] == ["car-a1"]
    assert (await cloud.http.get("/api/v1/transport/vehicles", headers=fm_b)).json() == []
    everyone = (await cloud.http.get("/api/v1/transport/vehicles?kind=shuttle")).json()
    assert [v["id"] for v in everyone] == ["bus-x"]
    assert (
        await cloud.http.get("/api/v1/transport/vehicles/car-a1", headers=fm_b)
    ).status_code == 404
    # State changes move state_changed_at; other edits do not.
    r = await cloud.http.patch(
        "/api/v1/transport/vehicles/car-a1", json={"state": "in_service"}, headers=fm_a
    )
    assert r.status_code == 200 and r.json()["state"] == "in_service"
    moved_at = r.json()["state_changed_at"]
    assert moved_at > created["state_changed_at"] or moved_at == created["state_changed_at"]
    r = await cloud.http.patch("/api/v1/transport/vehicles/car-a1", json={"label": "Mobil 1"})
    assert r.json()["state_changed_at"] == moved_at and r.json()["label"] == "Mobil 1"
    r = await cloud.http.patch(
        "/api/v1/transport/vehicles/car-a1", json={"state": "off_duty"}, headers=fm_b
    )
    assert r.status_code == 404
    r = await cloud.http.patch("/api/v1/transport/vehicles/car-a1", json={"capacity": 2})
    assert r.status_code == 422


async def test_stops_near_a_site(cloud: RunningCloud) -> None:
    await site(cloud, "sa")
    await cloud.http.post("/api/v1/transport/gtfs", content=sample_zip(), headers=ZIP)
    body = [{"stop_id": "KIPP-KEMENKO", "walk_m": 300}, {"stop_id": "KIPP-TERM", "walk_m": 120}]
    r = await cloud.http.put("/api/v1/transport/sites/sa-site/stops", json=body)
    assert r.status_code == 200, r.text
    assert [s["stop_id"] for s in r.json()] == ["KIPP-TERM", "KIPP-KEMENKO"]
    r = await cloud.http.put("/api/v1/transport/sites/sa-site/stops", json=[{"stop_id": "NOWHERE"}])
    assert r.status_code == 422 and r.json()["stops"] == ["NOWHERE"]
    asn = auth_headers(cloud.app.state.settings, "asn-2", ("asn",))
    got = (await cloud.http.get("/api/v1/transport/sites/sa-site/stops", headers=asn)).json()
    assert [(s["stop_id"], s["walk_m"]) for s in got] == [("KIPP-TERM", 120), ("KIPP-KEMENKO", 300)]
