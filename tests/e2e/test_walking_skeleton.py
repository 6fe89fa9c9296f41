"""The walking skeleton end to end, on real servers.

desk unit simulator (pty) -> edge agent -> Mosquitto -> cloud ingestion -> SQL
-> GET /api/v1/desks, and presence telemetry -> VictoriaMetrics.

The cloud creates no desk from events (cloud/ingest/bindings.py): each test binds the
simulated desks to its node with a layout before the edge agent starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from cloud.db.engine import make_engine
from cloud.settings import CloudSettings
from edge.agent import EdgeAgent
from edge.devices.deskunit import DeskUnitConfig
from edge.settings import EdgeSettings
from firmware_bridge.deskunit import LedPattern
from launch import devservers
from launch.webapp import serve
from simulators.floor import SimulatedFloor
from tests.cloud.binding_helpers import bind
from tests.helpers import auth_headers, eventually

pytestmark = pytest.mark.servers

BADGE = bytes.fromhex("04A1B2C3D4E5F6")


@contextlib.asynccontextmanager
async def running_cloud(settings: CloudSettings) -> AsyncIterator[httpx.AsyncClient]:
    ready = asyncio.Event()
    task = asyncio.create_task(serve(settings, ready=ready))
    try:
        async with asyncio.timeout(30):
            await ready.wait()
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.http_port}", headers=auth_headers(settings)
        ) as client:
            yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def bind_desks(settings: CloudSettings, node_id: str, desks: list[str]) -> None:
    """Binds `desks` to `node_id` in the running cloud's database (a layout)."""
    engine = make_engine(settings.database_url)
    try:
        await bind(engine, node_id, desks)
    finally:
        await engine.dispose()


def cloud_settings(
    tmp_path: Path, database_url: str, mqtt_url: str, **extra: object
) -> CloudSettings:
    return CloudSettings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        mqtt_client_id=f"ruang-cloud-{tmp_path.name}",
        http_port=devservers.free_port(),
        telemetry_sqlite_path=tmp_path / "telemetry.sqlite3",
        **extra,  # type: ignore[arg-type]
    )


async def desk(client: httpx.AsyncClient, desk_id: str) -> dict[str, object]:
    response = await client.get("/api/v1/desks")
    response.raise_for_status()
    return next((d for d in response.json() if d["id"] == desk_id), {})


async def node(client: httpx.AsyncClient, node_id: str) -> dict[str, object]:
    response = await client.get("/api/v1/nodes")
    response.raise_for_status()
    return next((n for n in response.json() if n["id"] == node_id), {})


async def test_badge_tap_on_simulated_desk_reaches_api_and_presence_reaches_victoria(
    tmp_path: Path,
    database_url: str,
    mosquitto_server: devservers.Mosquitto,
    victoria: devservers.VictoriaMetrics,
) -> None:
    settings = cloud_settings(tmp_path, database_url, mosquitto_server.url, influx_url=victoria.url)
    node_id = f"e2e-{uuid.uuid4().hex[:8]}"
    async with SimulatedFloor(count=2) as floor, running_cloud(settings) as client:
        desk_id, sim = next(iter(floor.sims.items()))
        await bind_desks(settings, node_id, list(floor.paths))
        agent = EdgeAgent(
            EdgeSettings(
                node_id=node_id,
                mqtt_url=mosquitto_server.url,
                state_dir=tmp_path / "edge",
                desk_units=[DeskUnitConfig(desk=d, port=p) for d, p in floor.paths.items()],
            )
        )
        edge_task = asyncio.create_task(agent.run())
        try:
            # The layout already named the node (offline): wait for its birth.
            async def born() -> dict[str, object]:
                n = await node(client, node_id)
                return n if n.get("online") is True else {}

            online = await eventually(born, what="node online")
            assert online["online"] is True

            await sim.set_presence(True)
            await sim.tap(BADGE)
            await sim.wait_led(
                lambda led: led.pattern == LedPattern.SOLID and led.g > 0, timeout=10
            )

            async def checked_in() -> dict[str, object]:
                d = await desk(client, desk_id)
                return d if d.get("state") == "occupied" else {}

            seen = await eventually(checked_in, what="desk occupied in the API")
            assert seen["occupant_badge"] == BADGE.hex().upper()
            assert seen["checked_in_at"]
            assert seen["present"] is True

            async def presence_point() -> list[dict[str, object]]:
                return await asyncio.to_thread(
                    victoria.export,
                    f'{{__name__="presence_present",desk="{desk_id}",node="{node_id}"}}',
                )

            series = await eventually(presence_point, what="presence point in VictoriaMetrics")
            assert series[0]["metric"]["node"] == node_id  # type: ignore[index]
            assert 1 in series[0]["values"]  # type: ignore[operator]

            # Tap again: checked out, LED off, desk free.
            await sim.tap(BADGE)
            await sim.wait_led(lambda led: led.pattern == LedPattern.OFF, timeout=10)

            async def freed() -> bool:
                return (await desk(client, desk_id)).get("state") == "free"

            await eventually(freed, what="desk free again")
        finally:
            edge_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await edge_task


async def test_led_command_posted_to_cloud_api_reaches_the_desk_unit(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    settings = cloud_settings(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path}/c.sqlite3", mosquitto_server.url
    )
    async with SimulatedFloor(count=1) as floor, running_cloud(settings) as client:
        desk_id, sim = next(iter(floor.sims.items()))
        await bind_desks(settings, "e2e-led", [desk_id])
        agent = EdgeAgent(
            EdgeSettings(
                node_id="e2e-led",
                mqtt_url=mosquitto_server.url,
                state_dir=tmp_path / "edge",
                desk_units=[DeskUnitConfig(desk=desk_id, port=floor.paths[desk_id])],
            )
        )
        edge_task = asyncio.create_task(agent.run())
        try:
            await eventually(lambda: desk(client, desk_id), what="desk known to the cloud")
            response = await client.post(
                f"/api/v1/desks/{desk_id}/led",
                json={"r": 0, "g": 0, "b": 255, "pattern": "pulse", "duration_s": 0},
            )
            assert response.status_code == 202, response.text
            led = await sim.wait_led(lambda led: led.b == 255, timeout=10)
            assert led.pattern == LedPattern.PULSE
        finally:
            edge_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await edge_task


async def test_killed_edge_process_shows_offline_through_its_last_will(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    settings = cloud_settings(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path}/c.sqlite3", mosquitto_server.url
    )
    config = tmp_path / "edge.yaml"
    async with SimulatedFloor(count=1) as floor, running_cloud(settings) as client:
        config.write_text(
            yaml.safe_dump(
                {
                    "node_id": "e2e-will",
                    "mqtt_url": mosquitto_server.url,
                    "mqtt_keepalive_s": 2,
                    "state_dir": str(tmp_path / "edge"),
                    "desk_units": [{"desk": d, "port": p} for d, p in floor.paths.items()],
                }
            )
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "launch.cli",
            "edge",
            "run",
            "--config",
            str(config),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "RUANG_LOG_LEVEL": "WARNING"},
        )
        try:

            async def online() -> bool:
                return (await node(client, "e2e-will")).get("online") is True

            await eventually(online, what="edge process online")
            proc.send_signal(signal.SIGKILL)
            await proc.wait()

            async def offline() -> bool:
                return (await node(client, "e2e-will")).get("online") is False

            # The broker sends the will once it notices the dead TCP connection.
            await eventually(offline, timeout=30, what="node offline after SIGKILL")
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
