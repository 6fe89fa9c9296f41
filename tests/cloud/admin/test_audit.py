"""The admin audit log: written in the caller's transaction, secret-free, searchable, purged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.admin import audit
from cloud.db.tables import ADMIN_AUDIT
from cloud.people.auth import Principal
from tests.cloud.conftest import RunningCloud
from tests.helpers import auth_headers


def _engine(cloud: RunningCloud) -> AsyncEngine:
    engine: AsyncEngine = cloud.app.state.engine
    return engine


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(ADMIN_AUDIT)) or 0)


async def test_an_entry_commits_and_rolls_back_with_the_callers_transaction(
    cloud: RunningCloud,
) -> None:
    engine = _engine(cloud)
    before = await _count(engine)
    try:
        async with engine.begin() as conn:
            await audit.record(
                conn, actor="p-x", action="badge.revoke", target="badge:1", detail={}
            )
            raise RuntimeError("the change failed")
    except RuntimeError:
        pass
    assert await _count(engine) == before
    async with engine.begin() as conn:
        await audit.record(conn, actor="p-x", action="badge.revoke", target="badge:1", detail={})
    assert await _count(engine) == before + 1


async def test_secrets_in_the_detail_are_redacted_and_sizes_bounded(cloud: RunningCloud) -> None:
    engine = _engine(cloud)
    user = Principal(subject="p-adm", roles=frozenset({"admin", "security"}))
    async with engine.begin() as conn:
        await audit.record(
            conn,
            actor=user,
            action="webhook.create",
            target="webhook:7",
            detail={
                "url": "https://hooks.example/x",
                "secret": "s3cr3t-value",
                "config": {"mqtt_password": "pw-value", "api_key": "k-value", "zone": "z1"},
                "enrolment_token": "tok-value",
                "note": "x" * 5000,
                "kinds": ["a"] * 500,
            },
        )
    r = await cloud.http.get("/api/v1/audit", params={"target": "webhook:7"})
    assert r.status_code == 200
    (entry,) = r.json()["items"]
    assert entry["actor"] == "p-adm" and entry["actor_roles"] == ["admin", "security"]
    for value in ("s3cr3t-value", "pw-value", "k-value", "tok-value"):
        assert value not in r.text
    assert entry["detail"]["secret"] == audit.REDACTED
    assert entry["detail"]["config"]["zone"] == "z1"
    assert len(entry["detail"]["note"]) == audit.MAX_TEXT
    assert len(entry["detail"]["kinds"]) == audit.MAX_ITEMS


async def test_search_filters_by_actor_action_target_and_time_and_pages(
    cloud: RunningCloud,
) -> None:
    engine = _engine(cloud)
    async with engine.begin() as conn:
        for i in range(5):
            await audit.record(
                conn, actor="p-a", action="badge.issue", target=f"badge:{i}", detail={"i": i}
            )
        await audit.record(conn, actor="p-b", action="badge.lost", target="badge:9", detail={})
        await audit.record(conn, actor="p-b", action="badges.x", target="node:n1", detail={})
        await audit.record(
            conn, actor="p-b", action="node_config.push", target="node:n1", detail={}
        )
    get = cloud.http.get
    assert {e["action"] for e in (await get("/api/v1/audit?action=badge")).json()["items"]} == {
        "badge.issue",
        "badge.lost",
    }
    r = await get("/api/v1/audit", params={"actor": "p-b", "target": "node:"})
    assert [e["action"] for e in r.json()["items"]] == ["node_config.push", "badges.x"]
    # Pages: newest first, next_before continues, the last page says there is no more.
    r = await get("/api/v1/audit", params={"actor": "p-a", "limit": 3})
    first = r.json()
    assert [e["detail"]["i"] for e in first["items"]] == [4, 3, 2]
    r = await get(
        "/api/v1/audit", params={"actor": "p-a", "limit": 3, "before": first["next_before"]}
    )
    assert [e["detail"]["i"] for e in r.json()["items"]] == [1, 0]
    assert r.json()["next_before"] is None
    # Time: everything is from now; a window in the past finds nothing.
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    r = await get("/api/v1/audit", params={"until": past})
    assert r.json()["items"] == []
    r = await get("/api/v1/audit", params={"since": past, "actor": "p-a"})
    assert len(r.json()["items"]) == 5
    r = await get(
        "/api/v1/audit", params={"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    )
    assert r.status_code == 422 and r.json()["title"] == "Bad time range"
    r = await get("/api/v1/audit", params={"since": "0.5"})  # a number is no time here
    assert r.status_code == 422


async def test_security_role_reads_its_sites_others_are_refused(cloud: RunningCloud) -> None:
    engine = _engine(cloud)
    async with engine.begin() as conn:
        await audit.record(
            conn, actor="p", action="door.grant", target="door:a", detail={}, site="s-a"
        )
        await audit.record(
            conn, actor="p", action="door.grant", target="door:b", detail={}, site="s-b"
        )
        await audit.record(conn, actor="p", action="webhook.create", target="webhook:1", detail={})
    s = cloud.app.state.settings
    security = auth_headers(s, "p-sec", ("security",), ("s-a",))
    r = await cloud.http.get("/api/v1/audit", headers=security)
    assert [e["target"] for e in r.json()["items"]] == ["door:a"]
    for roles in (("technician",), ("facility_manager",), ("asn",)):
        r = await cloud.http.get("/api/v1/audit", headers=auth_headers(s, "p-o", roles, ("s-a",)))
        assert r.status_code == 403
    r = await cloud.http.get("/api/v1/audit")  # admin: every site and the site-less entry
    assert {e["target"] for e in r.json()["items"]} >= {"door:a", "door:b", "webhook:1"}


async def test_retention_deletes_only_entries_past_the_period(cloud: RunningCloud) -> None:
    engine = _engine(cloud)
    async with engine.begin() as conn:
        await audit.record(conn, actor="p", action="badge.issue", target="badge:old", detail={})
        await audit.record(conn, actor="p", action="badge.issue", target="badge:new", detail={})
        await conn.execute(
            update(ADMIN_AUDIT)
            .where(ADMIN_AUDIT.c.target == "badge:old")
            .values(at=datetime.now(UTC) - timedelta(days=800))
        )
    gone = await audit.AuditRetention(engine, 730, 3600).run_once()
    assert gone == 1
    r = await cloud.http.get("/api/v1/audit", params={"target": "badge:"})
    assert [e["target"] for e in r.json()["items"]] == ["badge:new"]
