"""The technician's fleet view and node page, against a real edge agent and broker."""

from __future__ import annotations

import ast
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from playwright.async_api import Browser, expect

from ruang import contract
from tests.dashboards.conftest import DEMO_NODE, Ruang, running_ruang, screenshot
from tests.helpers import eventually

pytestmark = pytest.mark.servers

# Health every half second: the node page needs a health sample soon after start.
FAST_HEALTH = {"health_interval_s": 0.5}
BADGE_DEVICE = "badge-0042"


@contextlib.asynccontextmanager
async def mqtt(ruang: Ruang) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(
        "127.0.0.1", ruang.broker.port, identifier=f"fleet-test-{time.monotonic_ns()}"
    ) as client:
        yield client


async def publish(client: aiomqtt.Client, message: contract.Message) -> None:
    await client.publish(
        contract.topic_for(message),
        contract.encode(message),
        qos=contract.qos_for(message),
        retain=isinstance(message, contract.NodeState),
    )


async def fleet_node(ruang: Ruang, node: str) -> dict[str, Any] | None:
    r = await ruang.admin.get(f"/api/v1/fleet/nodes/{node}")
    return r.json() if r.status_code == 200 else None


async def test_a_technician_sees_the_running_node_its_devices_and_health_graph(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path, desks=3, edge_extra=FAST_HEALTH) as ruang:
        async with mqtt(ruang) as client:
            # A BLE badge with a low battery: the edge agent itself runs no BLE here.
            await publish(
                client,
                contract.DeviceHealth(
                    node=DEMO_NODE,
                    device=BADGE_DEVICE,
                    kind="ble_badge",
                    online=True,
                    battery_pct=12,
                    last_reading_ts=time.time(),
                    detail="rssi -71 dBm",
                ),
            )

        async def settled() -> dict[str, Any] | None:
            node = await fleet_node(ruang, DEMO_NODE)
            ok = (
                node is not None
                and node["online"]
                and node["health"] is not None
                and node["desk_unit_counts"]["online"] == 3
                and node["device_counts"]["total"] == 1
            )
            return node if ok else None

        node = await eventually(settled, timeout=30, what="demo node with health and devices")

        async def sampled() -> bool:
            r = await ruang.admin.get(f"/api/v1/fleet/nodes/{DEMO_NODE}/health")
            return bool(r.json()["samples"])

        await eventually(sampled, timeout=30, what="a health sample")

        page = await ruang.page(
            browser, "p-joko", "technician", viewport={"width": 1440, "height": 900}
        )
        await page.goto("/fleet")
        row = page.locator(f'[data-testid="fleet-row"][data-node="{DEMO_NODE}"]')
        await expect(row).to_be_visible()
        await expect(row.locator('[data-col="online"]')).to_contain_text("Daring")
        # Desk units (3 simulated of those the layout gives the node) + the BLE badge.
        units, others = node["desk_unit_counts"], node["device_counts"]
        assert units["online"] + others["online"] == 4
        await expect(row.get_by_test_id("devices")).to_contain_text(
            f"4/{units['total'] + others['total']}"
        )
        label = {"ok": "Baik", "warning": "Peringatan", "alarm": "Alarm"}[node["state"]]
        await expect(row.get_by_test_id("state")).to_contain_text(label)
        await expect(row.locator('[data-col="last_seen"] time')).to_be_visible()
        await screenshot(page, "fleet")

        await row.get_by_role("link", name=DEMO_NODE).click()
        await expect(page).to_have_url(f"{ruang.base_url}/fleet/{DEMO_NODE}")
        devices = page.get_by_test_id("devices-table")
        for desk in ("L1-D01", "L1-D02", "L1-D03"):
            await expect(devices.locator(f'tr[data-device="{desk}"]')).to_contain_text("Daring")
        # The technician sees the badge's battery under its keyed pseudonym, never its id.
        badge = devices.locator("tr", has_text="Lencana BLE")
        await expect(badge).to_have_attribute("data-device", re.compile(r"^k1\.[0-9a-f]{20}$"))
        assert BADGE_DEVICE not in await page.content()
        await expect(badge.locator('[data-col="battery"]')).to_have_text("12 % (lemah)")
        await expect(page.get_by_test_id("health")).to_contain_text("Antrean outbox")
        # The graph has at least one sample, in the chart and in its table alternative.
        await expect(page.get_by_test_id("chart-outbox_depth")).to_have_attribute(
            "data-samples", re.compile(r"^[1-9]\d*$")
        )
        await expect(page.get_by_test_id("health-table").locator("tbody tr").first).to_be_attached()
        await page.get_by_role("button", name="24 jam").click()
        await expect(page.get_by_role("button", name="24 jam")).to_have_attribute(
            "aria-pressed", "true"
        )
        await screenshot(page, "fleet-node")

        await page.goto("/fleet/no-such-node")
        await expect(page.get_by_test_id("not-found")).to_contain_text("no-such-node")

        phone = await ruang.page(
            browser, "p-joko", "technician", viewport={"width": 390, "height": 844}
        )
        await phone.goto("/fleet")
        await expect(phone.locator(f'[data-node="{DEMO_NODE}"]')).to_be_visible()
        await screenshot(phone, "fleet-phone")


