"""`ruang demo` as a user runs it: prints the URL and how to sign in, desks change state, the
facility manager's map shows the roster's names and every booking outcome, Ctrl-C stops it."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from pathlib import Path

import httpx
from playwright.async_api import async_playwright, expect

from launch.devservers import free_port
from tests.dashboards.conftest import CHROMIUM_ARGS, screenshot
from tests.helpers import eventually, missing


async def test_demo_prints_url_shows_desks_changing_and_node_online_then_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUANG_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "launch.cli", "demo", "--port", str(port), "--desks", "24",
        "--speed", "1200", "--data-dir", str(tmp_path / "demo"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    output: list[str] = []

    async def read_output() -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            output.append(line.decode(errors="replace"))

    reader = asyncio.create_task(read_output())
    try:
        url = f"http://127.0.0.1:{port}"
        await eventually(lambda: _printed(output, url), timeout=60, what="demo printed its URL")
        # A generous read timeout: on a loaded CI machine the demo (simulated floor,
        # history backfill, ingestion) can take a while over one page; this bounds a
        # hang, it does not time the demo.
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            # The dashboard URL printed leads a browser to the sign-in page.
            page = await client.get("/", follow_redirects=True)
            assert page.status_code == 200 and "Ruang" in page.text
            assert page.url.path == "/login"
            assert any("dev login" in line and f"{url}/login" in line for line in output)

            # The roster is there to pick from; the facility manager signs in, and her
            # session cookie is what the API calls below carry (desks and nodes need a role).
            async def signed_in() -> bool:
                r = await client.post("/login/dev", data={"person": "p-siti"})
                return r.status_code == 303 and r.headers["location"] == "/map"

            await eventually(signed_in, timeout=30, what="dev login as the facility manager")
            page = await client.get("/login")
            assert "Siti Rahmawati" in page.text and "Kementerian PUPR" in page.text
            async with httpx.AsyncClient(base_url=url) as anonymous:
                assert (await anonymous.get("/api/v1/desks")).status_code == 401

            async def node_online() -> bool:
                nodes = (await client.get("/api/v1/nodes")).json()
                return any(n["id"] == "ikn-demo-l1" and n["online"] for n in nodes)

            await eventually(node_online, timeout=30, what="demo edge node online")

            async def occupied_desks() -> set[str]:
                desks = (await client.get("/api/v1/desks")).json()
                # The sample building's three floors; the simulated one is served by the demo node.
                assert len([d for d in desks if d["node"] == "ikn-demo-l1"]) == 24
                return {d["id"] for d in desks if d["state"] == "occupied"}

            first = await eventually(occupied_desks, timeout=30, what="a desk checked in")
            await eventually(
                lambda: _changed(occupied_desks, first), timeout=30, what="desks changing state"
            )
            roster = set(_ROSTER_NAMES)

            async def names_on_the_map() -> set[str]:
                desks = (await client.get("/api/v1/floors/A1-L1/map")).json()["desks"]
                seen = {d["occupant"] for d in desks if d["occupant"]}
                assert seen <= roster, seen - roster
                states = {d["state"] for d in desks}
                # Checked in (by a badge of the roster), still booked, nobody-tapped, out of order.
                return (
                    seen if {"checked_in", "booked", "occupied", "unavailable"} <= states else set()
                )

            await eventually(names_on_the_map, timeout=60, what="names and states on the map")

            async def rooms_sensed() -> bool:
                # The meeting rooms' radar simulators report through the edge's radar driver.
                rooms = (await client.get("/api/v1/floors/A1-L1/map")).json()["rooms"]
                return {r["id"]: r["state"] for r in rooms}.keys() >= {
                    "A1-L1-R1",
                    "A1-L1-R2",
                } and all(r["state"] in ("occupied", "free") for r in rooms)

            await eventually(rooms_sensed, timeout=60, what="meeting rooms sensed by radar")
            await _facility_manager_sees_the_map(url)

            async def outcomes() -> bool:
                rows = (await client.get("/api/v1/bookings")).json()
                by_status = {r["status"] for r in rows}
                return {"no_show", "checked_in", "booked"} <= by_status

            await eventually(outcomes, timeout=60, what="no-shows released, bookers checked in")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        try:
            # Bounds a hung stop, not its speed: on a loaded CI machine the graceful
            # stop of broker, cloud, edge and simulators has taken over 20 s.
            code = await asyncio.wait_for(proc.wait(), STOP_BOUND_S)
        except TimeoutError:
            stacks = await _stacks(proc.pid)  # where it hangs, for the report
            proc.kill()
            await proc.wait()
            raise AssertionError(
                f"demo did not stop within {STOP_BOUND_S:g} s of Ctrl-C; its threads:\n{stacks}"
                f"\nits output:\n{''.join(output)[-3000:]}"
            ) from None
        await reader
    assert code == 0, "".join(output)
    assert "Traceback" not in "".join(output)


STOP_BOUND_S = 45.0


async def _stacks(pid: int) -> str:
    """py-spy's dump of a live process's threads and their Python stacks (the dev extra)."""
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        return "(py-spy not installed)"
    dump = await asyncio.create_subprocess_exec(
        str(spy), "dump", "--pid", str(pid), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(dump.communicate(), 30)
    except TimeoutError:
        dump.kill()
        return "(py-spy dump timed out)"
    return out.decode(errors="replace")


_ROSTER_NAMES = [
    line.split(",")[2]
    for line in (
        Path(__file__).resolve().parents[2]
        / "cloud"
        / "buildings"
        / "sample_layout"
        / "ikn-people.csv"
    )
    .read_text(encoding="utf-8")
    .splitlines()[1:]
]


async def _facility_manager_sees_the_map(url: str) -> None:
    """What the printed URL gives a browser: sign in by dev login, the live map with names."""
    executable = shutil.which("chromium")
    if executable is None:
        missing("chromium (apt-get install chromium)")
        return
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page(base_url=url, viewport={"width": 1280, "height": 900})
            await page.goto("/")
            await page.select_option("#person", "p-siti")
            await page.get_by_role("button", name="Masuk").click()
            await page.wait_for_url("**/map**")
            await expect(page.locator(".floor-svg .desk")).to_have_count(24)
            await expect(
                page.locator(".floor-svg .desk[data-state=checked_in]").first
            ).to_be_visible()
            await screenshot(page, "demo-map")
        finally:
            await browser.close()


async def _printed(output: list[str], url: str) -> bool:
    return any(url in line for line in output)


async def _changed(probe, first: set[str]) -> bool:  # type: ignore[no-untyped-def]
    return await probe() != first
