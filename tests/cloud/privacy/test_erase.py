"""Erasure: after `POST /people/{id}/erase` the person's name, e-mail, NIP, badge and id
appear in no text of any table, their guests' identities neither, the node snapshots lose
the badge, and the utilisation figures are the same as before (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiomqtt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.models import Base
from cloud.db.tables import (
    ACCESS_LOG,
    ADMIN_AUDIT,
    DEAD_LETTERS,
    DEVICE_STATUS,
    EVENTS,
    TRANSPORT_BOARDINGS,
)
from cloud.fleet.snapshots import build_body
from cloud.settings import CloudSettings
from ruang import contract
from tests.cloud.booking_helpers import seed
from tests.cloud.conftest import RunningCloud, eventually
from tests.helpers import auth_headers

WITA = ZoneInfo("Asia/Makassar")
UID = "04E7A5E1D2C3B4"
BLE = "ble:7e57ba0e"
NODE = "ikn-demo-l1"
# What must vanish: p-ayu's identity (booking_helpers.ROSTER), badges, and her guest's.
NEEDLES = (
    "p-ayu", "Ayu Lestari", "ayu@example.go.id", "198703142010122001", UID, BLE, "7e57ba0e",
    "Rina Kusuma", "rina@mitra.example", "PT Mitra Nusantara",
)  # fmt: skip


def _day(days_ago: int) -> datetime:
    today = datetime.now(UTC).astimezone(WITA).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


async def _history(cloud: RunningCloud) -> None:
    """Past bookings of two people (utilisation) and the tap records the edge would send."""
    rows = []
    for ago in (2, 3):
        day = _day(ago)
        for desk, person, outcome in (("L1-D01", "p-ayu", "completed"),
                                      ("L1-D02", "p-budi", "completed"),
                                      ("L1-D03", "p-ayu", "no_show")):  # fmt: skip
            rows.append({
                "desk_id": desk, "person_id": person, "outcome": outcome,
                "starts_at": (day + timedelta(hours=9)).isoformat(),
                "ends_at": (day + timedelta(hours=12)).isoformat(),
            })  # fmt: skip
    r = await cloud.http.post("/api/v1/bookings/import", json={"rows": rows})
    assert r.status_code == 200, r.text
    now = datetime.now(UTC)
    engine: AsyncEngine = cloud.app.state.engine
    async with engine.begin() as conn:
        checkin = {"kind": "checkin", "badge": UID, "person": "p-ayu", "desk": "L1-D01"}
        await conn.execute(EVENTS.insert().values(
            message_id="m-erase-1", node=NODE, desk="L1-D01", kind="checkin", ts=now,
            received_at=now, badge=UID, payload=checkin,
        ))  # fmt: skip
        await conn.execute(ACCESS_LOG.insert().values(
            message_id="m-erase-2", node=NODE, door="D-LOBBY", badge=UID, person_id="p-ayu",
            granted=True, reason="ok", ts=now, ts_raw=now.timestamp(), received_at=now,
            audit_seq=1, audit_hash="0" * 64,
        ))  # fmt: skip
        await conn.execute(TRANSPORT_BOARDINGS.insert().values(
            message_id="m-erase-3", node="node-shuttle", vehicle_id="bus-1", reader="door",
            ts=now, hour=now.hour, allowed=True, reason="walk_on", person_id="p-ayu",
        ))  # fmt: skip
        await conn.execute(DEVICE_STATUS.insert().values(
            node_id=NODE, device="7e57ba0e", kind="ble_badge", online=True, updated_at=now,
        ))  # fmt: skip
        await conn.execute(DEAD_LETTERS.insert().values(
            message_id="m-erase-4", node=NODE, topic=f"ruang/v1/nodes/{NODE}/events/checkin",
            payload=json.dumps(checkin).encode(), reason="test", first_seen=now, last_seen=now,
        ))  # fmt: skip


async def _retained_badges(settings: CloudSettings) -> set[str]:
    """The badges of the node's retained, signed snapshot as the broker holds it now."""
    host, port = settings.mqtt_url.split("//", 1)[1].rsplit(":", 1)
    async with aiomqtt.Client(host, int(port), identifier=f"erase-{uuid.uuid4().hex}") as client:
        await client.subscribe(contract.command_topic(NODE, "snapshot"), qos=1)
        async with asyncio.timeout(10):
            message = await anext(aiter(client.messages))
    _, snapshot = contract.decode(str(message.topic), bytes(message.payload))
    assert isinstance(snapshot, contract.Snapshot)
    return {b.badge for b in snapshot.body.badges}


