"""The admin console in Chromium: people import with a preview, badges reaching the node's
retained snapshot on the real broker, enrolment tokens, node config with the node's applied
version, door access, webhooks with their delivery log, the audit log, and role gating."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from cloud.people.auth import SESSION_COOKIE, mint_dev_token
from launch import devservers
from ruang import contract
from tests.dashboards.conftest import (
    BADGES,
    DEMO_NODE,
    SITE,
    Ruang,
    running_ruang,
    screenshot,
    wait_in_page,
)
from tests.helpers import eventually

pytestmark = pytest.mark.servers

READY = "() => document.getElementById('admin-root').dataset.ready === '1'"


async def ready(page: Page, path: str) -> None:
    await page.goto(path)
    await wait_in_page(page, READY)


async def signed_in(ruang: Ruang, browser: Browser, person: str, roles: list[str]) -> Page:
    """A page whose session holds exactly `roles` for the sample site."""
    context: BrowserContext = await ruang.context(browser)
    token = mint_dev_token(ruang.settings, person, roles, sites=[SITE], name=person.title())
    await context.add_cookies(
        [{"name": SESSION_COOKIE, "value": token, "url": ruang.base_url, "httpOnly": True}]
    )
    page = await context.new_page()
    page.set_default_timeout(15_000)
    return page


async def retained_badges(ruang: Ruang, node: str = DEMO_NODE) -> set[str]:
    """The badges of the node's retained, signed snapshot as the broker holds it now."""
    async with aiomqtt.Client(
        "127.0.0.1", ruang.broker.port, identifier=f"admin-test-{time.monotonic_ns()}"
    ) as client:
        await client.subscribe(contract.command_topic(node, "snapshot"), qos=1)
        async with asyncio.timeout(10):
            message = await anext(aiter(client.messages))
    _, snapshot = contract.decode(str(message.topic), bytes(message.payload))  # type: ignore[arg-type]
    assert isinstance(snapshot, contract.Snapshot)
    return {b.badge for b in snapshot.body.badges}


async def audit(ruang: Ruang, **query: str) -> list[dict[str, Any]]:
    r = await ruang.admin.get("/api/v1/audit", params=query)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


NEW_UID = "04DE11AA22BB33"
REPLACED_UID = "04DE11AA22BB44"
BAD_CSV = (
    "id,kind,name,role,agency,site_id\n"
    f"p-dewi,asn,Dewi Anggraini,asn,Kementerian PUPR,{SITE}\n"
    f"p-eko,alien,Eko,asn,,{SITE}\n"  # line 3: unknown kind
    "p-fajar,asn,Fajar,asn,,other-site\n"  # line 4: not the manager's site
)
GOOD_CSV = (
    "id,kind,name,role,agency,site_id\n"
    f"p-dewi,asn,Dewi Anggraini,asn,Kementerian PUPR,{SITE}\n"
    f"p-eko,asn,Eko Wibowo,asn,Kementerian Keuangan,{SITE}\n"
)


