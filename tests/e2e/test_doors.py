"""Door access end to end: rights managed in the cloud -> signed snapshot of a door-only node ->
a card at a simulated OSDP reader decided offline at the edge -> the cloud's access log.

Real Mosquitto, the real cloud under uvicorn on SQLite and PostgreSQL, an in-process
EdgeAgent with two doors, each an OSDP reader simulator in secure channel on a pty.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.devices import access_policy as reasons
from edge.devices.door_rights import ANTI_PASSBACK
from tests.e2e.door_office import (
    ALL_DAY,
    AYU,
    BUDI,
    CITRA,
    LOBBY,
    NODE,
    SERVER,
    SITE,
    door_office,
    local_today,
    other_weekday,
    set_up_rights,
)

pytestmark = pytest.mark.servers


async def test_a_door_only_node_gets_a_signed_snapshot_with_only_its_doors_rights(
    tmp_path: Path, database_url: str
) -> None:
    async with door_office(tmp_path, database_url) as o:
        await set_up_rights(o)
        view = o.agent.snapshots.current
        assert view is not None and view.body.desks == ()
        assert {d.door for d in view.body.doors} == {LOBBY, SERVER}
        by_badge = {b.badge: {r.door for r in b.doors} for b in view.body.badges}
        assert by_badge == {AYU: {LOBBY}, CITRA: {LOBBY}, BUDI: {SERVER}}
        for badge in view.body.badges:
            for right in badge.doors:
                assert all(view.body.issued_at <= s < e <= view.body.valid_until
                           for s, e in right.windows)  # fmt: skip


async def test_permitted_badge_opens_in_its_window_and_is_refused_outside_it_on_a_holiday_and_at_another_groups_door(  # noqa: E501
    tmp_path: Path, database_url: str
) -> None:
    async with door_office(tmp_path, database_url) as o:
        await set_up_rights(o)
        opened = await o.tap(LOBBY, AYU)
        assert (opened["granted"], opened["person_id"]) == (True, "p-ayu")
        assert opened["chain_ok"] is True
        other_group = await o.tap(SERVER, AYU)
        assert (other_group["granted"], other_group["reason"]) == (False, reasons.WRONG_DOOR)
        assert (await o.tap(LOBBY, BUDI))["reason"] == reasons.WRONG_DOOR

        today = local_today().date().isoformat()
        await o.put("/api/v1/access/holidays", {"site_id": SITE, "day": today, "name": "Libur"})
        await o.synced()
        holiday = await o.tap(LOBBY, AYU)
        assert (holiday["granted"], holiday["reason"]) == (False, reasons.OUTSIDE_SCHEDULE)

        r = await o.http.delete(f"/api/v1/access/holidays/{SITE}/{today}")
        assert r.status_code == 200, r.text
        o.changed()
        other_day = [{"days": [other_weekday()], "start": "00:00", "end": "24:00"}]
        await o.put(
            "/api/v1/access/grants",
            {"group_id": "g-bappenas", "door_id": LOBBY, "schedule": other_day},
        )
        await o.synced()
        outside = await o.tap(LOBBY, AYU)
        assert (outside["granted"], outside["reason"]) == (False, reasons.OUTSIDE_SCHEDULE)

        changes = (await o.http.get("/api/v1/access/changes")).json()
        versions = [c["version"] for c in changes]
        assert versions == sorted(versions) and len(versions) == 9
        assert [c["action"] for c in changes[-3:]] == ["holiday.put", "holiday.delete",
                                                        "grant.put"]  # fmt: skip


async def test_revoking_a_badge_reaches_the_node_and_it_refuses_the_badge(
    tmp_path: Path, database_url: str
) -> None:
    async with door_office(tmp_path, database_url) as o:
        await set_up_rights(o)
        assert (await o.tap(LOBBY, CITRA))["granted"]
        badges = (await o.http.get("/api/v1/badges", params={"person": "p-citra"})).json()
        r = await o.http.post(f"/api/v1/badges/{badges[0]['id']}/revoke")
        assert r.status_code == 200, r.text
        o.changed()
        await o.synced()
        refused = await o.tap(LOBBY, CITRA)
        assert (refused["granted"], refused["reason"]) == (False, reasons.UNKNOWN_BADGE)
        # Removing a person from a group is a revocation too.
        await o.put(
            "/api/v1/access/groups/g-ops",
            {"site_id": SITE, "name": "Ops", "rule": "people", "members": []},
        )
        await o.synced()
        assert (await o.tap(SERVER, BUDI))["reason"] == reasons.UNKNOWN_BADGE


async def test_anti_passback_refuses_a_second_entry_before_an_exit(
    tmp_path: Path, database_url: str
) -> None:
    async with door_office(tmp_path, database_url) as o:
        await set_up_rights(o)
        await o.put(
            f"/api/v1/access/doors/{LOBBY}",
            {
                "site_id": SITE,
                "name": "Lobby",
                "zone_from": "outside",
                "zone_to": "inside",
                "anti_passback": True,
            },
        )
        # The server room is the way back out in this test building.
        await o.put(
            f"/api/v1/access/doors/{SERVER}",
            {"site_id": SITE, "name": "Exit", "zone_from": "inside", "zone_to": "outside"},
        )
        await o.put(
            "/api/v1/access/grants",
            {"group_id": "g-bappenas", "door_id": SERVER, "schedule": ALL_DAY},
        )
        await o.synced()  # fmt: skip
        assert (await o.tap(LOBBY, AYU))["granted"]
        again = await o.tap(LOBBY, AYU)
        assert (again["granted"], again["reason"]) == (False, ANTI_PASSBACK)
        assert (await o.tap(SERVER, AYU))["granted"]
        assert (await o.tap(LOBBY, AYU))["granted"]
        # Every decision chained.
        log = (await o.http.get("/api/v1/access-log", params={"person": "p-ayu"})).json()
        assert len(log["items"]) == 4 and all(e["chain_ok"] for e in log["items"])
        fleet = (await o.http.get(f"/api/v1/fleet/nodes/{NODE}")).json()
        assert not {r["code"] for r in fleet["reasons"]} & {"access_chain_broken",
                                                             "access_chain_gap"}  # fmt: skip
