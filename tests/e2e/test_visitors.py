"""A visitor's temporary card end to end: invited and checked in through the cloud API -> the
door-only node's signed snapshot (real Mosquitto, the cloud under uvicorn, an EdgeAgent with two
OSDP reader simulators) -> the card opens the visit's door inside the window, is refused at
another door, refused after check-out, and refused after the window's end while the node is
cut off from the broker (the window travels in the snapshot)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.devices import access_policy as reasons
from tests.e2e.door_office import LOBBY, SERVER, DoorOffice, door_office, set_up_rights
from tests.helpers import eventually

pytestmark = pytest.mark.servers

GUEST_A, GUEST_B = "04E1E2E3E4E5E6", "04F1F2F3F4F5F6"
HOST = "id,kind,name,role,email,site_id\np-host,asn,Hana Pratiwi,asn,hana@example.go.id,s-doors\n"
# Long enough for the first taps while the node is online; then the test waits it out.
SHORT_WINDOW_S = 45


async def _visit(o: DoorOffice, card: str, ends_in_s: float) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(minutes=1)
    r = await o.http.post("/api/v1/visits", json={
        "guest_name": "Tamu Uji", "guest_email": "tamu@mitra.example", "host_person_id": "p-host",
        "starts_at": start.isoformat(),
        "ends_at": (datetime.now(UTC) + timedelta(seconds=ends_in_s)).isoformat(),
        "doors": [LOBBY],
    })  # fmt: skip
    assert r.status_code == 201, r.text
    visit: dict[str, Any] = r.json()
    r = await o.http.post("/api/v1/reception/checkin",
                          json={"visit_id": visit["id"], "card_uid": card})  # fmt: skip
    assert r.status_code == 200, r.text
    return visit


async def test_a_guest_card_opens_only_the_visits_door_in_its_window_and_is_refused_after_checkout_and_after_the_window_offline(  # noqa: E501
    tmp_path: Path, database_url: str
) -> None:
    async with door_office(tmp_path, database_url) as o:
        await set_up_rights(o)
        r = await o.http.post(
            "/api/v1/people/import", content=HOST, headers={"content-type": "text/csv"}
        )
        assert r.status_code == 200, r.text
        short = await _visit(o, GUEST_A, SHORT_WINDOW_S)
        ends_a = datetime.fromisoformat(short["ends_at"]).timestamp()
        long = await _visit(o, GUEST_B, 2 * 3600)
        o.changed()
        await o.synced()

        opened = await o.tap(LOBBY, GUEST_A)
        assert (opened["granted"], opened["person_id"]) == (True, f"visit-{short['id']}")
        refused = await o.tap(SERVER, GUEST_A)
        assert (refused["granted"], refused["reason"]) == (False, reasons.WRONG_DOOR)

        # Check-out: the card leaves the next snapshot.
        assert (await o.tap(LOBBY, GUEST_B))["granted"]
        r = await o.http.post(f"/api/v1/reception/visits/{long['id']}/checkout")
        assert r.status_code == 200, r.text
        o.changed()
        await o.synced()
        gone = await o.tap(LOBBY, GUEST_B)
        assert (gone["granted"], gone["reason"]) == (False, reasons.UNKNOWN_BADGE)

        # The node cut off shortly before the short visit's window ends: after the end its
        # own policy (from the signed snapshot it holds) refuses the card, and so does the
        # reader, whose decision reaches the cloud's access log once the broker is back.
        assert o.broker is not None
        await asyncio.sleep(max(0.0, ends_a - time.time() - 3.0))
        o.broker.stop()
        await asyncio.sleep(max(0.0, ends_a - time.time()) + 1.0)
        assert not o.agent.uplink.connected.is_set()
        assert o.decide(LOBBY, GUEST_A) == (False, reasons.EXPIRED)
        assert o.readers[LOBBY].is_secure(), "the OSDP secure channel to the lobby reader dropped"
        o.readers[LOBBY].present_card(bytes.fromhex(GUEST_A))
        o.broker.start()

        async def logged() -> dict[str, Any] | None:
            r = await o.http.get("/api/v1/access-log", params={"door": LOBBY, "limit": 1})
            items = r.json()["items"] if r.status_code == 200 else []
            return dict(items[0]) if items and items[0]["id"] > o.seen else None

        late: dict[str, Any] = await eventually(logged, timeout=90, what="the offline decision")
        assert (late["granted"], late["reason"]) == (False, reasons.EXPIRED)
        assert late["person_id"] == f"visit-{short['id']}"
        decided_at = datetime.fromisoformat(late["ts"].replace("Z", "+00:00")).timestamp()
        assert decided_at >= ends_a