async def test_a_facility_manager_imports_with_a_preview_and_badges_reach_the_node(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path) as ruang:
        page = await ruang.page(browser, "p-siti", "facility_manager")
        await ready(page, "/admin/people")

        # The preview names every bad row and imports nothing; the import stays disabled.
        await page.get_by_test_id("csv-text").fill(BAD_CSV)
        await page.get_by_test_id("preview-button").click()
        errors = page.get_by_test_id("preview-errors")
        await expect(errors.locator("tbody tr")).to_have_count(1)
        await expect(errors.locator("tbody tr")).to_contain_text("3")
        await expect(errors).to_contain_text("kind")
        await expect(page.get_by_test_id("import")).to_be_disabled()
        # Rows that parse are then checked against the database and the manager's sites.
        await page.get_by_test_id("csv-text").fill(BAD_CSV.replace("alien", "asn"))
        await page.get_by_test_id("preview-button").click()
        await expect(errors.locator("tbody tr")).to_have_count(1)
        await expect(errors).to_contain_text("site_id must be one of your sites")
        await expect(page.get_by_test_id("import")).to_be_disabled()
        r = await ruang.admin.get("/api/v1/people", params={"q": "dewi"})
        assert r.json() == []

        await page.get_by_test_id("csv-text").fill(GOOD_CSV)
        await page.get_by_test_id("preview-button").click()
        await expect(page.get_by_test_id("preview-ok")).to_contain_text("2")
        await page.get_by_test_id("import").click()
        await expect(page.get_by_test_id("import-done")).to_be_visible()
        await page.get_by_test_id("people-search").fill("dewi")
        rows = page.get_by_test_id("people-table").locator("tbody tr")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("Dewi Anggraini")
        await screenshot(page, "admin-people")

        # Issue: the node's retained snapshot (drop-in desks: every ASN) carries the badge.
        await ready(page, "/admin/badges")
        await page.get_by_test_id("badge-person").fill("p-dewi")
        await page.get_by_test_id("badge-uid").fill(NEW_UID.lower())
        await page.get_by_role("button", name="Terbitkan").click()
        row = page.locator(f"tr[data-uid='{NEW_UID}']")
        await expect(row).to_have_attribute("data-status", "active")

        async def has(uid: str) -> bool:
            return uid in await retained_badges(ruang)

        async def lacks(uid: str) -> bool:
            return uid not in await retained_badges(ruang)

        await eventually(lambda: has(NEW_UID), timeout=20, what="issued badge in the snapshot")

        # Replace: the old card leaves the snapshot, the new one arrives.
        await row.locator("[data-action=replace]").click()
        await row.get_by_test_id("replace-uid").fill(REPLACED_UID)
        await row.get_by_role("button", name="Ganti").click()
        await expect(page.locator(f"tr[data-uid='{NEW_UID}']")).to_have_attribute(
            "data-status", "replaced"
        )
        await eventually(lambda: has(REPLACED_UID), timeout=20, what="replacement in snapshot")
        assert await lacks(NEW_UID)

        # Lost: gone from the snapshot; revoke another person's badge the same way.
        await page.locator(f"tr[data-uid='{REPLACED_UID}'] [data-action=lost]").click()
        await expect(page.locator(f"tr[data-uid='{REPLACED_UID}']")).to_have_attribute(
            "data-status", "lost"
        )
        await eventually(lambda: lacks(REPLACED_UID), timeout=20, what="lost badge removed")
        # p-ayu has no home site: her badge is not this manager's to see.
        await expect(page.locator(f"tr[data-uid='{BADGES['p-ayu']}']")).to_have_count(0)
        await screenshot(page, "admin-badges")

        # Every change was audited with the manager as actor, in order, uids masked.
        entries = await audit(ruang, actor="p-siti")
        assert [e["action"] for e in entries] == [
            "badge.lost",
            "badge.replace",
            "badge.issue",
            "people.import",
        ]
        assert all(e["actor_roles"] == ["facility_manager"] for e in entries)
        assert entries[0]["site_id"] == SITE
        assert NEW_UID not in str(entries) and REPLACED_UID not in str(entries)
        assert entries[3]["detail"]["created"] == 2


async def test_a_technician_enrols_and_pushes_config_and_sees_the_applied_version(
    tmp_path: Path, browser: Browser
) -> None:
    async with running_ruang(tmp_path, desks=1) as ruang:
        page = await ruang.page(browser, "p-joko", "technician")
        await page.goto("/admin")
        await expect(page).to_have_url(f"{ruang.base_url}/admin/enrolment")
        await wait_in_page(page, READY)
        await page.get_by_test_id("token-node").fill("ikn-new-01")
        await page.get_by_role("button", name="Buat token").last.click()
        token = await page.get_by_test_id("token-value").inner_text()
        row = page.locator("tr[data-node='ikn-new-01']")
        await expect(row).to_have_attribute("data-state", "open")
        await row.locator("[data-action=withdraw]").click()
        await expect(page.locator("tr[data-node='ikn-new-01']")).to_have_attribute(
            "data-state", "withdrawn"
        )
        r = await ruang.admin.post("/api/v1/enroll", json={"token": token})
        assert r.status_code == 410 and "withdrawn" in r.text
        await screenshot(page, "admin-enrolment")

        await ready(page, f"/admin/nodes?node={DEMO_NODE}")
        await page.get_by_test_id("config-format").select_option("yaml")
        # Problems come back with their lines; nothing is pushed.
        await page.get_by_test_id("config-text").fill("health_interval_s: -1\nnode_id: other\n")
        await page.get_by_test_id("config-push").click()
        problems = page.get_by_test_id("config-problems").locator("li")
        await expect(problems).to_have_count(2)
        await expect(page.locator("[data-line='1']")).to_contain_text("health_interval_s")
        await expect(page.locator("[data-line='2']")).to_contain_text("node_id")
        await page.get_by_test_id("config-text").fill("health_interval_s: 5\naway_s: 900: x\n")
        await page.get_by_test_id("config-check").click()
        await expect(page.locator("[data-line='2']")).to_be_visible()
        r = await ruang.admin.get(f"/api/v1/nodes/{DEMO_NODE}/config")
        assert r.json()["desired"] is None

        # A good one: pushed, the edge applies it and reports; the page shows the version.
        await page.get_by_test_id("config-text").fill("health_interval_s: 5\n")
        await page.get_by_test_id("config-push").click()
        await expect(page.get_by_test_id("desired-version")).to_have_text("1")
        await expect(page.get_by_test_id("applied-version")).to_have_text("1", timeout=30_000)
        await expect(page.get_by_test_id("config-state")).to_have_attribute("data-in-sync", "1")
        await screenshot(page, "admin-node-config")

        # No names or badge ids on a technician's console pages.
        for path in ("/admin/enrolment", f"/admin/nodes?node={DEMO_NODE}"):
            await ready(page, path)
            text = await page.content()
            for secret in ("Ayu", "Budi", *BADGES.values()):
                assert secret not in text, (path, secret)
        for path in ("/admin/people", "/admin/badges", "/admin/webhooks", "/admin/audit"):
            response = await page.goto(path)
            assert response is not None and response.status == 403, path

        entries = await audit(ruang, actor="p-joko")
        assert [e["action"] for e in entries] == [
            "node_config.push",
            "enrolment_token.withdraw",
            "enrolment_token.create",
        ]
        assert token not in str(entries)


