"""`ruang demo` as a user runs it: prints the URL, desks change state, Ctrl-C stops it cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx

from ruang.devservers import free_port
from tests.helpers import eventually


async def test_demo_prints_url_shows_desks_changing_and_node_online_then_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUANG_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ruang.cli", "demo", "--port", str(port), "--desks", "24",
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
        async with httpx.AsyncClient(base_url=url) as client:

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
            page = await client.get("/")
            assert page.status_code == 200 and "Ruang" in page.text
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        try:
            code = await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError("demo did not stop within 20 s of Ctrl-C") from None
        await reader
    assert code == 0, "".join(output)
    assert "Traceback" not in "".join(output)


async def _printed(output: list[str], url: str) -> bool:
    return any(url in line for line in output)


async def _changed(probe, first: set[str]) -> bool:  # type: ignore[no-untyped-def]
    return await probe() != first
