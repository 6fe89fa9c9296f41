"""Throughput of the edge outbox: group-committed puts on disk, and backlog drain to Mosquitto.

`run()` returns figures and prints nothing. `events_per_s_full_*` puts check-in
events (synchronous=FULL, since every batch holds an event) and waits for the
group commit every `batch` puts, as a busy device loop would. `drain_msgs_per_s`
times an uplink emptying a 20,000-message backlog into a local Mosquitto with
the rate limit off, from connect until the broker has acked every message
(events then wait for the cloud's event_ack; `drain_msgs_per_s_no_cloud_ack`
deletes them at the PUBACK instead, as before cloud acks).
`events_per_s_with_cloud_ack_*` runs each event through its whole life in the
outbox with cloud acks: put, commit, PUBACK (awaiting cloud ack), event_ack.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from edge.outbox import FILE_NAME, Outbox
from edge.outbox_store import Row
from edge.settings import EdgeSettings
from edge.uplink import Uplink
from launch import devservers
from ruang import contract

NODE = "bench-outbox"


def _event(i: int) -> contract.CheckIn:
    return contract.CheckIn(node=NODE, desk=f"D{i % 50:02d}", badge="04A1B2C3")


async def _puts(path: Path, count: int, batch: int) -> float:
    box = Outbox(path, batch_window_s=0)
    messages = [_event(i) for i in range(count)]
    start = time.perf_counter()
    for i, message in enumerate(messages):
        box.put(message)
        if i % batch == batch - 1:
            await box.flushed()
    await box.flushed()
    elapsed = time.perf_counter() - start
    box.close()
    return count / elapsed


async def _lifecycle(path: Path, count: int, batch: int) -> float:
    """Events/s through the whole outbox life with cloud acks: put, commit, PUBACK
    (-> awaiting cloud ack, an UPDATE), the cloud's event_ack (DELETE by message id);
    each step a group commit of `batch` events, as the uplink sees them."""
    box = Outbox(path, batch_window_s=0, cloud_ack_timeout_s=30.0)
    committed: list[Row] = []
    box.on_commit(committed.extend)
    messages = [_event(i) for i in range(count)]
    start = time.perf_counter()
    for lo in range(0, count, batch):
        chunk = messages[lo : lo + batch]
        for message in chunk:
            box.put(message)
        await box.flushed()
        for row in committed:
            box.published(row)
        committed.clear()
        await box.flushed()
        box.cloud_acked(m.id for m in chunk)
        await box.flushed()
    elapsed = time.perf_counter() - start
    assert box.depth == 0 and box.awaiting_ack == 0, (box.depth, box.awaiting_ack)
    box.close()
    return count / elapsed


async def _drain(workdir: Path, url: str, count: int, cloud_ack: bool = True) -> float:
    settings = EdgeSettings(
        node_id=NODE, mqtt_url=url, state_dir=workdir / f"drain-{cloud_ack}",
        event_ack_timeout_s=30.0 if cloud_ack else 0,
    )  # fmt: skip
    box = Outbox.in_dir(settings.state_dir)
    for i in range(count):
        box.put(_event(i))
    box.close()

    async def ignore(_: contract.Message) -> None:
        return None

    uplink = Uplink(
        settings,
        birth=lambda b: contract.NodeState(node=NODE, online=True, bdseq=b),
        on_command=ignore,
    )
    uplink.set_backlog_rate(None)
    task = asyncio.create_task(uplink.run())
    try:
        await asyncio.wait_for(uplink.connected.wait(), 10)
        start = time.perf_counter()
        await asyncio.wait_for(uplink.backlog_drained.wait(), 120)
        await uplink.outbox.flushed()
        elapsed = time.perf_counter() - start
        assert uplink.queued == 0, uplink.queued
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
    return count / elapsed


def run(events: int = 20_000, backlog: int = 20_000) -> dict[str, float]:
    """Measure outbox throughput; keys are stable metric names."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ruang-bench-outbox-") as tmp:
        workdir = Path(tmp)
        for batch in (1, 10, 100):
            count = events if batch > 1 else events // 4
            path = workdir / f"b{batch}" / FILE_NAME
            out[f"events_per_s_full_{batch}_per_commit"] = asyncio.run(_puts(path, count, batch))
        for batch in (10, 100):
            path = workdir / f"life{batch}" / FILE_NAME
            out[f"events_per_s_with_cloud_ack_{batch}_per_commit"] = asyncio.run(
                _lifecycle(path, events, batch)
            )
        with devservers.mosquitto() as broker:
            # To the broker's PUBACK; with cloud acks the events then wait in the outbox
            # (an UPDATE each) instead of being deleted.
            out["drain_msgs_per_s"] = asyncio.run(_drain(workdir, broker.url, backlog))
            out["drain_msgs_per_s_no_cloud_ack"] = asyncio.run(
                _drain(workdir, broker.url, backlog, cloud_ack=False)
            )
    return out


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:<40} {value:,.0f}")