@contextlib.asynccontextmanager
async def hook_receiver() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A webhook endpoint on loopback that answers 204 and keeps what it got."""
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n")
             if line.lower().startswith(b"content-length")), 0,
        )  # fmt: skip
        received.append(await reader.readexactly(length))
        writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    port = devservers.free_port()
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        yield port, received


async def test_security_manages_door_access_and_reads_the_audit_admin_runs_webhooks(
    tmp_path: Path, browser: Browser
) -> None:
    async with (
        hook_receiver() as (port, received),
        running_ruang(tmp_path, webhook_allowed_hosts=["127.0.0.1"]) as ruang,
    ):
        page = await signed_in(ruang, browser, "p-keamanan", ["security"])
        await page.goto("/admin")
        await expect(page).to_have_url(f"{ruang.base_url}/admin/access")
        await wait_in_page(page, READY)
        await page.get_by_test_id("door-id").fill("ikn-door-lobby")
        await page.get_by_test_id("door-name").fill("Pintu lobi")
        await page.get_by_role("button", name="Simpan pintu").click()
        await expect(page.locator("tr[data-door='ikn-door-lobby']")).to_be_visible()
        await page.get_by_test_id("group-id").fill("g-pupr")
        await page.get_by_test_id("group-name").fill("Pegawai PUPR")
        await page.get_by_test_id("group-value").fill("Kementerian PUPR")
        await page.get_by_role("button", name="Simpan grup").click()
        await expect(page.locator("tr[data-group='g-pupr']")).to_be_visible()
        await page.get_by_test_id("grant-group").select_option("g-pupr")
        await page.get_by_test_id("grant-door").select_option("ikn-door-lobby")
        await page.get_by_role("button", name="Beri akses").click()
        grant = page.locator("tr[data-grant][data-group='g-pupr']")
        await expect(grant).to_contain_text("07:00–19:00")
        holiday = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
        await page.get_by_test_id("holiday-day").fill(holiday)
        await page.get_by_test_id("holiday-name").fill("Hari besar")
        await page.get_by_role("button", name="Tambah hari libur").click()
        await expect(page.get_by_test_id("holiday-table")).to_contain_text(holiday)
        await screenshot(page, "admin-access")
        r = await ruang.admin.get("/api/v1/access/grants")
        assert [(g["group_id"], g["door_id"]) for g in r.json()] == [("g-pupr", "ikn-door-lobby")]

        # The security role reads the audit of its site: its own changes, filtered.
        await ready(page, "/admin/audit")
        table = page.get_by_test_id("audit-table")
        await expect(table.locator("tbody tr")).to_have_count(4)
        await page.get_by_test_id("audit-action").fill("access_group")
        await page.get_by_role("button", name="Cari").click()
        await expect(table.locator("tbody tr")).to_have_count(1)
        await expect(table).to_contain_text("access_group:g-pupr")
        await screenshot(page, "admin-audit")
        response = await page.goto("/admin/webhooks")
        assert response is not None and response.status == 403

        # Admin: a webhook, a booking event delivered to it, the delivery log in the page.
        admin = await ruang.page(browser, "p-root", "admin", locale="en-GB")
        await ready(admin, "/admin/webhooks?lang=en")
        await admin.get_by_test_id("hook-url").fill(f"http://127.0.0.1:{port}/ruang")
        await admin.get_by_role("button", name="Subscribe").click()
        await expect(admin.get_by_test_id("hook-secret").locator("code")).not_to_be_empty()
        desk = "L1-D02"  # reservable in the sample layout
        start = datetime.now(UTC) + timedelta(days=1)
        r = await ruang.admin.post(
            "/api/v1/bookings",
            json={
                "desk_id": desk,
                "person_id": "p-ayu",
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=2)).isoformat(),
            },
        )
        assert r.status_code == 201, r.text

        async def delivered() -> bool:
            return bool(received)

        await eventually(delivered, timeout=20, what="webhook delivered")
        await admin.locator("[data-action=log]").click()
        log = admin.get_by_test_id("delivery-table")
        await expect(log).to_contain_text("booking.created")
        await expect(log).to_contain_text("Delivered")
        await screenshot(admin, "admin-webhooks")
        entries = await audit(ruang, action="webhook")
        assert [e["action"] for e in entries] == ["webhook.create"]
        assert entries[0]["detail"]["url"] == f"http://127.0.0.1:{port}/ruang"
