"""People CSV import (all or nothing), NIP privacy, and the badge lifecycle."""

from __future__ import annotations

import asyncio

from cloud.settings import CloudSettings
from tests.cloud.booking_helpers import ROSTER, seed
from tests.cloud.conftest import RunningCloud

CSV = {"content-type": "text/csv"}


async def test_import_with_bad_rows_is_refused_with_line_numbers(cloud: RunningCloud) -> None:
    bad = (
        "id,kind,name,role,nip\n"
        "p-1,asn,Satu,asn,198703142010122001\n"
        "p-2,alien,Dua,asn,\n"  # line 3: unknown kind
        "p-3,asn,Tiga,asn,12345\n"  # line 4: NIP not 18 digits
        "p-1,asn,Satu lagi,asn,\n"  # line 5: duplicate id
        "p-4,guest,Empat,guest,\n"  # line 6: guest without host
    )
    r = await cloud.http.post("/api/v1/people/import", content=bad, headers=CSV)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["title"] == "People import refused"
    lines = {e["line"]: e["reason"] for e in body["errors"]}
    assert set(lines) == {3, 4, 5, 6}
    assert "kind" in lines[3] and "nip" in lines[4] and "repeats line 2" in lines[5]
    assert "host_person_id" in lines[6]
    # All or nothing: the valid row was not applied either.
    assert (await cloud.http.get("/api/v1/people")).json() == []

    r = await cloud.http.post("/api/v1/people/import", content="id,name\nx,y\n", headers=CSV)
    assert r.status_code == 422 and r.json()["errors"][0]["line"] == 1


async def test_import_upserts_and_lists_never_show_nip(cloud: RunningCloud) -> None:
    r = await cloud.http.post("/api/v1/people/import", content=ROSTER, headers=CSV)
    assert r.json() == {"created": 4, "updated": 0, "badges_issued": 0}
    r = await cloud.http.post("/api/v1/people/import", content=ROSTER, headers=CSV)
    assert r.json() == {"created": 0, "updated": 4, "badges_issued": 0}
    r = await cloud.http.get("/api/v1/people")
    assert [p["id"] for p in r.json()] == ["p-ayu", "p-budi", "p-citra", "p-tamu"]
    assert "198703142010122001" not in r.text and all("nip" not in p for p in r.json())
    r = await cloud.http.get("/api/v1/people", params={"agency": "Otorita IKN"})
    assert [p["id"] for p in r.json()] == ["p-ayu"]
    schema = (await cloud.http.get("/openapi.json")).json()["components"]["schemas"]
    assert "nip" not in schema["PersonPublic"]["properties"]


async def test_badge_uid_cannot_be_active_twice(cloud: RunningCloud) -> None:
    await cloud.http.post("/api/v1/people/import", content=ROSTER, headers=CSV)
    r = await cloud.http.post(
        "/api/v1/badges", json={"kind": "nfc", "uid": "04a1b2c3", "person_id": "p-ayu"}
    )
    assert r.status_code == 201 and r.json()["uid"] == "04A1B2C3"
    first = r.json()
    r = await cloud.http.post(
        "/api/v1/badges", json={"kind": "nfc", "uid": "04A1B2C3", "person_id": "p-budi"}
    )
    assert r.status_code == 409 and r.json()["title"] == "Badge already active"
    # Racing issues of one uid: the partial unique index lets exactly one through.
    racers = await asyncio.gather(
        *[
            cloud.http.post(
                "/api/v1/badges", json={"kind": "ble", "uid": "ble:tag-7", "person_id": p}
            )
            for p in ("p-ayu", "p-budi", "p-citra")
        ]
    )
    assert sorted(r.status_code for r in racers) == [201, 409, 409]

    r = await cloud.http.post(f"/api/v1/badges/{first['id']}/lost")
    assert r.json()["status"] == "lost" and r.json()["revoked_at"]
    r = await cloud.http.post(f"/api/v1/badges/{first['id']}/revoke")
    assert r.status_code == 409
    # The uid is free again once its badge is no longer active.
    r = await cloud.http.post(
        "/api/v1/badges", json={"kind": "nfc", "uid": "04A1B2C3", "person_id": "p-budi"}
    )
    assert r.status_code == 201
    r = await cloud.http.post(
        "/api/v1/badges", json={"kind": "nfc", "uid": "zz", "person_id": "p-budi"}
    )
    assert r.status_code == 422


async def test_replace_revokes_old_and_issues_new(cloud: RunningCloud) -> None:
    await cloud.http.post("/api/v1/people/import", content=ROSTER, headers=CSV)
    old = (
        await cloud.http.post(
            "/api/v1/badges", json={"kind": "nfc", "uid": "04A224E2005C80", "person_id": "p-budi"}
        )
    ).json()
    r = await cloud.http.post(
        f"/api/v1/badges/{old['id']}/replace", json={"kind": "nfc", "uid": "04B0B0B0B0B0B0"}
    )
    assert r.status_code == 201
    body = r.json()
    assert body["old"]["status"] == "replaced" and body["new"]["person_id"] == "p-budi"
    badges = (await cloud.http.get("/api/v1/badges", params={"person": "p-budi"})).json()
    assert [(b["uid"], b["status"]) for b in badges] == [
        ("04A224E2005C80", "replaced"),
        ("04B0B0B0B0B0B0", "active"),
    ]


async def test_allowlist_of_a_node(cloud: RunningCloud, settings: CloudSettings) -> None:
    await seed(cloud, settings)
    for person, uid in (("p-ayu", "04000001"), ("p-budi", "04000002"), ("p-tamu", "04000003")):
        await cloud.http.post(
            "/api/v1/badges", json={"kind": "nfc", "uid": uid, "person_id": person}
        )
    await cloud.http.post("/api/v1/badges/3/revoke")
    r = await cloud.http.get("/api/v1/badges/allowlist", params={"node": "ikn-demo-l1"})
    assert r.status_code == 200
    # Floor 1 has drop-in desks: active badges of ASN staff and valid guests.
    assert [b["uid"] for b in r.json()["badges"]] == ["04000001", "04000002"]
    r = await cloud.http.get("/api/v1/badges/allowlist", params={"node": "nowhere"})
    assert r.status_code == 404


async def test_roster_import_issues_badges_and_refuses_a_uid_active_for_someone_else(
    cloud: RunningCloud,
) -> None:
    roster = (
        "id,kind,name,role,badge_uid\n"
        "p-eka,asn,Eka Putri,asn,04a1b2c3d4\n"
        "p-fajar,asn,Fajar Nugroho,asn,ble:badge-000042\n"
    )
    r = await cloud.http.post(
        "/api/v1/people/import", content=roster, headers={"content-type": "text/csv"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["badges_issued"] == 2
    badges = (await cloud.http.get("/api/v1/badges", params={"person": "p-eka"})).json()
    assert [b["uid"] for b in badges] == ["04A1B2C3D4"]
    clash = "id,kind,name,role,badge_uid\np-gita,asn,Gita,asn,04A1B2C3D4\n"
    r = await cloud.http.post(
        "/api/v1/people/import", content=clash, headers={"content-type": "text/csv"}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["line"] == 2
    people = {p["id"] for p in (await cloud.http.get("/api/v1/people")).json()}
    assert "p-gita" not in people  # all or nothing
