"""SCIM Groups: members, the role and site they grant, filters, PATCH of members, ETags."""

from __future__ import annotations

from cloud.scim.groups import grants_of
from cloud.settings import CloudSettings
from tests.cloud.conftest import RunningCloud
from tests.helpers import auth_headers

from .helpers import GROUP, RUANG_GROUP, RUANG_USER, add_sites, create, error_of, ops, user


def group(name: str, *members: str, **extra: object) -> dict[str, object]:
    return {"schemas": [GROUP], "displayName": name,
            "members": [{"value": m} for m in members]} | extra  # fmt: skip


async def test_group_members_and_the_role_they_hold(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await add_sites(settings.database_url, "s-a")
    for name in ("ayu", "budi", "citra"):
        await create(cloud.http, user(name, **{RUANG_USER: {"site": "s-a"}}))
    made = await create(
        cloud.http,
        group("Pengelola Gedung", "ayu", "budi", **{RUANG_GROUP: {"role": "facility_manager",
                                                                   "site": "s-a"}}),
        "Groups",
    )  # fmt: skip
    assert [m["value"] for m in made["members"]] == ["ayu", "budi"]
    assert made["members"][0]["$ref"].endswith("/scim/v2/Users/ayu")
    assert made[RUANG_GROUP] == {"role": "facility_manager", "site": "s-a"}
    ayu = (await cloud.http.get("/scim/v2/Users/ayu")).json()
    assert [g["value"] for g in ayu["groups"]] == [made["id"]]
    async with cloud.app.state.engine.connect() as conn:
        assert await grants_of(conn, "ayu") == [("facility_manager", "s-a")]
        assert await grants_of(conn, "citra") == []
    gid = made["id"]
    r = await cloud.http.patch(f"/scim/v2/Groups/{gid}", json=ops(
        {"op": "add", "path": "members", "value": [{"value": "citra"}]},
        {"op": "remove", "path": 'members[value eq "ayu"]'},
    ))  # fmt: skip
    assert r.status_code == 200, r.text
    assert [m["value"] for m in r.json()["members"]] == ["budi", "citra"]
    # Entra ID removes by value instead of by filter.
    r = await cloud.http.patch(f"/scim/v2/Groups/{gid}", json=ops(
        {"op": "Remove", "path": "members", "value": [{"value": "budi"}]}))  # fmt: skip
    assert [m["value"] for m in r.json()["members"]] == ["citra"]
    async with cloud.app.state.engine.connect() as conn:
        assert await grants_of(conn, "ayu") == []
    # A deactivated member holds nothing through the group.
    await cloud.http.patch("/scim/v2/Users/citra", json=ops({"op": "replace", "path": "active",
                                                              "value": False}))  # fmt: skip
    async with cloud.app.state.engine.connect() as conn:
        assert await grants_of(conn, "citra") == []
    audit = (await cloud.http.get("/api/v1/audit", params={"target": f"group:{gid}"})).json()
    assert [e["action"] for e in audit["items"]] == ["scim.group_update"] * 2 + [
        "scim.group_create"
    ]
    assert audit["items"][0]["site_id"] == "s-a"


async def test_group_filters_pages_and_leaves_members_out_when_asked(cloud: RunningCloud) -> None:
    await create(cloud.http, user("ayu"))
    for i in range(3):
        await create(cloud.http, group(f"Tim {i}", *(["ayu"] if i == 1 else []),
                                       externalId=f"g-{i}"), "Groups")  # fmt: skip
    r = await cloud.http.get("/scim/v2/Groups", params={"filter": 'displayName eq "tim 1"'})
    assert [g["displayName"] for g in r.json()["Resources"]] == ["Tim 1"]
    r = await cloud.http.get("/scim/v2/Groups", params={"filter": 'members eq "ayu"'})
    assert [g["displayName"] for g in r.json()["Resources"]] == ["Tim 1"]
    r = await cloud.http.get("/scim/v2/Groups", params={"filter": 'externalId sw "g-"',
                                                        "excludedAttributes": "members",
                                                        "count": 2})  # fmt: skip
    body = r.json()
    assert body["totalResults"] == 3 and len(body["Resources"]) == 2
    assert all("members" not in g and "displayName" in g for g in body["Resources"])
    r = await cloud.http.get("/scim/v2/Groups", params={"attributes": "displayName"})
    shown = [set(g) for g in r.json()["Resources"]]
    assert shown == [{"schemas", "id", "displayName", "meta"}] * 3


async def test_group_writes_are_checked(cloud: RunningCloud, settings: CloudSettings) -> None:
    await add_sites(settings.database_url, "s-a", "s-b")
    await create(cloud.http, user("in-b", **{RUANG_USER: {"site": "s-b"}}))
    made = await create(cloud.http, group("Satu"), "Groups")
    r = await cloud.http.post("/scim/v2/Groups", json=group("SATU"))
    assert r.status_code == 409 and error_of(r)["scimType"] == "uniqueness"
    r = await cloud.http.post("/scim/v2/Groups", json=group("Dua", "nobody"))
    assert r.status_code == 400 and error_of(r)["scimType"] == "invalidValue"
    r = await cloud.http.post(
        "/scim/v2/Groups", json=group("Tiga", **{RUANG_GROUP: {"role": "admin"}})
    )
    assert r.status_code == 400  # an identity system never mints admins
    client_a = auth_headers(settings, "idp-a", ("scim",), ("s-a",))
    r = await cloud.http.post("/scim/v2/Groups", json=group("Empat", "in-b"), headers=client_a)
    assert r.status_code == 400  # a member outside the client's sites is not known to it
    r = await cloud.http.post("/scim/v2/Groups", json=group("Lima"), headers=client_a)
    assert r.status_code == 201 and r.json()[RUANG_GROUP] == {"site": "s-a"}
    assert (
        await cloud.http.get(f"/scim/v2/Groups/{made['id']}", headers=client_a)
    ).status_code == 404
    body = group("Satu lagi")
    r = await cloud.http.put(
        f"/scim/v2/Groups/{made['id']}", json=body, headers={"If-Match": 'W/"x"'}
    )
    assert r.status_code == 412
    r = await cloud.http.put(f"/scim/v2/Groups/{made['id']}", json=body,
                             headers={"If-Match": made["meta"]["version"]})  # fmt: skip
    assert r.status_code == 200 and r.json()["displayName"] == "Satu lagi"
    assert (await cloud.http.delete(f"/scim/v2/Groups/{made['id']}")).status_code == 204
    assert (await cloud.http.get(f"/scim/v2/Groups/{made['id']}")).status_code == 404
