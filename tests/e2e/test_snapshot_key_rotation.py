"""A snapshot key rotation end to end: the real cloud (production keys) under uvicorn, its
snapshot publisher, a private Mosquitto and two in-process edge agents.

Step 2 of docs/operations.md: the cloud signs with the old key and serves old+new at
/api/v1/snapshot-keys; a node trusting that bundle takes the old-signed snapshot, a
node given only the new key refuses it (counted as `untrusted_key`). Step 3: the cloud
restarts on the new key; both nodes take its snapshots.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloud.buildings.layout import apply_layout, parse_layout
from cloud.db.engine import make_engine
from cloud.keys import generate_key_set
from cloud.settings import CloudSettings
from edge.agent import EdgeAgent
from edge.settings import EdgeSettings
from launch import devservers
from tests.e2e.test_desk_booking import DESK_B, LAYOUT, NODE
from tests.e2e.test_walking_skeleton import bind_desks, cloud_settings, running_cloud
from tests.helpers import eventually

pytestmark = pytest.mark.servers

NEW_ONLY = "e2e-rot-new-only"


@contextlib.asynccontextmanager
async def agent_running(settings: EdgeSettings) -> AsyncIterator[EdgeAgent]:
    agent = EdgeAgent(settings)
    task = asyncio.create_task(agent.run())
    try:
        yield agent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_cloud_switches_snapshot_key_and_nodes_follow(tmp_path: Path) -> None:
    old = generate_key_set(tmp_path / "keys")
    new = generate_key_set(tmp_path / "keys-next", snapshot_only=True)
    old_pub, new_pub = old.files["snapshot_public_key"], new.files["snapshot_public_key"]
    broker = devservers.Mosquitto(port=devservers.free_port(), workdir=tmp_path / "broker")
    broker.workdir.mkdir()
    broker.start()
    base = cloud_settings(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path}/ruang.sqlite3",
        broker.url,
        environment="production",
        auth_dev_key_path=old.files["auth_key"],
        checkin_qr_secret_file=old.files["checkin_qr_secret"],
        visitor_pass_secret_file=old.files["visitor_pass_secret"],
        pseudonym_secret_file=old.files["pseudonym_secret"],
        snapshot_debounce_s=0.05,
    )

    def cloud(signing: Path, extra: Path) -> CloudSettings:
        return base.model_copy(
            update={
                "snapshot_key_path": signing,
                "snapshot_extra_public_keys": [extra],
                "http_port": devservers.free_port(),
            }
        )

    def node(name: str, trusted: Path) -> EdgeSettings:
        return EdgeSettings(
            node_id=name, mqtt_url=broker.url, state_dir=tmp_path / name,
            snapshot_public_key=trusted,
        )  # fmt: skip

    try:
        async with contextlib.AsyncExitStack() as agents:
            before = cloud(old.files["snapshot_key"], new_pub)
            async with running_cloud(before) as http:
                engine = make_engine(before.database_url)
                try:
                    await apply_layout(engine, parse_layout(LAYOUT))
                finally:
                    await engine.dispose()
                await bind_desks(before, NEW_ONLY, [DESK_B])
                bundle = await http.get("/api/v1/snapshot-keys")
                assert bundle.content == old_pub.read_bytes() + new_pub.read_bytes()
                (tmp_path / "bundle.pem").write_bytes(bundle.content)
                # The agents outlive this cloud process: they stay up across its restart.
                both = await agents.enter_async_context(
                    agent_running(node(NODE, tmp_path / "bundle.pem"))
                )
                only_new = await agents.enter_async_context(agent_running(node(NEW_ONLY, new_pub)))

                async def both_applied() -> int:
                    current = both.snapshots.current
                    return current.version if current is not None else 0

                old_version = await eventually(both_applied, what="old-signed snapshot applied")

                async def refused() -> bool:
                    return only_new.snapshots.refusals["untrusted_key"] > 0

                await eventually(refused, what="old-signed snapshot refused by the new-only node")
                assert only_new.snapshots.current is None

            # Step 3: the cloud restarts on the new key (the old one served as extra).
            async with running_cloud(cloud(new.files["snapshot_key"], old_pub)):

                async def both_newer() -> bool:
                    return await both_applied() > old_version

                await eventually(both_newer, what="new-signed snapshot applied (both)")

                async def only_new_applied() -> bool:
                    return only_new.snapshots.current is not None

                await eventually(only_new_applied, what="new-signed snapshot (new only)")
            assert both.snapshots.refusals["untrusted_key"] == 0
            assert both.snapshots.refusals["bad_signature"] == 0
    finally:
        broker.stop()
