"""The outbox-backed uplink on a real Mosquitto: outage, live before backlog, rate, kill -9."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import pytest

from edge.settings import EdgeSettings
from edge.uplink import Uplink
from launch import devservers
from ruang import contract
from tests.helpers import eventually

pytestmark = pytest.mark.servers

REPO = Path(__file__).resolve().parents[2]


def settings_for(tmp_path: Path, node: str, url: str, **extra: object) -> EdgeSettings:
    return EdgeSettings(node_id=node, mqtt_url=url, state_dir=tmp_path / node, **extra)  # type: ignore[arg-type]


@contextlib.contextmanager
def persistent_broker(tmp_path: Path) -> Iterator[devservers.Mosquitto]:
    """A private broker that keeps sessions and queued messages across stop()/start()."""
    store = tmp_path / "mosquitto-store"
    store.mkdir()
    extra = f"persistence true\npersistence_location {store}/\nautosave_interval 0"
    with devservers.mosquitto(config_extra=extra) as broker:
        yield broker


class Collector:
    """A cloud-like subscriber (persistent session, QoS 1) that rides out broker restarts."""

    def __init__(self, url: str, node: str) -> None:
        self.port = int(url.rsplit(":", 1)[1])
        self.node = node
        self.seen: list[tuple[str, str, bytes]] = []  # (channel, message id, payload)
        self.ready = asyncio.Event()

    def ids(self, channel: str | None = None) -> list[str]:
        return [i for c, i, _ in self.seen if channel is None or c == channel]

    async def run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1",
                    self.port,
                    identifier=f"collector-{self.node}",
                    clean_session=False,
                    protocol=aiomqtt.ProtocolVersion.V311,
                ) as client:
                    for channel in ("events", "backlog"):
                        await client.subscribe(
                            f"{contract.TOPIC_ROOT}/nodes/{self.node}/{channel}/+", qos=1
                        )
                    self.ready.set()
                    async for msg in client.messages:
                        payload = bytes(msg.payload)  # type: ignore[arg-type]
                        parsed, decoded = contract.decode(str(msg.topic), payload)
                        self.seen.append((parsed.channel, decoded.id, payload))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.05)

    async def command(self, message: contract.Message, kind: str) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port) as client:
            await client.publish(
                contract.command_topic(self.node, kind), contract.encode(message), qos=1
            )


@contextlib.asynccontextmanager
async def background(coro: object) -> AsyncIterator[None]:
    task = asyncio.create_task(coro)  # type: ignore[arg-type]
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def collecting(url: str, node: str) -> AsyncIterator[Collector]:
    collector = Collector(url, node)
    async with background(collector.run()):
        await asyncio.wait_for(collector.ready.wait(), 10)
        yield collector


def make_uplink(settings: EdgeSettings) -> Uplink:
    async def ignore(_: contract.Message) -> None:
        return None

    return Uplink(
        settings,
        birth=lambda bdseq: contract.NodeState(node=settings.node_id, online=True, bdseq=bdseq),
        on_command=ignore,
    )


def checkin(node: str, i: int) -> contract.CheckIn:
    return contract.CheckIn(node=node, desk=f"D{i % 50:02d}", badge="04A1B2C3")


async def _true(value: bool) -> bool:
    return value


async def test_broker_outage_mid_stream_loses_none_of_2000_events(tmp_path: Path) -> None:
    node = "up-outage"
    with persistent_broker(tmp_path) as broker:
        uplink = make_uplink(settings_for(tmp_path, node, broker.url, backlog_default_rate=50_000))
        async with collecting(broker.url, node) as seen, background(uplink.run()):
            await asyncio.wait_for(uplink.connected.wait(), 10)
            sent: list[str] = []
            for i in range(2000):
                message = checkin(node, i)
                uplink.publish(message)
                sent.append(message.id)
                if i % 50 == 49:
                    await uplink.outbox.flushed()
                    await asyncio.sleep(0.002)
                if i == 999:
                    broker.stop()
                    await eventually(
                        lambda: _true(not uplink.connected.is_set()), what="uplink down"
                    )
            assert uplink.queued > 0
            broker.start()

            async def all_there() -> bool:
                return len(set(seen.ids())) >= 2000

            await eventually(all_there, timeout=30, what="all 2000 events at the subscriber")
            assert set(seen.ids()) == set(sent)
            # Duplicates only as exact copies of one message (same id, same bytes).
            payloads: dict[str, bytes] = {}
            for _, message_id, payload in seen.seen:
                assert payloads.setdefault(message_id, payload) == payload
            # What waited out the outage came back as backlog.
            assert set(sent[1000:]) <= set(seen.ids(contract.Channel.BACKLOG))
            await eventually(lambda: _true(uplink.queued == 0), what="outbox emptied by acks")
            assert uplink.stats.reconnects >= 1


async def test_live_messages_overtake_a_throttled_backlog_and_the_rate_command_speeds_it_up(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    node = "up-live-first"
    uplink = make_uplink(
        settings_for(tmp_path, node, mosquitto_server.url, backlog_default_rate=50)
    )
    # Recorded while offline: this is the backlog of the first connect.
    old = [checkin(node, i) for i in range(300)]
    for message in old:
        uplink.publish(message)
    await uplink.outbox.flushed()
    async with collecting(mosquitto_server.url, node) as seen, background(uplink.run()):
        await asyncio.wait_for(uplink.connected.wait(), 10)
        new = [checkin(node, 1000 + i) for i in range(20)]
        for message in new:
            uplink.publish(message)

        async def live_arrived() -> bool:
            return set(seen.ids(contract.Channel.EVENTS)) >= {m.id for m in new}

        await eventually(live_arrived, what="live events on the events topics")
        # At 50 msg/s the 300-message backlog is still mostly queued.
        assert len(seen.ids(contract.Channel.BACKLOG)) < len(old)
        assert not set(seen.ids(contract.Channel.EVENTS)) & {m.id for m in old}

        await seen.command(contract.BacklogRate(node=node, max_msgs_per_s=50_000), "backlog_rate")
        await eventually(lambda: _true(uplink.backlog_rate == 50_000), what="rate applied")

        async def backlog_done() -> bool:
            return len(set(seen.ids(contract.Channel.BACKLOG))) >= len(old)

        await eventually(backlog_done, what="backlog drained at the new rate")
        backlog = list(dict.fromkeys(seen.ids(contract.Channel.BACKLOG)))
        assert backlog == [m.id for m in old]  # same priority: seq order
        # The subscriber can see the last message before the uplink has its PUBACK.
        await eventually(
            lambda: _true(
                uplink.stats.published_backlog >= 300 and uplink.stats.published_live >= 20
            ),
            what="publishes counted",
        )
        await asyncio.wait_for(uplink.backlog_drained.wait(), 10)


async def test_rate_command_slows_the_next_backlog_and_birth_reports_the_depth(
    tmp_path: Path,
) -> None:
    node = "up-slow"
    with persistent_broker(tmp_path) as broker:
        uplink = make_uplink(settings_for(tmp_path, node, broker.url, backlog_default_rate=50_000))
        births: list[contract.NodeState] = []

        async def watch_births() -> None:
            async with aiomqtt.Client("127.0.0.1", broker.port) as client:
                await client.subscribe(contract.state_topic(node), qos=1)
                async for msg in client.messages:
                    births.append(contract.decode(str(msg.topic), msg.payload)[1])  # type: ignore[arg-type,misc]

        async with collecting(broker.url, node) as seen, background(uplink.run()):
            await asyncio.wait_for(uplink.connected.wait(), 10)
            await seen.command(contract.BacklogRate(node=node, max_msgs_per_s=20), "backlog_rate")
            await eventually(lambda: _true(uplink.backlog_rate == 20), what="rate applied")
            broker.stop()
            await eventually(lambda: _true(not uplink.connected.is_set()), what="uplink down")
            old = [checkin(node, i) for i in range(200)]
            for message in old:
                uplink.publish(message)
            await uplink.outbox.flushed()
            broker.start()
            async with background(watch_births()):
                await asyncio.wait_for(uplink.connected.wait(), 20)
                new = [checkin(node, 1000 + i) for i in range(20)]
                for message in new:
                    uplink.publish(message)

                async def live_arrived() -> bool:
                    return set(seen.ids(contract.Channel.EVENTS)) >= {m.id for m in new}

                await eventually(live_arrived, what="live events after the reconnect")
                # The cloud's rate outlived the reconnect: the backlog is still draining.
                assert len(set(seen.ids(contract.Channel.BACKLOG))) < len(old)
                assert uplink.queued > 0

                async def birth_with_depth() -> bool:
                    return any((b.outbox_depth or 0) >= 200 for b in births)

                await eventually(birth_with_depth, what="birth carrying the outbox depth")


_EDGE = """
import asyncio, sys
from pathlib import Path
from edge.settings import EdgeSettings
from edge.uplink import Uplink
from ruang import contract

