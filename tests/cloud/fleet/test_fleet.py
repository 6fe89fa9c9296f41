"""The fleet view: node and device health from a real broker into SQL, served by the API."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
from sqlalchemy import func, insert, select, update

from cloud.db.models import Building, Floor, Site
from cloud.db.tables import DESKS
from cloud.db.tables import NODE_HEALTH_SAMPLES as HEALTH_SAMPLES
from cloud.settings import CloudSettings
from ruang import contract
from tests.cloud.binding_helpers import bind
from tests.cloud.conftest import RunningCloud, eventually, publish, start_cloud, unique
from tests.helpers import auth_headers


def birth(node: str, desks: list[str], **extra: Any) -> contract.NodeState:
    return contract.NodeState(
        node=node,
        online=True,
        bdseq=1,
        sw_version="2.0.0",
        desks=tuple(contract.DeskInfo(desk=d, unit=f"unit-{d}") for d in desks),
        **extra,
    )


def health(node: str, **extra: Any) -> contract.NodeHealth:
    fields: dict[str, Any] = {
        "uptime_s": 3600.5,
        "rss_bytes": 40_000_000,
        "rejected_frames": 2,
        "mqtt_reconnects": 1,
        "units_online": 1,
        "cpu_pct": 3.5,
        "mem_available_bytes": 900_000_000,
        "disk_free_bytes": 8_000_000_000,
        "temperature_c": 51.5,
        "dropped_telemetry": 0,
    }
    fields.update(extra)
    return contract.NodeHealth(node=node, **fields)


async def fleet_node(cloud: RunningCloud, node: str) -> dict[str, Any] | None:
    r = await cloud.http.get(f"/api/v1/fleet/nodes/{node}")
    return r.json() if r.status_code == 200 else None


async def wait_for_health(cloud: RunningCloud, node: str, message_ts: float) -> dict[str, Any]:
    """Waits until the node's row reflects the health message sent at `message_ts`."""
    found: dict[str, Any] = {}

    async def applied() -> bool:
        n = await fleet_node(cloud, node)
        if n is None or n["last_health_at"] is None or n["clock_offset_s"] is None:
            return False
        # The offset is the edge ts minus the receive time: match it to this message.
        received = datetime.fromisoformat(n["last_health_at"]).timestamp()
        if abs(received + n["clock_offset_s"] - message_ts) > 1e-3:
            return False
        found.update(n)
        return True

    await eventually(applied)
    return found


async def test_birth_health_and_devices_show_up_in_the_fleet_view(
    cloud: RunningCloud, publisher: aiomqtt.Client
) -> None:
    node, desk = unique("node"), unique("desk")
    await bind(cloud.app.state.engine, node, [desk])
    await publish(publisher, birth(node, [desk], config_version=3, outbox_depth=7))
    await publish(
        publisher,
        contract.DeviceHealth(
            node=node,
            device="radar-1",
            kind="radar",
            online=True,
            rejected_frames=4,
            last_reading_ts=1_795_000_000.0,
        ),
    )
    await publish(
        publisher,
        contract.DeviceHealth(node=node, device="gps-1", kind="gps", online=False, detail="no fix"),
    )
    h = health(node, outbox_depth=12, config_version=3)
    await publish(publisher, h)

    async def devices_in() -> bool:
        n = await fleet_node(cloud, node)
        return n is not None and n["device_counts"]["total"] == 2

    await eventually(devices_in)
    n = await wait_for_health(cloud, node, h.ts)

    assert n["online"] is True and n["sw_version"] == "2.0.0"
    assert n["config_version"] == 3 and n["outbox_depth"] == 12
    assert n["desired_config_version"] is None
    assert n["alarms"] == []
    assert n["device_counts"] == {"total": 2, "online": 1, "offline": 1}
    assert n["desk_unit_counts"]["total"] == 1
    # Only the offline GPS is wrong with it.
    assert n["state"] == "warning"
    assert [r["code"] for r in n["reasons"]] == ["devices_offline"]
    assert n["health"]["cpu_pct"] == 3.5
    assert n["health"]["disk_free_bytes"] == 8_000_000_000
    assert n["health"]["uptime_s"] == 3600.5
    assert n["devices_declared"] == [{"kind": "deskunit", "device": desk, "unit": f"unit-{desk}"}]
    # The node's desk units with what the desks know of them (not from device_health).
    assert [u["desk"] for u in n["desk_units"]] == [desk]
    by_id = {d["device"]: d for d in n["devices"]}
    assert by_id["radar-1"]["online"] is True and by_id["radar-1"]["rejected_frames"] == 4
    assert by_id["radar-1"]["last_reading_at"] == "2026-11-18T11:06:40Z"
    assert by_id["gps-1"]["kind"] == "gps" and by_id["gps-1"]["detail"] == "no fix"

    listed = (await cloud.http.get("/api/v1/fleet/nodes")).json()
    row = next(r for r in listed if r["id"] == node)
    assert row["state"] == "warning" and "devices" not in row and "health" not in row

    # A later birth without outbox_depth keeps the value health reported.
    await publish(publisher, birth(node, [desk], config_version=4))

    async def rebirth() -> bool:
        m = await fleet_node(cloud, node)
        return m is not None and m["config_version"] == 4

    await eventually(rebirth)
    m = await fleet_node(cloud, node)
    assert m is not None and m["outbox_depth"] == 12


