"""Bodies and calls the SCIM tests share."""

from __future__ import annotations

from typing import Any

import httpx

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
RUANG_USER = "urn:ruang:params:scim:schemas:extension:2.0:User"
RUANG_GROUP = "urn:ruang:params:scim:schemas:extension:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SITE_LAYOUT = "id,kind,name,role\n"


def user(user_name: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemas": [USER, ENTERPRISE],
        "userName": user_name,
        "name": {"givenName": "Budi", "familyName": "Santoso"},
        "emails": [{"value": f"{user_name.split('@')[0]}@kemenkeu.go.id", "primary": True}],
        ENTERPRISE: {"organization": "Kemenkeu", "department": "DJP"},
    }
    return body | extra


def ops(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(operations)}


async def create(http: httpx.AsyncClient, body: dict[str, Any], kind: str = "Users") -> Any:
    r = await http.post(f"/scim/v2/{kind}", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def error_of(r: httpx.Response) -> dict[str, Any]:
    """The SCIM error body of `r`, checking it is one."""
    assert r.headers["content-type"].startswith("application/scim+json"), r.headers
    body: dict[str, Any] = r.json()
    assert body["schemas"] == [ERROR], body
    assert body["status"] == str(r.status_code)
    return body


async def add_sites(database_url: str, *sites: str) -> None:
    """Sites with one empty floor each (a person's home site must exist)."""
    from cloud.buildings.layout import apply_layout, parse_layout
    from cloud.db.engine import make_engine

    engine = make_engine(database_url)
    try:
        for site in sites:
            layout = {
                "site": {"id": site, "name": site},
                "buildings": [{"id": f"{site}-b", "name": "B", "floors": [
                    {"id": f"{site}-f", "level": 1, "name": "L1",
                     "zones": [{"id": f"{site}-z", "name": "Z", "desks": []}]}]}],
            }  # fmt: skip
            await apply_layout(engine, parse_layout(layout))
    finally:
        await engine.dispose()
