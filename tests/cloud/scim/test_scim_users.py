"""SCIM Users over people: create, read, filter, page, replace, patch, deactivate, delete,
ETags and SCIM errors, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from cloud.settings import CloudSettings
from tests.cloud.conftest import RunningCloud
from tests.helpers import auth_headers

from .helpers import ENTERPRISE, RUANG_USER, USER, add_sites, create, error_of, ops, user

CSV = {"content-type": "text/csv"}


async def test_created_user_reads_back_with_location_etag_and_scim_type(
    cloud: RunningCloud,
) -> None:
    r = await cloud.http.post("/scim/v2/Users", json=user("budi.santoso", externalId="aad-1"))
    assert r.status_code == 201
    assert r.headers["content-type"].startswith("application/scim+json")
    made = r.json()
    assert made["id"] == "budi.santoso" and made["userName"] == "budi.santoso"
    assert made["active"] is True and made["externalId"] == "aad-1"
    assert made["name"] == {"formatted": "Budi Santoso", "givenName": "Budi",
                            "familyName": "Santoso"}  # fmt: skip
    assert made[ENTERPRISE] == {"organization": "Kemenkeu", "department": "DJP"}
    assert r.headers["location"] == made["meta"]["location"]
    assert made["meta"]["location"].endswith("/scim/v2/Users/budi.santoso")
    assert r.headers["etag"] == made["meta"]["version"]
    got = await cloud.http.get("/scim/v2/Users/budi.santoso")
    assert got.status_code == 200 and got.json() == made
    # The person is one of the roster: the people API lists them with their agency and unit.
    people = (await cloud.http.get("/api/v1/people")).json()
    assert [(p["id"], p["agency"], p["unit"], p["active"]) for p in people] == [
        ("budi.santoso", "Kemenkeu", "DJP", True)
    ]


async def test_user_name_is_unique_without_case_and_a_roster_person_is_found_by_id(
    cloud: RunningCloud,
) -> None:
    await create(cloud.http, user("Budi"))
    r = await cloud.http.post("/scim/v2/Users", json=user("bUDI"))
    assert r.status_code == 409 and error_of(r)["scimType"] == "uniqueness"
    # A roster person (CSV import) answers to their id as userName, so an identity system
    # adopting the roster finds them instead of making a second person.
    roster = "id,kind,name,role\np-ayu,asn,Ayu Lestari,asn\n"
    assert (await cloud.http.post("/api/v1/people/import", content=roster, headers=CSV)).is_success
    r = await cloud.http.get("/scim/v2/Users", params={"filter": 'userName eq "P-AYU"'})
    assert [u["id"] for u in r.json()["Resources"]] == ["p-ayu"]
    r = await cloud.http.post("/scim/v2/Users", json=user("p-ayu"))
    assert r.status_code == 409


async def test_filters_and_pages(cloud: RunningCloud) -> None:
    for i in range(7):
        await create(cloud.http, user(f"asn-{i}", externalId=f"ext-{i}",
                                      displayName=f"Orang {i}"))  # fmt: skip

    async def ids(**params: Any) -> tuple[int, list[str]]:
        r = await cloud.http.get("/scim/v2/Users", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
        assert body["itemsPerPage"] == len(body["Resources"])
        return body["totalResults"], [u["id"] for u in body["Resources"]]

    assert await ids(filter='externalId eq "ext-3"') == (1, ["asn-3"])
    assert await ids(filter='externalId eq "EXT-3"') == (0, [])  # caseExact
    assert await ids(filter='displayName eq "orang 4"') == (1, ["asn-4"])
    assert await ids(filter='userName sw "ASN-"', count=3) == (7, ["asn-0", "asn-1", "asn-2"])
    assert await ids(filter='userName sw "asn-"', startIndex=6, count=3) == (7, ["asn-5", "asn-6"])
    assert await ids(filter='userName co "n-2" or userName ew "-5"') == (2, ["asn-2", "asn-5"])
    assert await ids(filter='not (userName ne "asn-1") and externalId pr') == (1, ["asn-1"])
    assert await ids(filter='emails[value eq "asn-6@kemenkeu.go.id"]') == (1, ["asn-6"])
    assert await ids(filter=f'{ENTERPRISE}:department eq "djp"', count=0) == (7, [])
    assert await ids(filter=f'{USER}:userName eq "asn-0"') == (1, ["asn-0"])
    assert await ids(filter='userName sw "%"') == (0, [])  # LIKE wildcards are literal
    for bad in ('userName eq', 'nickName eq "x"', 'userName zz "x"', '(userName eq "x"',
                'active eq "yes"'):  # fmt: skip
        r = await cloud.http.get("/scim/v2/Users", params={"filter": bad})
        assert r.status_code == 400 and error_of(r)["scimType"] == "invalidFilter", bad


async def test_put_replaces_and_if_match_guards_it(cloud: RunningCloud) -> None:
    made = await create(cloud.http, user("citra"))
    version = made["meta"]["version"]
    body = user("citra", displayName="Citra Dewi", emails=[])
    body[ENTERPRISE] = {"organization": "Bappenas"}
    r = await cloud.http.put("/scim/v2/Users/citra", json=body, headers={"If-Match": version})
    assert r.status_code == 200, r.text
    now = r.json()
    assert now["displayName"] == "Citra Dewi" and "emails" not in now
    assert now[ENTERPRISE] == {"organization": "Bappenas"}
    assert now["meta"]["version"] != version and now["active"] is True
    # The old version no longer matches: 412, and nothing changes.
    r = await cloud.http.put(
        "/scim/v2/Users/citra", json=user("citra"), headers={"If-Match": version}
    )
    assert r.status_code == 412
    error_of(r)
    assert (await cloud.http.get("/scim/v2/Users/citra")).json() == now
    r = await cloud.http.put("/scim/v2/Users/citra", json=user("citra"), headers={"If-Match": "*"})
    assert r.status_code == 200
    r = await cloud.http.put("/scim/v2/Users/nobody", json=user("nobody"))
    assert r.status_code == 404 and error_of(r)["status"] == "404"


async def test_patch_in_the_forms_identity_systems_send(cloud: RunningCloud) -> None:
    await create(cloud.http, user("dewi"))
    steps: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
        # Okta: replace without a path.
        ({"op": "replace", "value": {"displayName": "Dewi K", "externalId": "okta-9"}},
         lambda u: u["displayName"] == "Dewi K" and u["externalId"] == "okta-9"),
        # Entra ID: capitalised op, the extension attribute by its URN.
        ({"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Biro SDM"},
         lambda u: u[ENTERPRISE]["department"] == "Biro SDM"),
        ({"op": "Add", "path": 'emails[type eq "work"].value', "value": "dewi@bappenas.go.id"},
         lambda u: u["emails"][0]["value"] == "dewi@bappenas.go.id"),
        ({"op": "replace", "path": "name.givenName", "value": "Dewita"},
         lambda u: u["name"]["givenName"] == "Dewita"),
        ({"op": "remove", "path": "externalId"}, lambda u: "externalId" not in u),
    ]  # fmt: skip
    for op, holds in steps:
        r = await cloud.http.patch("/scim/v2/Users/dewi", json=ops(op))
        assert r.status_code == 200, (op, r.text)
        assert holds(r.json()), (op, r.json())
    for bad, kind in (
        ({"op": "remove"}, "noTarget"),
        ({"op": "replace", "path": "id", "value": "x"}, "mutability"),
        ({"op": "replace", "path": "emails[type eq", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": 'emails[type zz "work"].value', "value": "x"}, "invalidFilter"),
        ({"op": "replace", "path": "active", "value": "maybe"}, "invalidValue"),
    ):
        r = await cloud.http.patch("/scim/v2/Users/dewi", json=ops(bad))
        assert r.status_code == 400 and error_of(r)["scimType"] == kind, (bad, r.text)
    r = await cloud.http.patch("/scim/v2/Users/dewi", json={"Operations": [{"op": "add"}]})
    assert r.status_code == 400


async def test_deactivation_revokes_every_badge_and_is_audited(cloud: RunningCloud) -> None:
    await create(cloud.http, user("eko"))
    for uid in ("04E0000001", "04E0000002"):
        r = await cloud.http.post("/api/v1/badges", json={"kind": "nfc", "uid": uid,
                                                           "person_id": "eko"})  # fmt: skip
        assert r.status_code == 201
    published = cloud.app.state.snapshots
    published._all_dirty = False  # what the change marks is what this test looks at
    r = await cloud.http.patch(
        "/scim/v2/Users/eko", json=ops({"op": "Replace", "path": "active", "value": "False"})
    )
    assert r.status_code == 200 and r.json()["active"] is False
    assert published._all_dirty  # every node's snapshot is rebuilt without the badges
    badges = (await cloud.http.get("/api/v1/badges", params={"person": "eko"})).json()
    assert [b["status"] for b in badges] == ["revoked", "revoked"]
    # A deactivated person gets no new badge until the identity system reactivates them.
    r = await cloud.http.post("/api/v1/badges", json={"kind": "nfc", "uid": "04E0000003",
                                                       "person_id": "eko"})  # fmt: skip
    assert r.status_code == 409
    r = await cloud.http.patch(
        "/scim/v2/Users/eko", json=ops({"op": "replace", "value": {"active": True}})
    )
    assert r.json()["active"] is True
    badges = (await cloud.http.get("/api/v1/badges", params={"person": "eko"})).json()
    assert [b["status"] for b in badges] == ["revoked", "revoked"]  # not brought back
    audit = (await cloud.http.get("/api/v1/audit", params={"target": "person:eko"})).json()
    actions = [(e["action"], e["detail"].get("badges_revoked")) for e in audit["items"]]
    assert actions == [("scim.user_update", None), ("scim.user_deactivate", 2),
                       ("scim.user_create", None)]  # fmt: skip
    assert all("Budi" not in str(e["detail"]) for e in audit["items"])  # names are not logged


async def test_delete_deprovisions_hides_and_a_new_post_brings_the_person_back(
    cloud: RunningCloud,
) -> None:
    made = await create(cloud.http, user("fajar"))
    r = await cloud.http.post("/api/v1/badges", json={"kind": "ble", "uid": "ble:fajar-1",
                                                       "person_id": "fajar"})  # fmt: skip
    assert r.status_code == 201
    group = await create(cloud.http, {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                      "displayName": "Tim", "members": [{"value": "fajar"}]},
                         "Groups")  # fmt: skip
    # Joining the group changed the user (its `groups`): the version from before is stale.
    r = await cloud.http.delete(
        "/scim/v2/Users/fajar", headers={"If-Match": made["meta"]["version"]}
    )
    assert r.status_code == 412
    current = (await cloud.http.get("/scim/v2/Users/fajar")).headers["etag"]
    r = await cloud.http.delete("/scim/v2/Users/fajar", headers={"If-Match": current})
    assert r.status_code == 204 and r.content == b""
    assert (await cloud.http.get("/scim/v2/Users/fajar")).status_code == 404
    assert (await cloud.http.delete("/scim/v2/Users/fajar")).status_code == 404
    listed = (await cloud.http.get("/scim/v2/Users")).json()
    assert listed["totalResults"] == 0
    g = (await cloud.http.get(f"/scim/v2/Groups/{group['id']}")).json()
    assert g["members"] == []
    badges = (await cloud.http.get("/api/v1/badges", params={"person": "fajar"})).json()
    assert [b["status"] for b in badges] == ["revoked"]
    again = await create(cloud.http, user("FAJAR"))
    assert again["id"] == "fajar" and again["userName"] == "FAJAR" and again["active"] is True


async def test_a_provisioning_client_reaches_only_its_sites(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await add_sites(settings.database_url, "s-a", "s-b")
    client_a = auth_headers(settings, "idp-a", ("scim",), ("s-a",))
    client_ab = auth_headers(settings, "idp-ab", ("scim",), ("s-a", "s-b"))
    await create(cloud.http, user("in-b", **{RUANG_USER: {"site": "s-b"}}))
    r = await cloud.http.post("/scim/v2/Users", json=user("in-a"), headers=client_a)
    assert r.status_code == 201 and r.json()[RUANG_USER] == {"site": "s-a"}
    listed = (await cloud.http.get("/scim/v2/Users", headers=client_a)).json()
    assert [u["id"] for u in listed["Resources"]] == ["in-a"]
    for call in (
        cloud.http.get("/scim/v2/Users/in-b", headers=client_a),
        cloud.http.patch("/scim/v2/Users/in-b", json=ops({"op": "replace", "path": "active",
                                                          "value": False}), headers=client_a),
        cloud.http.delete("/scim/v2/Users/in-b", headers=client_a),
    ):  # fmt: skip
        assert (await call).status_code == 404
    r = await cloud.http.post("/scim/v2/Users", json=user("x", **{RUANG_USER: {"site": "s-b"}}),
                              headers=client_a)  # fmt: skip
    assert r.status_code == 400 and error_of(r)["scimType"] == "invalidValue"
    r = await cloud.http.post("/scim/v2/Users", json=user("y"), headers=client_ab)
    assert r.status_code == 400  # two sites: the body must say which
    # Other roles are refused as SCIM errors too; no token is a 401 with its challenge.
    manager = auth_headers(settings, "fm", ("facility_manager",), ("s-a",))
    r = await cloud.http.get("/scim/v2/Users", headers=manager)
    assert r.status_code == 403 and error_of(r)
    async with httpx.AsyncClient(transport=cloud.http._transport, base_url="http://cloud") as anon:
        r = await anon.get("/scim/v2/Users")
        assert r.status_code == 401 and error_of(r) and "Bearer" in r.headers["www-authenticate"]


async def test_other_scim_paths_and_methods_answer_scim_errors_and_are_documented(
    cloud: RunningCloud,
) -> None:
    r = await cloud.http.get("/scim/v2/Nothing/here")
    assert r.status_code == 404 and error_of(r)
    r = await cloud.http.request("OPTIONS", "/scim/v2/Users")
    assert (
        r.status_code == 405
        and error_of(r)
        and set(r.headers["allow"].split(", "))
        == {
            "GET",
            "POST",
        }
    )
    r = await cloud.http.request("OPTIONS", "/scim/v2/Groups/.search")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    doc = (await cloud.http.get("/openapi.json")).json()
    replace = doc["paths"]["/scim/v2/Users/{user_id}"]["put"]["responses"]
    for code in ("400", "401", "403", "404", "409", "412"):
        assert list(replace[code]["content"]) == ["application/scim+json"], code
    assert list(replace["200"]["content"]) == ["application/scim+json"]
