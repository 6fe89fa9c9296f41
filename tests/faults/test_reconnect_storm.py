"""200 nodes reconnecting after a broker restart spread their connects over time (full jitter)."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import Counter
from pathlib import Path

import pytest

from edge.settings import EdgeSettings
from edge.uplink import Uplink
from launch import devservers
from ruang import contract
from tests.helpers import eventually

pytestmark = pytest.mark.servers

NODES = 200
DOWN_S = 2.0
BUCKET_S = 0.1


def _uplink(tmp_path: Path, node: str, url: str) -> Uplink:
    async def ignore(_: contract.Message) -> None:
        return None

    settings = EdgeSettings(node_id=node, mqtt_url=url, state_dir=tmp_path / node)
    return Uplink(
        settings,
        birth=lambda b: contract.NodeState(node=node, online=True, bdseq=b),
        on_command=ignore,
    )


async def test_200_nodes_spread_their_reconnects_after_a_broker_restart_instead_of_a_stampede(
    tmp_path: Path,
) -> None:
    with devservers.mosquitto() as broker:
        uplinks = [_uplink(tmp_path, f"storm-{i:03d}", broker.url) for i in range(NODES)]
        tasks = [asyncio.create_task(u.run()) for u in uplinks]
        try:

            async def all_up() -> bool:
                return all(u.connected.is_set() for u in uplinks)

            await eventually(all_up, timeout=60, what="all 200 nodes connected")
            broker.stop()

            async def all_down() -> bool:
                return not any(u.connected.is_set() for u in uplinks)

            await eventually(all_down, what="all 200 nodes noticed the broker gone")
            await asyncio.sleep(DOWN_S)
            back = time.monotonic()
            # In a thread: start() waits for the port, and the nodes' retries must keep
            # running on this loop meanwhile, or they would be bunched up behind it.
            await asyncio.to_thread(broker.start)

            async def reconnected(u: Uplink) -> float:
                await u.connected.wait()
                return time.monotonic() - back

            async with asyncio.timeout(90):
                delays = sorted(await asyncio.gather(*(reconnected(u) for u in uplinks)))
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for u in uplinks:
                u.outbox.close()

    spread = delays[-1] - delays[0]
    busiest = max(Counter(int(d / BUCKET_S) for d in delays).values())
    print(
        f"reconnect spread of {NODES} nodes: min {delays[0]:.2f} s, "
        f"p50 {statistics.median(delays):.2f} s, p90 {delays[int(0.9 * NODES)]:.2f} s, "
        f"max {delays[-1]:.2f} s, busiest {BUCKET_S * 1000:.0f} ms window {busiest} nodes"
    )
    # The shape, not the speed: the connects are spread over more than a second, and so
    # are the middle 80 % of them (a stampede puts those within a few hundred ms). A busy
    # machine only stretches the spread, so this does not flake under load the way a
    # per-window count does (a starved loop completes many connects in one window).
    assert spread > 1.0
    assert delays[int(0.9 * NODES)] - delays[int(0.1 * NODES)] > 1.0
