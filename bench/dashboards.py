"""Floor map in Chromium: render time of a 500-desk floor, and tap-to-map latency.

Live latency: a badge tap on a simulated desk unit (pty) goes through the edge
agent, Mosquitto, the cloud's ingestion and commit, the live hub and the
server-sent event stream to the open map page; the figure is tap to the desk's
cell showing its new state (checked in, then free again on the next tap).

The stack is the browser tests' (`tests.dashboards.conftest.running_ruang`:
Mosquitto, the cloud under uvicorn on loopback, SQLite) with a generated layout
holding one 500-desk floor. Debian's Chromium (headless, via Playwright) opens
`/map` for that floor as a facility manager LOADS times, each in a fresh
profile ("cold": no HTTP cache, a new renderer process), then LOADS times in
one tab ("warm"). The figure per load is the `ruang-map-rendered`
performance mark (map.js sets it in the frame after the SVG went in), which
is measured from the navigation start: it includes the page shell, the site
tree and map API calls, building the SVG, style, layout and first paint.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
from pathlib import Path
from typing import Any

import yaml

FLOOR = "BIG-L1"
DESKS = 500
LOADS = 10
ZONES = 5
COLUMNS = 25


def write_big_floor_layout(path: Path, desks: int = DESKS, *, site: str = "ikn-kipp") -> Path:
    """A layout YAML with one floor of `desks` desks in a grid (cloud/buildings/layout.py's schema).

    Same site id as the sample, so the browser tests' facility manager manages it.
    """
    rows = -(-desks // COLUMNS)
    width, height = 2.0 + COLUMNS * 2.0, 5.0 + rows * 1.4
    per_zone = -(-desks // ZONES)
    zones: list[dict[str, Any]] = []
    for z in range(ZONES):
        zone: dict[str, Any] = {"id": f"{FLOOR}-Z{z + 1}", "name": f"Zona {z + 1}", "desks": []}
        if z % 2:
            zone["reserved_for_agency"] = f"Instansi {z}"
        zones.append(zone)
    for i in range(desks):
        row, col = divmod(i, COLUMNS)
        zones[i // per_zone]["desks"].append(
            {
                "id": f"BIG-D{i + 1:03d}",
                "mode": "drop_in" if i % 7 == 0 else "reservable",
                "x": 1.0 + col * 2.0,
                "y": 1.0 + row * 1.4,
            }
        )
    zones[0]["rooms"] = [
        {
            "id": f"{FLOOR}-R1",
            "name": "Ruang Rapat Besar",
            "capacity": 20,
            "x": 1.0,
            "y": height - 3.5,
            "w": 8.0,
            "h": 2.5,
        }
    ]
    layout = {
        "site": {"id": site, "name": "Gedung uji 500 meja", "timezone": "Asia/Makassar"},
        "buildings": [
            {
                "id": "BIG",
                "name": "Gedung Besar",
                "floors": [
                    {
                        "id": FLOOR,
                        "level": 1,
                        "name": "Lantai Besar",
                        "node": "big-node",
                        "geometry": {
                            "width_m": width,
                            "height_m": height,
                            "outline": [[0, 0], [width, 0], [width, height], [0, height]],
                        },
                        "zones": zones,
                    }
                ],
            }
        ],
    }
    path.write_text(yaml.safe_dump(layout, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


# Milestones of one load, ms since navigation start: the page shell parsed, the
# site tree and the map JSON in, the SVG in the document, the frame painted.
STEPS = ("dom_content_loaded", "tree", "data", "built")
_MARKS_JS = """() => {
  const mark = (n) => performance.getEntriesByName('ruang-map-' + n)[0].startTime;
  const nav = performance.getEntriesByType('navigation')[0];
  return {dom_content_loaded: nav.domContentLoadedEventEnd, tree: mark('tree'),
          data: mark('data'), built: mark('built'), rendered: mark('rendered')};
}"""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


async def _load(page: Any, url: str) -> dict[str, float]:
    await page.goto(url)
    from tests.dashboards.conftest import wait_in_page

    await wait_in_page(page, "() => performance.getEntriesByName('ruang-map-rendered').length > 0")
    marks: dict[str, float] = await page.evaluate(_MARKS_JS)
    cells = await page.locator(".floor-svg .desk").count()
    assert cells == DESKS, cells
    return marks


def _figures(prefix: str, loads: list[dict[str, float]]) -> dict[str, Any]:
    rendered = [m["rendered"] for m in loads]
    return {
        f"{prefix}_render_ms_p50": statistics.median(rendered),
        f"{prefix}_render_ms_p95": _percentile(rendered, 95),
        f"{prefix}_render_ms_max": max(rendered),
        # Where the time goes (p50, ms since navigation start).
        **{
            f"{prefix}_step_{name}_ms_p50": statistics.median(m[name] for m in loads)
            for name in STEPS
        },
        # The part map.js itself controls: JSON in hand to SVG in the document.
        f"{prefix}_build_ms_p50": statistics.median(m["built"] - m["data"] for m in loads),
    }


async def _measure(loads: int) -> dict[str, Any]:
    import os
    import shutil

    from playwright.async_api import async_playwright

    from tests.dashboards.conftest import CHROMIUM_ARGS, running_ruang

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        return {"skipped": "chromium is not installed (apt-get install chromium)"}
    url = f"/map?floor={FLOOR}"
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        layout = write_big_floor_layout(tmp_path / "big.yaml")
        async with running_ruang(tmp_path, layout=layout) as ruang, async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS
            )
            try:
                # Cold: a fresh profile per load (no HTTP cache, a new renderer process),
                # like the first visit of the day. The very first load warms the server.
                cold: list[dict[str, float]] = []
                for _ in range(loads + 1):
                    page = await ruang.page(browser, "p-siti", "facility_manager")
                    cold.append(await _load(page, url))
                    await page.context.close()
                # Warm: the same tab loading the map again (a reload, a shared link).
                page = await ruang.page(browser, "p-siti", "facility_manager")
                warm = [await _load(page, url) for _ in range(loads + 1)]
                await page.context.close()
            finally:
                await browser.close()
    return {
        "desks": DESKS,
        "loads": loads,
        "loadavg_1min_before": load_before,
        "loadavg_1min_after": os.getloadavg()[0],
        **_figures("cold", cold[1:]),
        "cold_first_load_ms": cold[0]["rendered"],
        **_figures("warm", warm[1:]),
    }


async def _live_latency(taps: int) -> dict[str, Any]:
    import shutil
    import time

    from playwright.async_api import async_playwright

    from tests.dashboards.conftest import BADGES, CHROMIUM_ARGS, running_ruang, wait_in_page

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        return {"skipped": "chromium is not installed (apt-get install chromium)"}
    desk, badge = "L1-D01", BADGES["p-ayu"]
    shown = (
        f"(s) => document.querySelector('.floor-svg .desk[data-id=\"{desk}\"]')"
        "?.dataset.state === s"
    )
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with running_ruang(Path(tmp), desks=2) as ruang, async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = await ruang.page(browser, "p-siti", "facility_manager")
                await page.goto("/map?building=A1&floor=A1-L1")
                await wait_in_page(page, shown, "free")
                for i in range(taps):
                    want = "checked_in" if i % 2 == 0 else "free"
                    start = time.perf_counter()
                    await ruang.sims[desk].tap(badge)
                    await wait_in_page(page, shown, want)
                    latencies.append((time.perf_counter() - start) * 1000)
                    # Not faster than a person: the edge debounces repeated taps.
                    await asyncio.sleep(0.3)
            finally:
                await browser.close()
    return {
        "live_taps": taps,
        "tap_to_map_ms_p50": statistics.median(latencies),
        "tap_to_map_ms_p95": _percentile(latencies, 95),
        "tap_to_map_ms_max": max(latencies),
    }


def run(loads: int = LOADS, taps: int = 30) -> dict[str, Any]:
    async def both() -> dict[str, Any]:
        return {**await _measure(loads), **await _live_latency(taps)}

    return asyncio.run(both())
