"""Browser-test fixtures: a running Ruang (broker, cloud, optional edge + desk simulators)
and Debian's Chromium driven by Playwright.

Chromium is the system one (`apt-get install chromium`; Playwright's own browser
download is not used), launched headless with its call-home features off. The
cloud runs under uvicorn on a free loopback port with the sample IKN building and
a small roster, like `ruang demo`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from cloud.buildings.layout import SAMPLE_LAYOUT
from cloud.people.auth import SESSION_COOKIE, mint_dev_token
from cloud.settings import CloudSettings
from edge.agent import EdgeAgent
from edge.settings import DeskUnitConfig, EdgeSettings
from launch import devservers
from simulators.deskunit import DeskUnitSimulator
from simulators.floor import SimulatedFloor
from tests.cloud.conftest import serving
from tests.helpers import auth_headers, eventually, keep_history, missing

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-sync",
    "--metrics-recording-only",
    "--disable-domain-reliability",
]
SCREENSHOT_DIR = Path(os.environ.get("RUANG_SCREENSHOT_DIR", "artifacts/screenshots"))
SITE = "ikn-kipp"
DEMO_NODE = "ikn-demo-l1"

# A small roster for the sample building: who signs in, whose badges tap.
ROSTER = (
    "id,kind,name,role,agency,nip\n"
    "p-siti,asn,Siti Rahmawati,facility_manager,Otorita IKN,198001012005012001\n"
    "p-joko,asn,Joko Prasetyo,technician,Otorita IKN,198502022010011002\n"
    "p-ayu,asn,Ayu Lestari,asn,Kementerian PUPR,199003032015032003\n"
    "p-budi,asn,Budi Santoso,asn,Kementerian Keuangan,199104042016041004\n"
)
BADGES = {"p-ayu": "04A1B2C3D4E5F6", "p-budi": "04B0B1B2B3B4B5"}


@dataclass
class Ruang:
    """A running cloud (and maybe an edge with simulated desks) for a browser to visit."""

    base_url: str
    settings: CloudSettings
    admin: httpx.AsyncClient
    broker: devservers.Mosquitto
    sims: dict[str, DeskUnitSimulator] = field(default_factory=dict)
    agent: EdgeAgent | None = None
    # What the browser refused under the Content-Security-Policy (checked at the end).
    csp_violations: list[str] = field(default_factory=list)

    def token(self, person: str, role: str) -> str:
        sites = [SITE] if role in ("facility_manager", "technician") else None
        return mint_dev_token(
            self.settings, person, [role], sites=sites, name=person.removeprefix("p-").title()
        )

    async def context(
        self, browser: Browser, person: str | None = None, role: str = "asn", **options: Any
    ) -> BrowserContext:
        """A fresh browser profile, signed in as `person` with `role` when given."""
        context = await browser.new_context(base_url=self.base_url, **options)
        context.on(
            "console",
            lambda message: (
                self.csp_violations.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        if person is not None:
            await context.add_cookies(
                [
                    {
                        "name": SESSION_COOKIE,
                        "value": self.token(person, role),
                        "url": self.base_url,
                        "httpOnly": True,
                        "sameSite": "Lax",
                    }
                ]
            )
        return context

    async def page(
        self, browser: Browser, person: str | None = None, role: str = "asn", **options: Any
    ) -> Page:
        context = await self.context(browser, person, role, **options)
        page = await context.new_page()
        page.set_default_timeout(15_000)
        return page


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        missing("chromium (apt-get install chromium)")
        raise AssertionError("unreachable")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@contextlib.asynccontextmanager
async def running_ruang(
    tmp_path: Path,
    database_url: str | None = None,
    *,
    layout: Path = SAMPLE_LAYOUT,
    desks: int = 0,
    roster: bool = True,
    edge_extra: dict[str, Any] | None = None,
    **cloud_extra: Any,
) -> AsyncIterator[Ruang]:
    """Broker + cloud (+ an edge with `desks` simulated desk units on the demo node).

    `edge_extra` goes into the edge's EdgeSettings (e.g. a short `health_interval_s`
    for views that need node health soon).
    """
    broker = devservers.Mosquitto(port=devservers.free_port(), workdir=tmp_path / "broker")
    broker.workdir.mkdir()
    broker.start()
    settings = CloudSettings(
        database_url=database_url or f"sqlite+aiosqlite:///{tmp_path}/cloud.sqlite3",
        mqtt_url=broker.url,
        mqtt_client_id=f"ruang-cloud-{tmp_path.name}",
        http_host="127.0.0.1",
        http_port=devservers.free_port(),
        telemetry_sqlite_path=tmp_path / "telemetry.sqlite3",
        auth_dev_key_path=tmp_path / "dev-key.pem",
        snapshot_key_path=tmp_path / "snapshot-key.pem",
        layout_file=layout,
        flush_interval_s=0.05,
        snapshot_debounce_s=0.05,
        **(keep_history() | cloud_extra),
    )
    edge_task: asyncio.Task[None] | None = None
    try:
        async with (
            serving(settings) as (base_url, _),
            httpx.AsyncClient(
                base_url=base_url, headers=auth_headers(settings), timeout=60
            ) as admin,
            contextlib.AsyncExitStack() as stack,
        ):
            r = (
                await admin.post(
                    "/api/v1/people/import", content=ROSTER, headers={"content-type": "text/csv"}
                )
                if roster
                else None
            )
            assert r is None or r.status_code == 200, r.text
            for person, uid in BADGES.items() if roster else ():
                r = await admin.post(
                    "/api/v1/badges", json={"kind": "nfc", "uid": uid, "person_id": person}
                )
                assert r.status_code == 201, r.text
            ruang = Ruang(base_url, settings, admin, broker)
            if desks:
                floor = await stack.enter_async_context(SimulatedFloor(count=desks, floor="L1"))
                key = tmp_path / "snapshot.pub"
                key.write_bytes((await admin.get("/api/v1/snapshot-key")).content)
                agent = EdgeAgent(
                    EdgeSettings(
                        node_id=DEMO_NODE,
                        mqtt_url=broker.url,
                        state_dir=tmp_path / "edge",
                        desk_units=[DeskUnitConfig(desk=d, port=p) for d, p in floor.paths.items()],
                        snapshot_public_key=key,
                        **(edge_extra or {}),
                    )
                )
                edge_task = asyncio.create_task(agent.run())
                ruang.sims, ruang.agent = floor.sims, agent

                async def has_snapshot() -> bool:
                    snap = agent.book.snapshot
                    return snap is not None and BADGES["p-ayu"] in snap.badges

                await eventually(has_snapshot, timeout=30, what="signed snapshot at the edge")
            try:
                yield ruang
                # Every browser test also proves its pages work under the CSP.
                assert ruang.csp_violations == [], ruang.csp_violations
            finally:
                if edge_task is not None:
                    edge_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await edge_task
    finally:
        broker.stop()


async def wait_in_page(
    page: Page,
    predicate: str,
    arg: Any = None,
    *,
    timeout_ms: float = 20_000,
) -> None:
    """Waits until the JS `predicate(arg)` holds in the page, checked every animation frame.

    Playwright's `wait_for_function` builds its predicate with `new Function` inside
    the page, which the dashboards' CSP (no 'unsafe-eval') rightly refuses; this sends
    the whole function once through the devtools protocol instead, which CSP does not
    govern. The timeout bounds a wait for the page to settle, not a performance figure.
    """
    await page.evaluate(
        f"""(arg) => new Promise((resolve, reject) => {{
            const predicate = {predicate};
            const started = performance.now();
            const tick = () => {{
                if (predicate(arg)) resolve(true);
                else if (performance.now() - started > {timeout_ms})
                    reject(new Error("page condition not met in {timeout_ms} ms"));
                else requestAnimationFrame(tick);
            }};
            tick();
        }})""",
        arg,
    )


async def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Saves a screenshot of the view under artifacts/screenshots (docs/ keeps the best)."""
    if not re.fullmatch(r"[a-z0-9_-]+", name):
        raise ValueError(name)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    return path