async def _utilisation(cloud: RunningCloud) -> Any:
    r = await cloud.http.get(
        "/api/v1/analytics/utilisation",
        params={"from": _day(7).isoformat(), "to": _day(0).isoformat(), "level": "desk",
                "bucket": "day"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()


async def _texts(engine: AsyncEngine) -> dict[str, str]:
    """Every table's rows as text (strings, JSON documents and raw bytes alike)."""
    out: dict[str, str] = {}
    async with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = (await conn.execute(select(table))).all()
            out[table.name] = json.dumps(
                [[v.decode(errors="replace") if isinstance(v, bytes) else v for v in r]
                 for r in rows], default=str, ensure_ascii=False,
            )  # fmt: skip
    return out


async def test_an_erased_person_is_nowhere_but_in_the_same_aggregates(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    engine: AsyncEngine = cloud.app.state.engine
    for uid, kind in ((UID, "nfc"), (BLE, "ble")):
        r = await cloud.http.post(
            "/api/v1/badges", json={"kind": kind, "uid": uid, "person_id": "p-ayu"}
        )
        assert r.status_code == 201, r.text
    ayu = auth_headers(settings, "p-ayu", ("asn",))
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=30)
    r = await cloud.http.post("/api/v1/bookings", headers=ayu, json={
        "desk_id": "L1-D04", "person_id": "p-ayu", "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
    })  # fmt: skip
    assert r.status_code == 201, r.text
    assert (await cloud.http.post("/api/v1/me/calendar-token", headers=ayu)).status_code == 201
    visit = {
        "guest_name": "Rina Kusuma", "guest_email": "rina@mitra.example",
        "organisation": "PT Mitra Nusantara", "purpose": "Rapat", "site_id": "ikn-kipp",
        "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat(),
    }  # fmt: skip
    r = await cloud.http.post("/api/v1/visits", json=visit, headers=ayu)
    assert r.status_code == 201, r.text
    await _history(cloud)
    # An admin reads her private record: the access audit names her as its subject.
    assert (await cloud.http.get("/api/v1/people/p-ayu/private")).status_code == 200
    async with engine.connect() as conn:
        before = await build_body(conn, NODE, datetime.now(UTC), 1)
    assert UID in {b.badge for b in before.badges}

    async def on_the_node() -> bool:
        return UID in await _retained_badges(settings)

    await eventually(on_the_node)
    figures = await _utilisation(cloud)
    assert sum(row["bookings"] for row in figures["rows"]) == 6  # the imported history
    texts = await _texts(engine)
    assert all(any(n in t for t in texts.values()) for n in NEEDLES), "seed is incomplete"

    r = await cloud.http.post("/api/v1/people/p-ayu/erase")
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["badges_removed"] == 2 and done["pseudonym"].startswith("anon-")

    texts = await _texts(engine)
    found = {n: [t for t, text in texts.items() if n in text] for n in NEEDLES}
    assert {n: t for n, t in found.items() if t} == {}
    again = await _utilisation(cloud)
    changed = [(a, b) for a, b in zip(again["rows"], figures["rows"], strict=True) if a != b]
    assert changed == [], changed[:2]
    assert again == figures
    async with engine.connect() as conn:
        after = await build_body(conn, NODE, datetime.now(UTC), 2)
        erased = (
            (
                await conn.execute(
                    select(ADMIN_AUDIT.c.target).where(ADMIN_AUDIT.c.action == "person.erase")
                )
            )
            .scalars()
            .all()
        )
    assert UID not in {b.badge for b in after.badges}

    async def gone_from_the_node() -> bool:
        return UID not in await _retained_badges(settings)

    # The erasure re-published the node's snapshot: the broker's retained copy lost the badge.
    await eventually(gone_from_the_node)
    assert erased == [f"person:{done['pseudonym']}"]
    # Her history is still there, under the pseudonym nobody can map back.
    r = await cloud.http.get("/api/v1/bookings", params={"person": done["pseudonym"]})
    statuses = {(b["desk_id"], b["status"]) for b in r.json()}
    assert {("L1-D01", "completed"), ("L1-D03", "no_show")} <= statuses
    # The booking she had not begun is cancelled: the desk is free for others.
    assert ("L1-D04", "cancelled") in statuses
    assert (await cloud.http.post("/api/v1/people/p-ayu/erase")).status_code == 404


async def test_only_admins_erase(cloud: RunningCloud, settings: CloudSettings) -> None:
    await seed(cloud, settings)
    manager = auth_headers(settings, "p-citra", ("facility_manager",), ("ikn-kipp",))
    r = await cloud.http.post("/api/v1/people/p-budi/erase", headers=manager)
    assert r.status_code == 403
    assert (await cloud.http.get("/api/v1/people/p-budi/private")).status_code == 200
