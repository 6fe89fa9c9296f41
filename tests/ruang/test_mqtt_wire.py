"""ruang/mqtt_wire.py against real Mosquitto: framing across reads, manual PUBACK, the will.

The session and uplink tests use it through their owners; these pin the framing
itself: packets of every remaining-length size (1 to 3 bytes) split across
reads arrive whole and in order, a QoS 1 message not acknowledged is delivered
again to the persistent session and one acknowledged is not, and a connection
that drops without DISCONNECT publishes its will.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest

from launch import devservers
from ruang.mqtt_wire import Incoming, MqttProtocol
from tests.helpers import eventually

pytestmark = pytest.mark.servers


async def _connect(
    port: int,
    client_id: str,
    received: list[Incoming],
    *,
    clean: bool,
    will: tuple[str, bytes, int, bool] | None = None,
) -> MqttProtocol:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(
        lambda: MqttProtocol(received.append), "127.0.0.1", port
    )
    await protocol.connect(
        client_id,
        clean_session=clean,
        keepalive=30,
        username=None,
        password=None,
        within_s=10,
        will=will,
    )
    return protocol


async def _until(condition: Callable[[], bool], what: str) -> None:
    async def probe() -> bool:
        return condition()

    await eventually(probe, interval=0.01, what=what)


async def test_messages_of_every_size_arrive_whole_and_in_order(
    mosquitto_server: devservers.Mosquitto,
) -> None:
    topic = f"wire-test/{uuid.uuid4().hex}"
    received: list[Incoming] = []
    subscriber = await _connect(mosquitto_server.port, uuid.uuid4().hex, received, clean=True)
    publisher = await _connect(mosquitto_server.port, uuid.uuid4().hex, [], clean=True)
    try:
        await subscriber.subscribe([(topic, 1)], within_s=10)
        # 0..126 bytes: one length byte; 200, 5,000: two; 300,000: three (and many reads).
        sizes = [0, 1, 90, 126, 200, 5_000, 300_000] * 30
        payloads = [bytes([i % 251]) * size for i, size in enumerate(sizes)]
        for i, payload in enumerate(payloads):
            await publisher.publish(topic, payload, qos=i % 2, retain=False, within_s=10)
        await _until(lambda: len(received) >= len(payloads), "every message")
        assert [m.payload for m in received] == payloads
        assert {m.topic for m in received} == {topic}
        # QoS 1 messages carry a packet id; QoS 0 ones none.
        assert all((m.mid != 0) == (m.qos == 1) for m in received)
        subscriber.ack([m.mid for m in received if m.qos])
    finally:
        subscriber.close()
        publisher.close()


async def test_an_unacknowledged_message_comes_back_to_the_persistent_session(
    mosquitto_server: devservers.Mosquitto,
) -> None:
    topic, client_id = f"wire-test/{uuid.uuid4().hex}", f"wire-{uuid.uuid4().hex[:8]}"
    received: list[Incoming] = []
    first = await _connect(mosquitto_server.port, client_id, received, clean=False)
    await first.subscribe([(topic, 1)], within_s=10)
    publisher = await _connect(mosquitto_server.port, uuid.uuid4().hex, [], clean=True)
    try:
        for payload in (b"kept", b"acked"):
            await publisher.publish(topic, payload, qos=1, retain=False, within_s=10)
        await _until(lambda: len(received) == 2, "both messages")
        first.ack([m.mid for m in received if m.payload == b"acked"])
        await asyncio.sleep(0.2)  # let the PUBACK reach the broker before we leave
        first.close()
        await _until(lambda: first.closed.done(), "the first connection closed")

        again: list[Incoming] = []
        second = await _connect(mosquitto_server.port, client_id, again, clean=False)
        try:
            await _until(lambda: bool(again), "the redelivery")
            await asyncio.sleep(0.3)  # anything else would have arrived by now
            assert [m.payload for m in again] == [b"kept"]
            second.ack([m.mid for m in again])
        finally:
            second.close()
    finally:
        publisher.close()


async def test_a_connection_lost_without_disconnect_publishes_its_will(
    mosquitto_server: devservers.Mosquitto,
) -> None:
    topic = f"wire-test/{uuid.uuid4().hex}"
    received: list[Incoming] = []
    watcher = await _connect(mosquitto_server.port, uuid.uuid4().hex, received, clean=True)
    try:
        await watcher.subscribe([(topic, 1)], within_s=10)
        node = await _connect(
            mosquitto_server.port, uuid.uuid4().hex, [], clean=True, will=(topic, b"gone", 1, False)
        )
        assert node._transport is not None
        node._transport.abort()  # a crash: no DISCONNECT, so the broker sends the will
        await _until(lambda: bool(received), "the will")
        assert received[0].payload == b"gone"
    finally:
        watcher.close()