async def main(state_dir: str, url: str, mode: str) -> None:
    settings = EdgeSettings(
        node_id="up-kill", mqtt_url=url, state_dir=Path(state_dir), backlog_default_rate=50_000
    )

    async def ignore(_: contract.Message) -> None:
        return None

    uplink = Uplink(
        settings,
        birth=lambda b: contract.NodeState(node="up-kill", online=True, bdseq=b),
        on_command=ignore,
    )
    task = asyncio.create_task(uplink.run())
    await uplink.connected.wait()
    if mode == "write":
        for i in range(100_000):
            ids = []
            for j in range(20):
                message = contract.CheckIn(node="up-kill", desk=f"D{j:02d}", badge="04A1B2C3")
                uplink.publish(message)
                ids.append(message.id)
            await uplink.outbox.flushed()
            print(" ".join(ids), flush=True)
            await asyncio.sleep(0.001)
    while uplink.queued:
        await asyncio.sleep(0.01)
    print("DRAINED", flush=True)
    task.cancel()

asyncio.run(main(*sys.argv[1:]))
"""


async def _edge(state_dir: Path, url: str, mode: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _EDGE,
        str(state_dir),
        url,
        mode,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE,
    )


async def test_edge_process_killed_mid_stream_and_restarted_delivers_every_durable_event(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    state_dir = tmp_path / "edge"
    async with collecting(mosquitto_server.url, "up-kill") as seen:
        writer = await _edge(state_dir, mosquitto_server.url, "write")
        assert writer.stdout is not None
        durable: list[str] = []
        try:
            while len(durable) < 1500:
                line = await asyncio.wait_for(writer.stdout.readline(), 30)
                assert line, "edge child exited early"
                durable.extend(w.decode() for w in line.split())
        finally:
            writer.send_signal(signal.SIGKILL)
            rest = await writer.stdout.read()
            await writer.wait()
        for line in rest.splitlines():
            if len(line.split()) == 20:
                durable.extend(w.decode() for w in line.split())

        restarted = await _edge(state_dir, mosquitto_server.url, "drain")
        assert restarted.stdout is not None
        try:
            done = await asyncio.wait_for(restarted.stdout.readline(), 30)
            assert done.strip() == b"DRAINED"
        finally:
            with contextlib.suppress(ProcessLookupError):
                restarted.send_signal(signal.SIGKILL)
            await restarted.wait()

        async def all_there() -> bool:
            return set(durable) <= set(seen.ids())

        await eventually(all_there, what="every durable event at the subscriber")
        payloads: dict[str, bytes] = {}
        for _, message_id, payload in seen.seen:
            assert payloads.setdefault(message_id, payload) == payload
        # Nothing appeared that the edge did not create: ids are the edge's own.
        assert all(json.loads(p)["node"] == "up-kill" for p in payloads.values())