async def test_clock_offset_is_edge_minus_cloud(
    cloud: RunningCloud, publisher: aiomqtt.Client
) -> None:
    ahead, behind = unique("node"), unique("node")
    h_ahead = health(ahead, ts=time.time() + 30)
    h_behind = health(behind, ts=time.time() - 30)
    await publish(publisher, h_ahead)
    await publish(publisher, h_behind)

    n = await wait_for_health(cloud, ahead, h_ahead.ts)
    # 30 s ahead, less the (small) transit time.
    assert 25 < n["clock_offset_s"] <= 30
    assert n["state"] == "warning"
    assert [r["code"] for r in n["reasons"]] == ["clock_offset"]
    assert "ahead" in n["reasons"][0]["detail"]
    b = await wait_for_health(cloud, behind, h_behind.ts)
    assert -35 < b["clock_offset_s"] < -30


async def test_alarm_and_thresholds_decide_the_state(
    cloud: RunningCloud, publisher: aiomqtt.Client
) -> None:
    alarmed, busy, offline = unique("node"), unique("node"), unique("node")
    h_alarm = health(alarmed, alarms=("outbox full: dropping telemetry",))
    h_busy = health(busy, outbox_depth=5000, disk_free_bytes=100_000_000)
    await publish(publisher, h_alarm)
    await publish(publisher, h_busy)
    await publish(publisher, birth(offline, []))
    await publish(publisher, contract.NodeState(node=offline, online=False, bdseq=1))

    a = await wait_for_health(cloud, alarmed, h_alarm.ts)
    assert a["state"] == "alarm"
    assert a["alarms"] == ["outbox full: dropping telemetry"]
    assert a["reasons"] == [
        {"code": "alarm", "level": "alarm", "detail": "outbox full: dropping telemetry"}
    ]
    b = await wait_for_health(cloud, busy, h_busy.ts)
    assert b["state"] == "warning"
    assert {r["code"] for r in b["reasons"]} == {"outbox_depth", "disk_free"}

    async def is_offline() -> bool:
        n = await fleet_node(cloud, offline)
        return n is not None and n["state"] == "offline"

    await eventually(is_offline)


async def test_a_node_outside_the_layout_is_admins_only_and_asn_may_not_read(
    cloud: RunningCloud, settings: CloudSettings, publisher: aiomqtt.Client
) -> None:
    node = unique("node")
    h = health(node)
    await publish(publisher, h)
    await wait_for_health(cloud, node, h.ts)
    # The node serves no desk of any site yet: no technician's sites include it.
    tech = auth_headers(settings, "tech-1", ("technician",), ("ikn-kipp",))
    asn = auth_headers(settings, "asn-1", ("asn",))
    listed = await cloud.http.get("/api/v1/fleet/nodes", headers=tech)
    assert listed.status_code == 200 and node not in listed.text
    for path in (f"/api/v1/fleet/nodes/{node}", f"/api/v1/fleet/nodes/{node}/health"):
        assert (await cloud.http.get(path)).status_code == 200, path
        assert (await cloud.http.get(path, headers=tech)).status_code == 404, path
        assert (await cloud.http.get(path, headers=asn)).status_code == 403, path


async def test_unknown_node_is_a_problem_404(cloud: RunningCloud) -> None:
    for path in ("/api/v1/fleet/nodes/no-such-node", "/api/v1/fleet/nodes/no-such-node/health"):
        r = await cloud.http.get(path)
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == 404
    r = await cloud.http.get("/api/v1/fleet/nodes/x/health", params={"hours": 49})
    assert r.status_code == 422