async def test_an_alarm_and_a_last_will_show_up_as_alarm_and_offline(
    tmp_path: Path, browser: Browser
) -> None:
    alarming, gone = "ikn-test-alarm", "ikn-test-gone"
    alarm_text = "outbox full: telemetry shed"
    async with running_ruang(tmp_path) as ruang:
        async with mqtt(ruang) as client:
            await publish(
                client, contract.NodeState(node=alarming, online=True, bdseq=1, sw_version="1.4.0")
            )
            await publish(
                client,
                contract.NodeHealth(
                    node=alarming,
                    uptime_s=60,
                    rss_bytes=40_000_000,
                    rejected_frames=0,
                    mqtt_reconnects=0,
                    units_online=0,
                    outbox_depth=12,
                    alarms=(alarm_text,),
                ),
            )
            await publish(client, contract.NodeState(node=gone, online=True, bdseq=1))
            # The broker's last-will for that connection: same bdseq, online false.
            await publish(client, contract.NodeState(node=gone, online=False, bdseq=1))

        async def states() -> bool:
            a, g = await fleet_node(ruang, alarming), await fleet_node(ruang, gone)
            return (
                a is not None
                and a["state"] == "alarm"
                and g is not None
                and g["state"] == "offline"
            )

        await eventually(states, what="alarm and offline states")

        # Nodes outside the layout belong to no site: an admin's view (cloud/people/access.py).
        page = await ruang.page(browser, "dev-admin", "admin")
        await page.goto("/fleet")
        rows = page.get_by_test_id("fleet-row")
        await expect(page.locator(f'[data-node="{gone}"]')).to_be_visible()
        # Worst first by default (the layout's other nodes have never reported: offline too).
        states = await rows.evaluate_all("rows => rows.map(r => r.dataset.state)")
        severity = ["offline", "alarm", "warning", "ok"]
        assert states == sorted(states, key=severity.index), states
        alarm_row = page.locator(f'[data-node="{alarming}"]')
        await expect(alarm_row.get_by_test_id("state")).to_contain_text("Alarm")
        await expect(alarm_row.locator('[data-col="state"]')).to_contain_text(alarm_text)
        await expect(alarm_row.locator('[data-col="alarms"]')).to_contain_text(alarm_text)
        gone_row = page.locator(f'[data-node="{gone}"]')
        await expect(gone_row.get_by_test_id("state")).to_contain_text("Luring")
        await expect(gone_row.locator('[data-col="online"]')).to_contain_text("Luring")

        await page.get_by_label("Saring").fill("telemetry shed")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_have_attribute("data-node", alarming)
        await expect(page.get_by_label("Saring")).to_be_focused()

        await page.goto(f"/fleet/{alarming}")
        await expect(page.get_by_test_id("node-summary").get_by_test_id("state")).to_contain_text(
            "Alarm"
        )
        await expect(page.get_by_test_id("reasons")).to_contain_text(alarm_text)
        await expect(page.get_by_test_id("alarms")).to_contain_text(alarm_text)


async def test_an_asn_user_gets_403_on_the_fleet_page_and_api(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        page = await ruang.page(browser, "p-ayu", "asn")
        for path in ("/fleet", f"/fleet/{DEMO_NODE}"):
            response = await page.goto(path)
            assert response is not None and response.status == 403
            await expect(page.get_by_test_id("forbidden")).to_be_visible()
        for path in ("/api/v1/fleet/nodes", f"/api/v1/fleet/nodes/{DEMO_NODE}/health"):
            api = await page.request.get(path)
            assert api.status == 403, path


def test_every_fleet_reason_the_cloud_can_give_has_a_label_in_both_languages() -> None:
    """A reason code without a string would show the raw key to a technician."""
    repo = Path(__file__).resolve().parents[2]
    source = (repo / "cloud" / "fleet" / "health.py").read_text(encoding="utf-8")
    codes = {
        kw.value.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "FleetReason"
        for kw in node.keywords
        if kw.arg == "code" and isinstance(kw.value, ast.Constant)
    }
    assert {"dead_letters", "clock_skew", "offline"} <= codes
    for lang in ("id", "en"):
        strings = json.loads(
            (repo / "dashboards" / "locales" / lang / "fleet.json").read_text(encoding="utf-8")
        )
        missing = sorted(c for c in codes if f"fleet.reason.{c}" not in strings)
        assert not missing, f"{lang}: no label for fleet reasons {missing}"
