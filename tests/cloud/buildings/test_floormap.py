"""The live floor map: each state, names for managers only, filters, tree, timeline, 500 desks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, event, insert

from cloud.buildings import floormap
from cloud.buildings.layout import apply_layout, parse_layout
from cloud.db.models import PresenceChange
from cloud.people.auth import Principal
from cloud.settings import CloudSettings
from tests.cloud.booking_helpers import seed
from tests.cloud.conftest import RunningCloud
from tests.cloud.map_helpers import as_role, book_now, seed_states, set_desk

PRESENCE = cast(Table, PresenceChange.__table__)


def _by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["id"]: d for d in body["desks"]}


async def test_map_shows_each_state_with_counts(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    await seed_states(cloud.http, cloud.app.state.engine)

    r = await cloud.http.get("/api/v1/floors/A1-L1/map")
    assert r.status_code == 200, r.text
    body = r.json()
    desks = _by_id(body)
    assert len(desks) == 24
    assert {
        k: desks[k]["state"]
        for k in ("L1-D01", "L1-D02", "L1-D03", "L1-D04", "L1-D05", "L1-D06", "L1-D24")
    } == {
        "L1-D01": "booked",
        "L1-D02": "checked_in",
        "L1-D03": "free",
        "L1-D04": "away",
        "L1-D05": "occupied",
        "L1-D06": "unavailable",
        "L1-D24": "unavailable",
    }
    assert body["counts"]["floor"] == {
        "free": 18,
        "booked": 1,
        "checked_in": 1,
        "occupied": 1,
        "away": 1,
        "unavailable": 2,
    }
    assert body["counts"]["zones"]["A1-L1-Z1"] == {
        "free": 1,
        "booked": 1,
        "checked_in": 1,
        "occupied": 1,
        "away": 1,
        "unavailable": 1,
    }
    # Admin sees who holds a desk; nobody's name on a desk merely occupied.
    assert desks["L1-D01"]["occupant"] == "Citra Dewi"
    assert desks["L1-D02"]["occupant"] == "Tamu Satu"
    assert desks["L1-D04"]["occupant"] == "Budi Santoso"
    assert desks["L1-D05"]["occupant"] is None
    d01 = desks["L1-D01"]
    assert set(d01) == {
        "id",
        "label",
        "x",
        "y",
        "w",
        "h",
        "zone",
        "mode",
        "features",
        "state",
        "occupant",
    }
    assert (d01["x"], d01["y"], d01["zone"], d01["mode"]) == (2.0, 2.0, "A1-L1-Z1", "reservable")
    assert body["floor"] == {
        "id": "A1-L1",
        "name": "Lantai 1",
        "level": 1,
        "building_id": "A1",
        "site_id": "ikn-kipp",
        "width": 18.0,
        "height": 12.0,
        "outline": [[0, 0], [18, 0], [18, 12], [0, 12]],
    }
    rooms = {room["id"]: room for room in body["rooms"]}
    assert rooms["A1-L1-R1"] == {
        "id": "A1-L1-R1",
        "name": "Ruang Rapat 1.1",
        "capacity": 8,
        "zone": "A1-L1-Z1",
        "state": None,
        "booked": False,
        "in_use_not_booked": False,
        "x": 2.0,
        "y": 9.8,
        "w": 5.0,
        "h": 2.0,
    }


async def test_names_only_for_managers_of_the_site(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    await seed_states(cloud.http, cloud.app.state.engine)
    url = "/api/v1/floors/A1-L1/map"

    manager = await cloud.http.get(
        url, headers=as_role(settings, "facility_manager", sites=("ikn-kipp",))
    )
    assert _by_id(manager.json())["L1-D02"]["occupant"] == "Tamu Satu"
    r = await cloud.http.get(url, headers=as_role(settings, "technician", sites=("ikn-kipp",)))
    assert r.status_code == 200, r.text
    assert all(d["occupant"] is None for d in r.json()["desks"])
    assert "Tamu" not in r.text and "Citra" not in r.text and "p-tamu" not in r.text
    assert _by_id(r.json())["L1-D02"]["state"] == "checked_in"
    # Another site's manager does not see the floor at all (cloud/people/access.py).
    elsewhere = as_role(settings, "facility_manager", sites=("elsewhere",))
    r = await cloud.http.get(url, headers=elsewhere)
    assert r.status_code == 404 and "Tamu" not in r.text
    for role in ("asn", "guest"):
        r = await cloud.http.get(url, headers=as_role(settings, role, subject="p-ayu"))
        assert r.status_code == 403
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_filters_tree_and_unknown_floor(cloud: RunningCloud, settings: CloudSettings) -> None:
    await seed(cloud, settings)
    r = await cloud.http.get("/api/v1/floors/A1-L1/map", params={"zone": "A1-L1-Z4"})
    assert {d["zone"] for d in r.json()["desks"]} == {"A1-L1-Z4"}
    assert [z["id"] for z in r.json()["zones"]] == ["A1-L1-Z4"]
    assert r.json()["rooms"] == []
    r = await cloud.http.get("/api/v1/floors/A1-L1/map", params={"agency": "Otorita IKN"})
    assert {d["id"] for d in r.json()["desks"]} == {f"L1-D{i}" for i in range(13, 19)}
    assert r.json()["counts"]["floor"]["free"] == 6

    r = await cloud.http.get("/api/v1/floors/nope/map")
    assert r.status_code == 404 and r.json()["title"] == "Floor not found"

    tree = await cloud.http.get(
        "/api/v1/sites/tree", headers=as_role(settings, "asn", subject="p-ayu")
    )
    assert tree.status_code == 200
    (site,) = tree.json()["sites"]
    assert (site["id"], site["timezone"]) == ("ikn-kipp", "Asia/Makassar")
    (building,) = site["buildings"]
    assert [f["id"] for f in building["floors"]] == ["A1-L1", "A1-L2", "A1-L3"]
    floor = building["floors"][0]
    assert (floor["width"], floor["height"], floor["level"]) == (18.0, 12.0, 1)
    assert floor["zones"][1] == {
        "id": "A1-L1-Z2",
        "name": "Kementerian PUPR",
        "reserved_for_agency": "Kementerian PUPR",
    }
    assert (await cloud.http.get("/api/v1/sites/tree", headers={})).status_code in (200, 401)


async def test_desk_timeline_in_order_names_hidden_for_technicians(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    engine = cloud.app.state.engine
    booking = await book_now(cloud.http, "L1-D07", "p-budi")
    sensed = datetime.now(UTC)
    async with engine.begin() as conn:
        # The second row repeats the value (as backlog presence may): shown once.
        await conn.execute(
            insert(PRESENCE),
            [
                {"desk_id": "L1-D07", "present": True, "ts": sensed},
                {"desk_id": "L1-D07", "present": True, "ts": sensed + timedelta(milliseconds=5)},
            ],
        )
    keys = cloud.app.state.checkin_keys
    r = await cloud.http.post(
        "/api/v1/desks/L1-D07/checkin",
        json={"key": keys.key("L1-D07")},
        headers=as_role(settings, "asn", subject="p-budi"),
    )
    assert r.status_code == 200, r.text

    r = await cloud.http.get("/api/v1/desks/L1-D07/timeline")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["desk_id"] == "L1-D07" and body["timezone"] == "Asia/Makassar"
    kinds = [e["kind"] for e in body["entries"]]
    assert kinds[:3] == ["booked", "present", "checked_in"], kinds
    times = [e["at"] for e in body["entries"]]
    assert [datetime.fromisoformat(t) for t in times] == sorted(
        datetime.fromisoformat(t) for t in times
    )
    assert body["entries"][0]["person"] == "Budi Santoso"
    assert body["entries"][0]["booking_id"] == booking["id"]

    tech = await cloud.http.get(
        "/api/v1/desks/L1-D07/timeline",
        headers=as_role(settings, "technician", sites=("ikn-kipp",)),
    )
    assert tech.status_code == 200
    assert all(e["person"] is None for e in tech.json()["entries"])
    assert "Budi" not in tech.text
    assert (
        await cloud.http.get(
            "/api/v1/desks/L1-D07/timeline", headers=as_role(settings, "asn", subject="p-budi")
        )
    ).status_code == 403
    assert (await cloud.http.get("/api/v1/desks/nope/timeline")).status_code == 404


def _big_layout(desks: int) -> dict[str, Any]:
    per_zone = desks // 10
    return {
        "site": {"id": "big-site", "name": "Big"},
        "buildings": [
            {
                "id": "B",
                "name": "Big building",
                "floors": [
                    {
                        "id": "B-L1",
                        "level": 1,
                        "name": "Open floor",
                        "node": "big-node",
                        "geometry": {"width_m": 100, "height_m": 60},
                        "zones": [
                            {
                                "id": f"B-Z{z}",
                                "name": f"Zone {z}",
                                "desks": [
                                    {"id": f"B-D{z * per_zone + i:03d}", "x": i * 2.0, "y": z * 5.0}
                                    for i in range(per_zone)
                                ],
                            }
                            for z in range(10)
                        ],
                    }
                ],
            }
        ],
    }


async def test_a_500_desk_floor_in_a_few_queries(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    engine = cloud.app.state.engine
    await apply_layout(engine, parse_layout(_big_layout(500)))
    for i, person in enumerate(("p-ayu", "p-budi", "p-citra")):
        await book_now(cloud.http, f"B-D{i * 100:03d}", person)
    await set_desk(engine, "B-D499", present=True)

    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    admin = Principal(subject="test-admin", roles=frozenset({"admin"}))
    async with engine.connect() as conn:
        # On this connection only: the app's background jobs query meanwhile.
        event.listen(conn.sync_connection, "before_cursor_execute", count)
        result = await floormap.floor_map(conn, "B-L1", viewer=admin)
        event.remove(conn.sync_connection, "before_cursor_execute", count)
    assert len(result.desks) == 500
    assert len(statements) <= 5, statements
    assert result.counts.floor.booked == 3 and result.counts.floor.occupied == 1
    assert result.counts.floor.free == 496
    assert {d.occupant for d in result.desks if d.state == "booked"} == {
        "Ayu Lestari",
        "Budi Santoso",
        "Citra Dewi",
    }

    r = await cloud.http.get("/api/v1/floors/B-L1/map")
    assert r.status_code == 200 and len(r.json()["desks"]) == 500
