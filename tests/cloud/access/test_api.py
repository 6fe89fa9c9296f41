"""Access rights API: the security role of a site manages its doors, groups, grants and
holidays; every change bumps the version and is kept in the history; other roles and
other sites are refused. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cloud.buildings.layout import apply_layout, parse_layout
from tests.cloud.conftest import RunningCloud
from tests.helpers import auth_headers

pytestmark = pytest.mark.servers

ALL_DAY = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "07:00", "end": "19:00"}]


def site(sid: str) -> dict[str, Any]:
    return {"site": {"id": sid, "name": sid}, "buildings": [{"id": f"b-{sid}", "name": "B",
            "floors": [{"id": f"f-{sid}", "level": 1, "name": "L1", "zones": []}]}]}  # fmt: skip


def as_role(cloud: RunningCloud, role: str, *sites: str) -> httpx.AsyncClient:
    headers = auth_headers(cloud.app.state.settings, f"u-{role}", (role,), sites)
    return httpx.AsyncClient(transport=cloud.http._transport, base_url=str(cloud.http.base_url),
                             headers=headers)  # fmt: skip


@pytest.fixture
async def two_sites(cloud: RunningCloud) -> RunningCloud:
    for sid in ("s-a", "s-b"):
        await apply_layout(cloud.app.state.engine, parse_layout(site(sid)))
    return cloud


async def test_security_manages_rights_of_its_site_and_each_change_bumps_the_version(
    two_sites: RunningCloud,
) -> None:
    async with as_role(two_sites, "security", "s-a") as sec:
        v1 = (
            await sec.put(
                "/api/v1/access/doors/A-1",
                json={"site_id": "s-a", "name": "Lobby", "floor_id": "f-s-a"},
            )
        ).json()
        v2 = (
            await sec.put(
                "/api/v1/access/groups/g-1",
                json={"site_id": "s-a", "name": "Staff", "rule": "floor", "value": "f-s-a"},
            )
        ).json()
        r = await sec.put(
            "/api/v1/access/grants", json={"group_id": "g-1", "door_id": "A-1", "schedule": ALL_DAY}
        )
        assert r.status_code == 200, r.text
        v3, grant = r.json()["version"], r.json()["id"]
        assert v1["version"] < v2["version"] < v3
        r = await sec.put(
            "/api/v1/access/holidays", json={"site_id": "s-a", "day": "2026-12-25", "name": "Natal"}
        )
        assert r.status_code == 200, r.text
        assert [d["id"] for d in (await sec.get("/api/v1/access/doors")).json()] == ["A-1"]
        grants = (await sec.get("/api/v1/access/grants")).json()
        assert grants == [{"id": grant, "group_id": "g-1", "door_id": "A-1",
                           "schedule": ALL_DAY, "open_on_holidays": False}]  # fmt: skip
        r = await sec.delete(f"/api/v1/access/grants/{grant}")
        assert r.status_code == 200
        history = (await sec.get("/api/v1/access/changes")).json()
        assert [c["action"] for c in history] == ["door.put", "group.put", "grant.put",
                                                   "holiday.put", "grant.delete"]  # fmt: skip
        assert history[0]["actor"] == "u-security" and history[-1]["data"] is None
        assert (await sec.get("/api/v1/access-log")).status_code == 200
    # Another site's security sees none of it, and cannot touch it.
    async with as_role(two_sites, "security", "s-b") as other:
        assert (await other.get("/api/v1/access/doors")).json() == []
        assert (await other.get("/api/v1/access/changes")).json() == []
        r = await other.put("/api/v1/access/doors/A-1", json={"site_id": "s-b", "name": "Mine"})
        assert r.status_code == 404
        r = await other.put("/api/v1/access/doors/B-1", json={"site_id": "s-a", "name": "X"})
        assert r.status_code == 404
        r = await other.put(
            "/api/v1/access/groups/g-b",
            json={"site_id": "s-b", "name": "B", "rule": "role", "value": "asn"},
        )
        r = await other.put(
            "/api/v1/access/grants", json={"group_id": "g-b", "door_id": "A-1", "schedule": ALL_DAY}
        )
        assert r.status_code == 404  # fmt: skip


@pytest.mark.parametrize("role", ["facility_manager", "technician", "asn"])
async def test_other_roles_may_not_read_or_change_rights_or_the_access_log(
    two_sites: RunningCloud, role: str
) -> None:
    async with as_role(two_sites, role, "s-a") as c:
        assert (await c.get("/api/v1/access-log")).status_code == 403
        assert (await c.get("/api/v1/access/doors")).status_code == 403
        r = await c.put("/api/v1/access/doors/A-9", json={"site_id": "s-a", "name": "X"})
        assert r.status_code == 403


async def test_bad_rights_are_refused_with_a_reason(two_sites: RunningCloud) -> None:
    http = two_sites.http
    r = await http.put("/api/v1/access/doors/A-2", json={"site_id": "s-a", "name": "X",
                                                         "anti_passback": True})  # fmt: skip
    assert r.status_code == 422 and "zone_to" in r.text
    r = await http.put("/api/v1/access/doors/bad id", json={"site_id": "s-a", "name": "X"})
    assert r.status_code == 422
    await http.put("/api/v1/access/doors/A-3", json={"site_id": "s-a", "name": "X"})
    await http.put("/api/v1/access/groups/g-b", json={"site_id": "s-b", "name": "B",
                                                      "rule": "role", "value": "asn"})  # fmt: skip
    r = await http.put(
        "/api/v1/access/grants", json={"group_id": "g-b", "door_id": "A-3", "schedule": ALL_DAY}
    )
    assert r.status_code == 409
    r = await http.put(
        "/api/v1/access/grants",
        json={
            "group_id": "g-b",
            "door_id": "A-3",
            "schedule": [{"days": ["mon"], "start": "25:00", "end": "26:00"}],
        },
    )
    assert r.status_code == 422  # fmt: skip
