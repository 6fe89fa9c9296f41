"""The cloud checks each node's door audit chain as decisions arrive: a break or a gap is a
fleet alarm, the decisions are still stored (flagged) and acknowledged, and the security
role can search them. Real Mosquitto and the cloud, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from edge.devices.audit_log import AuditEntry, AuditLog
from edge.devices.door import audit_message_id
from ruang import contract
from tests.cloud.conftest import RunningCloud, eventually, publish, unique

pytestmark = pytest.mark.servers


def decision(node: str, e: AuditEntry, *, audit_hash: str | None = None) -> contract.AccessDecision:
    return contract.AccessDecision(
        node=node, id=audit_message_id(audit_hash or e.hash), ts=e.ts, door=e.door,
        badge=e.badge, granted=e.granted, reason=e.reason, audit_seq=e.seq,
        audit_hash=audit_hash or e.hash,
    )  # fmt: skip


def chain(tmp_path: Path, n: int) -> list[AuditEntry]:
    log = AuditLog(tmp_path / unique("audit"))
    try:
        return [
            log.append(door="D-1", badge="04A1B2C3", granted=i % 2 == 0, reason="allowed")
            for i in range(n)
        ]
    finally:
        log.close()


async def online(publisher: aiomqtt.Client, node: str) -> None:
    await publish(publisher, contract.NodeState(node=node, online=True, bdseq=1))


async def reasons(cloud: RunningCloud, node: str) -> set[str]:
    r = await cloud.http.get(f"/api/v1/fleet/nodes/{node}")
    if r.status_code != 200:
        return set()
    return {x["code"] for x in r.json()["reasons"]}


async def log_of(cloud: RunningCloud, **params: Any) -> list[dict[str, Any]]:
    r = await cloud.http.get("/api/v1/access-log", params=params)
    r.raise_for_status()
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_a_hash_that_does_not_chain_is_an_alarm_and_the_decision_is_kept_flagged(
    cloud: RunningCloud, publisher: aiomqtt.Client, tmp_path: Path
) -> None:
    node = unique("door-node")
    entries = chain(tmp_path, 4)
    await online(publisher, node)
    for e in entries[:2]:
        await publish(publisher, decision(node, e))

    async def two_verified() -> bool:
        got = await log_of(cloud, edge_node=node)
        return len(got) == 2 and all(x["chain_ok"] for x in got)

    await eventually(two_verified)
    assert not {"access_chain_broken", "access_chain_gap"} & await reasons(cloud, node)
    # Entry 3 altered on the node (its recorded decision changed after the fact).
    forged = decision(node, entries[2]).model_copy(update={"granted": not entries[2].granted})
    await publish(publisher, forged)
    await publish(publisher, decision(node, entries[3]))

    async def broken() -> bool:
        # The alarm can come with entry 3 while entry 4 is still in flight: wait for both.
        stored = await log_of(cloud, edge_node=node)
        return "access_chain_broken" in await reasons(cloud, node) and len(stored) == 4

    await eventually(broken)
    rows = {x["audit_seq"]: x for x in await log_of(cloud, edge_node=node)}
    assert len(rows) == 4
    assert rows[3]["chain_ok"] is False and "does not chain" in rows[3]["chain_problem"]
    # The walk goes on from the node's hash: the next decision is checked, and chains.
    assert rows[4]["chain_ok"] is True
    fleet = (await cloud.http.get(f"/api/v1/fleet/nodes/{node}")).json()
    assert fleet["state"] in ("alarm", "offline")
    chains = (await cloud.http.get("/api/v1/access-log/chains")).json()
    assert next(c for c in chains if c["node"] == node)["broken_seq"] == 3

    r = await cloud.http.post(f"/api/v1/access-log/chains/{node}/clear")
    assert r.status_code == 204, r.text
    assert "access_chain_broken" not in await reasons(cloud, node)


async def test_a_gap_is_an_alarm_until_the_missing_decision_arrives_and_chains(
    cloud: RunningCloud, publisher: aiomqtt.Client, tmp_path: Path
) -> None:
    node = unique("door-node")
    entries = chain(tmp_path, 3)
    await online(publisher, node)
    await publish(publisher, decision(node, entries[0]))
    await publish(publisher, decision(node, entries[2]))

    async def gap() -> bool:
        return "access_chain_gap" in await reasons(cloud, node)

    await eventually(gap)
    rows = {x["audit_seq"]: x for x in await log_of(cloud, edge_node=node)}
    assert rows[1]["chain_ok"] is True and rows[3]["chain_ok"] is None
    await publish(publisher, decision(node, entries[1]))

    async def closed() -> bool:
        got = await log_of(cloud, edge_node=node)
        return len(got) == 3 and all(x["chain_ok"] for x in got)

    await eventually(closed)
    assert not {"access_chain_broken", "access_chain_gap"} & await reasons(cloud, node)


async def test_a_reset_audit_log_reusing_sequence_numbers_is_an_alarm(
    cloud: RunningCloud, publisher: aiomqtt.Client, tmp_path: Path
) -> None:
    node = unique("door-node")
    await online(publisher, node)
    first = chain(tmp_path, 2)
    for e in first:
        await publish(publisher, decision(node, e))

    async def two() -> bool:
        return len(await log_of(cloud, edge_node=node)) == 2

    await eventually(two)
    # A wiped node starts again from seq 1 (different ts, so different hashes and ids).
    for e in chain(tmp_path, 1):
        await publish(publisher, decision(node, e))

    async def broken() -> bool:
        return "access_chain_broken" in await reasons(cloud, node)

    await eventually(broken)


async def test_the_access_log_pages_and_filters_by_door_person_and_time(
    cloud: RunningCloud, publisher: aiomqtt.Client, tmp_path: Path
) -> None:
    node = unique("door-node")
    entries = chain(tmp_path, 5)
    await online(publisher, node)
    for e in entries:
        await publish(publisher, decision(node, e))

    async def five() -> bool:
        return len(await log_of(cloud, edge_node=node)) == 5

    await eventually(five)
    page1 = (await cloud.http.get("/api/v1/access-log", params={"door": "D-1", "limit": 2})).json()
    assert [x["audit_seq"] for x in page1["items"]][:2] == sorted(
        [x["audit_seq"] for x in page1["items"]], reverse=True
    )
    seen = [x["id"] for x in page1["items"]]
    before = page1["next_before_id"]
    while before is not None:
        page = (
            await cloud.http.get(
                "/api/v1/access-log", params={"door": "D-1", "limit": 2, "before_id": before}
            )
        ).json()
        seen += [x["id"] for x in page["items"]]
        before = page["next_before_id"]
    mine = [x["id"] for x in await log_of(cloud, edge_node=node, limit=500)]
    assert set(mine) <= set(seen) and len(seen) == len(set(seen))
    assert await log_of(cloud, door="D-OTHER") == []
    assert await log_of(cloud, person="p-nobody") == []
    later = await log_of(cloud, door="D-1", start="2100-01-01T00:00:00+00:00")
    assert later == []
    assert all("badge" not in x for x in await log_of(cloud, edge_node=node))
