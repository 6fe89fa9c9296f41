"""Power loss mid-write: the node starts on a damaged outbox, says so, delivers what survived.

tests/edge/test_outbox.py covers recovery at the outbox level; this is the agent
level: a writer process SIGKILLed during a burst, torn pages in the file, then an
EdgeAgent started on that state_dir with the broker up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from edge.outbox import FILE_NAME
from edge.settings import EdgeSettings
from launch import devservers
from tests.faults.support import REPO, Collector, background
from tests.helpers import eventually

pytestmark = pytest.mark.servers

NODE = "fault-power"
BURST = 37

_WRITER = """
import asyncio, sys
from pathlib import Path
from edge.outbox import Outbox
from ruang import contract

async def main() -> None:
    box = Outbox(Path(sys.argv[1]))
    i = 0
    while True:
        ids = []
        for _ in range(int(sys.argv[2])):
            box.put(contract.CheckIn(id=f"pw-{i:06d}", node=sys.argv[3], desk=f"D{i % 50:02d}",
                                     badge="04A1B2C3"))
            ids.append(f"pw-{i:06d}")
            i += 1
        await box.flushed()
        print(" ".join(ids), flush=True)
        await asyncio.sleep(0)

asyncio.run(main())
"""


async def _write_until_killed(path: Path, durable_target: int) -> list[str]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WRITER, str(path), str(BURST), NODE,
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    durable: list[str] = []
    try:
        while len(durable) < durable_target:
            line = await asyncio.wait_for(child.stdout.readline(), 30)
            assert line, "writer exited early"
            durable.extend(w.decode() for w in line.split())
    finally:
        child.send_signal(signal.SIGKILL)
        await child.stdout.read()
        await child.wait()
    return durable


def _tear_pages(path: Path, inside: list[str]) -> None:
    """What a power cut during a checkpoint can leave: table pages half old, half garbage.

    Tears the pages holding the given message ids, so the damage surely hits rows.
    """
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (page_size,) = db.execute("PRAGMA page_size").fetchone()
    data = path.read_bytes()
    rng = random.Random(11)
    with path.open("r+b") as f:
        for ident in inside:
            at = data.index(f'"{ident}"'.encode())
            f.seek(at // page_size * page_size + page_size // 2)
            f.write(rng.randbytes(page_size // 2))


async def test_node_starting_on_an_outbox_torn_by_power_loss_reports_the_loss_and_delivers_the_rest(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "edge"
    state_dir.mkdir()
    path = state_dir / FILE_NAME
    durable = await _write_until_killed(path, 4000)
    _tear_pages(path, [durable[len(durable) // 3], durable[2 * len(durable) // 3]])

    with devservers.mosquitto() as broker:
        seen = Collector(broker.port, NODE)
        async with background(seen.run()):
            await asyncio.wait_for(seen.ready.wait(), 10)
            agent = EdgeAgent(
                EdgeSettings(
                    node_id=NODE, mqtt_url=broker.url, state_dir=state_dir,
                    health_interval_s=3600, backlog_default_rate=50_000,
                )
            )  # fmt: skip
            recovery = agent.uplink.outbox.recovery
            assert recovery is not None and recovery.moved_to.exists()
            assert recovery.lost is not None and recovery.lost > 0
            assert 0 < recovery.recovered < len(durable) + BURST
            recovered = [json.loads(r.payload)["id"] for r in agent.uplink.outbox.all_rows()]
            assert len(recovered) == recovery.recovered
            # A torn page costs its own rows, not the rest: rows past both torn pages,
            # up to the last one reported durable, are still recovered.
            assert durable[-1] in recovered and durable[0] in recovered
            # What survived is the writer's own, in its order (ids are zero-padded).
            assert recovered == sorted(recovered) and all(i.startswith("pw-") for i in recovered)
            health = agent.health()
            assert f"outbox recovered from damage; lost up to {recovery.lost}" in health.alarms
            assert health.outbox_depth == recovery.recovered

            async with background(agent.run()):

                async def delivered() -> bool:
                    return set(recovered) <= set(seen.ids)

                await eventually(delivered, timeout=60, what="every recovered event delivered")
            # Nothing but what was recovered: no lost row reappears, none is invented.
            assert set(seen.ids) == set(recovered)
