"""`ruang demo`: the whole system in one process, on one asyncio loop.

An MQTT broker (embedded amqtt unless RUANG_MQTT_URL names one), the cloud on
SQLite, an edge agent, and a simulated floor of desk units on pseudo-terminals
playing an office day on an accelerated clock. Ctrl-C cancels the one task
tree; every part closes its own resources (ptys, sockets, files) on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from ruang.devservers import free_port

log = logging.getLogger(__name__)

DEMO_NODE = "ikn-demo-l1"


async def run_demo(
    desks: int = 24, speed: float = 120.0, http_port: int = 8000, data_dir: Path = Path("var/demo")
) -> None:
    from cloud.layout import SAMPLE_LAYOUT
    from cloud.main import serve
    from cloud.settings import CloudSettings
    from edge.agent import EdgeAgent
    from edge.settings import DeskUnitConfig, EdgeSettings
    from ruang.embedded_broker import embedded_broker
    from simulators.floor import SimulatedFloor

    if desks < 1:
        raise ValueError("the demo needs at least one desk")
    # A demo starts from an empty building: old state would disagree with the new edge.
    data_dir.mkdir(parents=True, exist_ok=True)
    for old in data_dir.glob("*.sqlite3*"):
        old.unlink()
    port = http_port or free_port()

    async with contextlib.AsyncExitStack() as stack:
        mqtt_url = os.environ.get("RUANG_MQTT_URL")
        if mqtt_url:
            print(f"MQTT broker: {mqtt_url} (from RUANG_MQTT_URL)", flush=True)
        else:
            mqtt_url = await stack.enter_async_context(embedded_broker())
            print(f"MQTT broker: embedded amqtt on {mqtt_url}", flush=True)

        floor = await stack.enter_async_context(SimulatedFloor(count=desks))
        cloud_settings = CloudSettings(
            database_url=f"sqlite+aiosqlite:///{data_dir.resolve()}/cloud.sqlite3",
            mqtt_url=mqtt_url,
            http_host="127.0.0.1",
            http_port=port,
            telemetry_sqlite_path=data_dir.resolve() / "telemetry.sqlite3",
            layout_file=SAMPLE_LAYOUT,
        )
        edge_settings = EdgeSettings(
            node_id=DEMO_NODE,
            mqtt_url=mqtt_url,
            state_dir=data_dir / "edge",
            health_interval_s=10,
            desk_units=[DeskUnitConfig(desk=desk, port=path) for desk, path in floor.paths.items()],
        )
        ready = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(serve(cloud_settings, ready=ready), name="cloud")
            await ready.wait()
            agent = EdgeAgent(edge_settings)
            tg.create_task(agent.run(), name="edge")
            url = f"http://127.0.0.1:{port}"
            print(f"Ruang demo: {desks} simulated desks on node {DEMO_NODE}", flush=True)
            print(f"  dashboard  {url}/", flush=True)
            print(
                f"  API        {url}/api/v1/desks   {url}/api/v1/nodes   docs: {url}/docs",
                flush=True,
            )
            print("Press Ctrl-C to stop.", flush=True)
            await agent.uplink.connected.wait()
            tg.create_task(floor.run_office_days(speed=speed), name="scenario")
