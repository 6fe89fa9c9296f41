"""The SCIM server against independent SCIM software from PyPI, over real HTTP (uvicorn):
scim2-client provisions, finds, deactivates and deletes a user; scim2-tester's checker
runs its whole RFC 7643/7644 suite, as a provisioning client (role `scim`) of one site.

The checker's only failures allowed are the documented deviations (docs/scim.md): a
person always has a name and a home site the client reaches, and removing `active`
leaves it as it was.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import PatchOp, PatchOperation, SCIMException, SearchRequest
from scim2_tester import Status, check_server

from cloud.settings import CloudSettings
from tests.cloud.conftest import serving
from tests.helpers import auth_headers

from .helpers import add_sites

RUANG_USER = "urn:ruang:params:scim:schemas:extension:2.0:User"
RUANG_GROUP = "urn:ruang:params:scim:schemas:extension:2.0:Group"
# (check, attribute): removing what Ruang keeps by rule (see the module docstring).
DEVIATIONS = {
    ("check_remove_attribute", "name"),
    ("check_remove_attribute", "displayName"),
    ("check_remove_attribute", "active"),
    ("check_remove_attribute", RUANG_USER),
    ("check_remove_attribute", f"{RUANG_USER}:site"),
    ("check_remove_attribute", RUANG_GROUP),
    ("check_remove_attribute", f"{RUANG_GROUP}:site"),
}


def _client(base_url: str, settings: CloudSettings) -> SyncSCIMClient:
    headers = auth_headers(settings, "idp-kemenkeu", ("scim",), ("s-test",))
    return SyncSCIMClient(httpx2.Client(base_url=f"{base_url}/scim/v2", headers=headers))


def _provision_with_scim2_client(client: Any) -> list[Any]:
    # scim2-client's return types are unions of every answer; a failed step fails the test.
    client.discover()
    user_model: Any = client.get_resource_model("User")
    assert user_model is not None
    seen: list[Any] = []
    made = client.create(
        user_model.model_validate(
            {
                "userName": "budi.santoso",
                "name": {"givenName": "Budi", "familyName": "Santoso"},
                "emails": [{"value": "budi@kemenkeu.go.id", "type": "work"}],
            }
        )
    )
    seen.append((made.id, made.active, made.meta.version is not None))
    found = client.query(
        user_model, query_parameters=SearchRequest(filter='userName eq "BUDI.SANTOSO"')
    )
    seen.append([r.id for r in found.resources])
    off = PatchOp[user_model](
        operations=[PatchOperation(op=PatchOperation.Op.replace_, path="active", value=False)]
    )
    seen.append(client.modify(user_model, made.id, off).active)
    client.delete(user_model, made.id)
    try:
        client.query(user_model, made.id)
    except SCIMException as exc:
        seen.append(type(exc).__name__)
    return seen


async def test_scim2_client_provisions_finds_deactivates_and_deletes(
    settings: CloudSettings,
) -> None:
    async with serving(settings) as (base_url, _):
        await add_sites(settings.database_url, "s-test")
        client = _client(base_url, settings)
        seen = await asyncio.to_thread(_provision_with_scim2_client, client)
    assert seen == [("budi.santoso", True, True), ["budi.santoso"], False, "NotFoundException"]


async def test_scim2_tester_finds_nothing_but_the_documented_deviations(
    settings: CloudSettings,
) -> None:
    async with serving(settings) as (base_url, _):
        await add_sites(settings.database_url, "s-test")
        results = await asyncio.to_thread(check_server, _client(base_url, settings))
    failed = {
        (r.title, (r.data or {}).get("urn") if isinstance(r.data, dict) else None): r.reason
        for r in results
        if r.status not in (Status.SUCCESS, Status.SKIPPED)
    }
    unexpected = {k: v for k, v in failed.items() if k not in DEVIATIONS}
    assert not unexpected, unexpected
    passed = [r for r in results if r.status == Status.SUCCESS]
    # Discovery, every CRUD step on Users and Groups, PATCH add/replace of every attribute.
    assert len(passed) >= 85, len(passed)
    assert {
        "object_creation",
        "object_query",
        "object_replacement",
        "object_deletion",
        "check_add_attribute",
        "check_replace_attribute",
    } <= {r.title for r in passed}