async def test_health_samples_are_thinned_to_one_per_interval(
    settings: CloudSettings, publisher: aiomqtt.Client
) -> None:
    node = unique("node")
    # Only lower bounds of time matter here: a long interval never elapses during
    # the test, a short one has surely elapsed after a restart and a pause.
    long_interval = settings.model_copy(update={"fleet_sample_interval_s": 3600.0})
    short_interval = settings.model_copy(update={"fleet_sample_interval_s": 0.5})

    async def samples(cloud: RunningCloud) -> list[float]:
        r = await cloud.http.get(f"/api/v1/fleet/nodes/{node}/health", params={"hours": 1})
        assert r.status_code == 200
        body = r.json()
        assert body["node"] == node and body["hours"] == 1
        assert [s["ts"] for s in body["samples"]] == sorted(s["ts"] for s in body["samples"])
        return [s["cpu_pct"] for s in body["samples"]]

    async with start_cloud(long_interval) as cloud:
        first = health(node, cpu_pct=1.0, outbox_depth=1)
        await publish(publisher, first)
        await wait_for_health(cloud, node, first.ts)
        # Within the interval: the node's row follows, the history does not grow.
        second = health(node, cpu_pct=2.0)
        await publish(publisher, second)
        n = await wait_for_health(cloud, node, second.ts)
        assert n["health"]["cpu_pct"] == 2.0
        assert await samples(cloud) == [1.0]
        r = await cloud.http.get(f"/api/v1/fleet/nodes/{node}/health")
        sample = r.json()["samples"][0]
        assert sample["outbox_depth"] == 1 and sample["clock_offset_s"] is not None

    await asyncio.sleep(0.6)
    async with start_cloud(short_interval) as cloud:
        third = health(node, cpu_pct=3.0)
        await publish(publisher, third)
        await wait_for_health(cloud, node, third.ts)
        assert await samples(cloud) == [1.0, 3.0]

    # After a restart the stored history decides, not an empty memory.
    async with start_cloud(long_interval) as cloud:
        fourth = health(node, cpu_pct=4.0)
        await publish(publisher, fourth)
        await wait_for_health(cloud, node, fourth.ts)
        assert await samples(cloud) == [1.0, 3.0]


async def test_old_health_samples_are_pruned_by_the_sweep(
    settings: CloudSettings, publisher: aiomqtt.Client
) -> None:
    # A short offline timeout makes the sweep run every half second.
    settings = settings.model_copy(update={"fleet_history_hours": 1.0, "node_offline_after_s": 2.0})
    node = unique("node")
    async with start_cloud(settings) as cloud:
        now = datetime.now(UTC)
        async with cloud.app.state.engine.begin() as conn:
            await conn.execute(
                insert(HEALTH_SAMPLES),
                [
                    {"node_id": node, "ts": now - timedelta(hours=2), "cpu_pct": 1.0},
                    {"node_id": node, "ts": now - timedelta(minutes=30), "cpu_pct": 2.0},
                ],
            )

        async def pruned() -> bool:
            async with cloud.app.state.engine.connect() as conn:
                left = (
                    (
                        await conn.execute(
                            select(HEALTH_SAMPLES.c.cpu_pct).where(HEALTH_SAMPLES.c.node_id == node)
                        )
                    )
                    .scalars()
                    .all()
                )
            return list(left) == [2.0]

        await eventually(pruned)


async def test_site_filter_follows_the_desks_layout(
    cloud: RunningCloud, publisher: aiomqtt.Client
) -> None:
    node, other, desk = unique("node"), unique("node"), unique("desk")
    site, building, floor = unique("site"), unique("bldg"), unique("floor")
    await bind(cloud.app.state.engine, node, [desk])
    await publish(publisher, birth(node, [desk]))
    h = health(other)
    await publish(publisher, h)
    await wait_for_health(cloud, other, h.ts)

    async def desk_known() -> bool:
        async with cloud.app.state.engine.connect() as conn:
            count = await conn.scalar(
                select(func.count()).select_from(DESKS).where(DESKS.c.id == desk)
            )
        return bool(count == 1)

    await eventually(desk_known)
    async with cloud.app.state.engine.begin() as conn:
        await conn.execute(insert(Site).values(id=site, name="IKN"))
        await conn.execute(insert(Building).values(id=building, site_id=site, name="A1"))
        await conn.execute(insert(Floor).values(id=floor, building_id=building, level=1, name="L1"))
        await conn.execute(update(DESKS).where(DESKS.c.id == desk).values(floor_id=floor))

    rows = (await cloud.http.get("/api/v1/fleet/nodes", params={"site": site})).json()
    assert [r["id"] for r in rows] == [node]
    assert rows[0]["site"] == site and rows[0]["floors"] == [floor]
    everyone = (await cloud.http.get("/api/v1/fleet/nodes")).json()
    assert next(r for r in everyone if r["id"] == other)["site"] is None
