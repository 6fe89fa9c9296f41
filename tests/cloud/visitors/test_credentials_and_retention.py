"""A checked-in guest's card in the door node's snapshot (window, allowed doors only, gone at
check-out), and the visitor log's purge deleting exactly the visits past retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from cloud.db.tables import NODE_CONFIGS, VISITS
from cloud.fleet.snapshots import build_body
from cloud.settings import CloudSettings
from cloud.visitors.retention import purge_visits
from tests.cloud.conftest import RunningCloud
from tests.helpers import auth_headers

from .conftest import SITE, invitation

NODE = "door-node-v"
CARD = "04D00D000001"


async def test_a_checked_in_guests_card_opens_only_the_visits_doors_in_its_window_until_check_out(
    office: RunningCloud, mail_settings: CloudSettings
) -> None:
    engine = office.app.state.engine
    async with engine.begin() as conn:
        # The node controls the lobby and the floor-2 door.
        await conn.execute(NODE_CONFIGS.insert().values(
            node_id=NODE, version=1, updated_at=datetime.now(UTC),
            config={"doors": [{"id": "D-LOBBY"}, {"id": "D-L2"}]},
        ))  # fmt: skip
    ayu = auth_headers(mail_settings, "p-ayu", ("asn",))
    visit = (await office.http.post("/api/v1/visits", json=invitation(), headers=ayu)).json()
    desk = auth_headers(mail_settings, "p-rc", ("reception",), (SITE,))
    r = await office.http.post(
        "/api/v1/reception/checkin", json={"visit_id": visit["id"], "card_uid": CARD}, headers=desk
    )
    assert r.status_code == 200, r.text
    starts = datetime.fromisoformat(visit["starts_at"]).timestamp()
    ends = datetime.fromisoformat(visit["ends_at"]).timestamp()
    now = datetime.now(UTC)
    async with engine.connect() as conn:
        body = await build_body(conn, NODE, now, 1)
    [badge] = [b for b in body.badges if b.badge == CARD]
    assert badge.person == f"visit-{visit['id']}"  # the node never learns the guest's name
    assert (badge.valid_from, badge.valid_until) == (starts, ends)
    # Floor 1's door is not this node's; floor 2's is not the visit's: only the lobby.
    assert [(d.door, d.windows) for d in badge.doors] == [("D-LOBBY", ((now.timestamp(), ends),))]

    r = await office.http.post(f"/api/v1/reception/visits/{visit['id']}/checkout", headers=desk)
    assert r.status_code == 200
    async with engine.connect() as conn:
        body = await build_body(conn, NODE, datetime.now(UTC), 2)
    assert CARD not in {b.badge for b in body.badges}


async def test_the_purge_deletes_exactly_the_visits_whose_window_ended_before_the_retention(
    office: RunningCloud, mail_settings: CloudSettings
) -> None:
    ayu = auth_headers(mail_settings, "p-ayu", ("asn",))
    ids = []
    for _ in range(4):
        r = await office.http.post("/api/v1/visits", json=invitation(), headers=ayu)
        ids.append(r.json()["id"])
    now = datetime(2030, 6, 1, 12, tzinfo=UTC)
    cutoff = now - timedelta(days=30)
    ends = {
        ids[0]: cutoff - timedelta(days=3),  # long due
        ids[1]: cutoff,  # due at the very instant
        ids[2]: cutoff + timedelta(seconds=1),  # one second short
        ids[3]: now,  # just ended
    }
    engine = office.app.state.engine
    async with engine.begin() as conn:
        for visit_id, end in ends.items():
            await conn.execute(VISITS.update().where(VISITS.c.id == visit_id).values(
                starts_at=end - timedelta(hours=2), ends_at=end))  # fmt: skip
    assert await purge_visits(engine, now, 30) == 2
    async with engine.connect() as conn:
        left = set(await conn.scalars(select(VISITS.c.id)))
    assert left == {ids[2], ids[3]}
    assert await purge_visits(engine, now, 30) == 0
    # A shorter setting makes more due.
    assert await purge_visits(engine, now, 0.5) == 1
