"""SCIM deprovisioning end to end: a ministry's identity system deactivates (or deletes) a
person -> their badges are revoked in the cloud -> the door node's signed snapshot drops
them -> a card read at the simulated OSDP reader is refused at the edge.

Real Mosquitto, the cloud under uvicorn on SQLite and PostgreSQL, an in-process EdgeAgent
with two doors on OSDP reader simulators (tests/e2e/door_office.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.door_office import AYU, CITRA, LOBBY, door_office, set_up_rights
from tests.helpers import eventually

pytestmark = pytest.mark.servers
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


async def test_deactivated_and_deleted_people_are_refused_at_the_door(
    tmp_path: Path, database_url: str
) -> None:
    async with door_office(tmp_path, database_url) as o:
        await set_up_rights(o)
        assert (await o.tap(LOBBY, AYU))["granted"] is True
        assert (await o.tap(LOBBY, CITRA))["granted"] is True
        # The identity system finds the roster person by userName, then deactivates them.
        found = await o.http.get("/scim/v2/Users", params={"filter": 'userName eq "p-ayu"'})
        assert found.json()["totalResults"] == 1
        r = await o.http.patch(
            "/scim/v2/Users/p-ayu",
            json={
                "schemas": [PATCH],
                "Operations": [{"op": "replace", "value": {"active": False}}],
            },
        )
        assert r.status_code == 200 and r.json()["active"] is False
        o.changed()
        await o.synced()

        async def ayu_gone() -> bool:
            view = o.agent.snapshots.current
            return view is not None and AYU not in view.badges

        await eventually(ayu_gone, timeout=20, what="p-ayu's badge out of the node's snapshot")
        refused = await o.tap(LOBBY, AYU)
        assert refused["granted"] is False
        # DELETE deprovisions the same way.
        assert (await o.http.delete("/scim/v2/Users/p-citra")).status_code == 204
        o.changed()
        await o.synced()
        assert (await o.tap(LOBBY, CITRA))["granted"] is False
        audit = (await o.http.get("/api/v1/audit", params={"action": "scim"})).json()["items"]
        assert [(e["action"], e["target"], e["detail"]["badges_revoked"]) for e in audit] == [
            ("scim.user_delete", "person:p-citra", 1),
            ("scim.user_deactivate", "person:p-ayu", 1),
        ]
