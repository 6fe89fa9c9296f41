"""A stand-alone edge for fault tests: an Uplink in its own process, fed deterministic events.

    python -m tests.faults.edge_child STATE_DIR MQTT_URL NODE PREFIX COUNT [PAUSE_S]

Puts COUNT events (check-ins and button presses, alternating) with the ids
`PREFIX-000000`, `PREFIX-000001`, ... in batches of BATCH, waits after each batch
until the outbox committed it and only then prints the batch's ids on one line:
a printed id is durable. Then prints WRITTEN, waits until the outbox is empty
(every message acknowledged by the broker and every event by the cloud's
event_ack), prints DRAINED and exits. Unacknowledged events are resent after
EVENT_ACK_TIMEOUT_S, short so a fault test does not wait for the default. COUNT 0
only drains what an earlier run left in STATE_DIR.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from edge.settings import EdgeSettings
from edge.uplink import Uplink
from ruang import contract
from tests.helpers import eventually

BATCH = 50
EVENT_ACK_TIMEOUT_S = 5.0


def event(node: str, prefix: str, i: int) -> contract.Message:
    ident = f"{prefix}-{i:06d}"
    desk = f"D{i % 50:02d}"
    if i % 2:
        return contract.ButtonPressed(id=ident, node=node, desk=desk, button=i % 4)
    return contract.CheckIn(id=ident, node=node, desk=desk, badge="04A1B2C3")


async def main(
    state_dir: str, url: str, node: str, prefix: str, count: str, pause: str = "0.002"
) -> None:
    settings = EdgeSettings(
        node_id=node,
        mqtt_url=url,
        state_dir=Path(state_dir),
        backlog_default_rate=50_000,
        event_ack_timeout_s=float(os.environ.get("EDGE_CHILD_ACK_TIMEOUT_S", EVENT_ACK_TIMEOUT_S)),
    )

    async def ignore(_: contract.Message) -> None:
        return None

    uplink = Uplink(
        settings,
        birth=lambda b: contract.NodeState(node=node, online=True, bdseq=b),
        on_command=ignore,
    )
    task = asyncio.create_task(uplink.run())
    await asyncio.wait_for(uplink.connected.wait(), 30)
    total = int(count)
    for start in range(0, total, BATCH):
        ids = []
        for i in range(start, min(start + BATCH, total)):
            message = event(node, prefix, i)
            uplink.publish(message)
            ids.append(message.id)
        await uplink.outbox.flushed()
        print(" ".join(ids), flush=True)
        await asyncio.sleep(float(pause))
    print("WRITTEN", flush=True)

    async def drained() -> bool:
        return uplink.queued == 0 and uplink.outbox.awaiting_ack == 0

    await eventually(drained, timeout=300, interval=0.01, what="outbox drained")
    print("DRAINED", flush=True)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
