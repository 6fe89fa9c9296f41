"""MQTT 3.1.1 on an asyncio transport: the hot paths of the cloud session and the edge uplink.

Why not paho (through aiomqtt)? paho reads one packet per event-loop wake-up
and makes several `recv` calls per packet (fixed header, then each byte of the
remaining length, then the body); at a backlog drain that, not our own work,
was most of the ingestion's time. Publishing costs paho a lock, a condition
variable and a `send` per message, and aiomqtt a future, a `wait_for` and a
pending-call entry on top: that bounded the edge's event rate
(docs/performance.md). Here `data_received` gets up to 256 kB per wake-up and
every complete packet in it is parsed in one pass with slicing, and everything
sent in one event-loop iteration goes out in one write.

Scope is what the cloud's session and the edge's uplink need: CONNECT with a
login, a will and a persistent or clean session, SUBSCRIBE, PUBLISH both ways
at QoS 0/1, PUBACKs the receiver sends itself (persist, then acknowledge), and
keepalive pings. QoS 2 is not implemented: the broker grants at most the QoS
a subscription asks for, and every subscription here asks for 1 at most. A
malformed packet from the broker closes the connection (the owner reconnects).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple, cast

log = logging.getLogger(__name__)

# Packet types (high nibble of the fixed header).
CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14

CONNACK_REASONS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}


class MqttError(Exception):
    """The connection failed, was refused or was lost."""


class Incoming(NamedTuple):
    """One PUBLISH received: the topic, the payload bytes, its QoS and packet id (0 at QoS 0)."""

    topic: str
    payload: bytes
    qos: int
    mid: int


def _utf8(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _remaining_length(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | 0x80 if length else byte)
        if not length:
            return bytes(out)


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + _remaining_length(len(body)) + body


def puback(mid: int) -> bytes:
    return b"\x40\x02" + mid.to_bytes(2, "big")


class MqttProtocol(asyncio.Protocol):
    """One connection. `on_message` is called for each PUBLISH, inside `data_received`."""

    def __init__(
        self,
        on_message: Callable[[Incoming], None],
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self._on_message = on_message
        self._on_lost = on_lost
        self._transport: asyncio.Transport | None = None
        # Written at the end of this event-loop iteration, in one `write` (see _send).
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._buffer = bytearray()
        self._connack: asyncio.Future[int] | None = None
        self._waiting: dict[int, asyncio.Future[bytes]] = {}  # packet id -> SUBACK/PUBACK
        self._next_id = 0
        self._last_received = time.monotonic()
        self._pinger: asyncio.Task[None] | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._topics: dict[bytes, str] = {}

    # --- asyncio callbacks -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; not an isinstance check: uvloop's (`ruang cloud serve`
        # runs on it) does not subclass asyncio.Transport, yet has its methods.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._pinger is not None:
            self._pinger.cancel()
        error = MqttError(f"connection lost: {exc}" if exc else "connection closed by the broker")
        waiting = [self._connack, *self._waiting.values()]
        self._waiting.clear()
        for future in waiting:
            if future is not None and not future.done():
                future.set_exception(error)
        if not self.closed.done():
            self.closed.set_exception(error)
            # Nobody may be awaiting `closed` any more; no warning about an unretrieved error.
            self.closed.exception()
        self._out.clear()
        if self._on_lost is not None:
            self._on_lost()

    def data_received(self, data: bytes) -> None:
        self._last_received = time.monotonic()
        buffer = self._buffer
        buffer += data
        size = len(buffer)
        pos = 0
        topics = self._topics
        on_message = self._on_message
        while size - pos >= 2:
            first = buffer[pos]
            # Remaining length: 1-4 bytes, 7 bits each, least significant first.
            index, length, shift, complete = pos + 1, 0, 0, False
            while index < size:
                byte = buffer[index]
                index += 1
                length |= (byte & 0x7F) << shift
                if byte < 0x80:
                    complete = True
                    break
                shift += 7
                if shift > 21:
                    self._fail("malformed remaining length")
                    return
            if not complete:
                break
            end = index + length
            if end > size:
                break
            kind = first >> 4
            if kind == PUBLISH:
                qos = (first >> 1) & 3
                if length < 2:
                    self._fail("malformed PUBLISH")
                    return
                topic_end = index + 2 + ((buffer[index] << 8) | buffer[index + 1])
                if topic_end + (2 if qos else 0) > end:
                    self._fail("malformed PUBLISH")
                    return
                raw_topic = bytes(buffer[index + 2 : topic_end])
                topic = topics.get(raw_topic)
                if topic is None:
                    # The broker checks topic UTF-8; a bad one still must not stop us.
                    topic = raw_topic.decode("utf-8", "replace")
                    if len(topics) >= 100_000:
                        topics.clear()
                    topics[raw_topic] = topic
                if qos:
                    mid = (buffer[topic_end] << 8) | buffer[topic_end + 1]
                    topic_end += 2
                else:
                    mid = 0
                try:
                    on_message(Incoming(topic, bytes(buffer[topic_end:end]), qos, mid))
                except Exception:  # the handler counts its own failures; this is a last guard
                    log.exception("MQTT message handler failed on %s", topic)
            else:
                self._control(kind, bytes(buffer[index:end]))
            pos = end
        del buffer[:pos]

    def _control(self, kind: int, body: bytes) -> None:
        if kind == CONNACK:
            if self._connack is not None and not self._connack.done():
                self._connack.set_result(body[1] if len(body) > 1 else 255)
        elif kind in (SUBACK, PUBACK):
            if len(body) >= 2:
                future = self._waiting.pop(int.from_bytes(body[:2], "big"), None)
                if future is not None and not future.done():
                    future.set_result(body[2:])
        elif kind != PINGRESP:
            log.debug("ignoring MQTT packet type %d", kind)

    def _fail(self, why: str) -> None:
        log.warning("closing the MQTT connection: %s", why)
        if self._transport is not None:
            self._transport.abort()

    # --- requests ----------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        # Corked: many publishes in one iteration cost one write (one syscall), not one each.
        if self._transport is None or self._transport.is_closing():
            raise MqttError("not connected")
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._write_out)

    def _write_out(self) -> None:
        self._flush_scheduled = False
        out, self._out = self._out, []
        if out and self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(out))

    def _packet_id(self) -> int:
        for _ in range(65_535):
            self._next_id = self._next_id % 65_535 + 1
            if self._next_id not in self._waiting:
                return self._next_id
        raise MqttError("no free packet id")

    async def _await(
        self, future: asyncio.Future[bytes], within_s: float | None, what: str
    ) -> bytes:
        if within_s is None:
            return await future
        try:
            async with asyncio.timeout(within_s):
                return await future
        except TimeoutError:
            raise MqttError(f"no {what} within {within_s:.0f} s") from None

    async def connect(
        self,
        client_id: str,
        *,
        clean_session: bool,
        keepalive: int,
        username: str | None,
        password: str | None,
        within_s: float,
        will: tuple[str, bytes, int, bool] | None = None,
    ) -> None:
        """Sends CONNECT and waits for CONNACK; `will` is (topic, payload, qos, retain)."""
        flags = 0x02 if clean_session else 0
        payload = _utf8(client_id)
        if will is not None:
            topic, message, qos, retain = will
            flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
            payload += _utf8(topic) + struct.pack("!H", len(message)) + message
        if username is not None:
            flags |= 0x80
            payload += _utf8(username)
            if password is not None:
                flags |= 0x40
                payload += _utf8(password)
        header = _utf8("MQTT") + bytes((4, flags)) + struct.pack("!H", keepalive)
        self._connack = asyncio.get_running_loop().create_future()
        self._send(_packet(CONNECT << 4, header + payload))
        try:
            async with asyncio.timeout(within_s):
                code = await self._connack
        except TimeoutError:
            raise MqttError(f"no CONNACK within {within_s:.0f} s") from None
        if code != 0:
            raise MqttError(f"connection refused: {CONNACK_REASONS.get(code, code)}")
        self._pinger = asyncio.create_task(self._keepalive(keepalive), name="ruang-mqtt-ping")

    async def subscribe(self, subscriptions: Iterable[tuple[str, int]], within_s: float) -> None:
        subscriptions = list(subscriptions)
        mid = self._packet_id()
        body = mid.to_bytes(2, "big") + b"".join(
            _utf8(topic) + bytes((qos,)) for topic, qos in subscriptions
        )
        future = self._waiting[mid] = asyncio.get_running_loop().create_future()
        self._send(_packet((SUBSCRIBE << 4) | 0x02, body))
        granted = await self._await(future, within_s, "SUBACK")
        refused = [t for (t, _), code in zip(subscriptions, granted, strict=False) if code >= 0x80]
        if refused:
            raise MqttError(f"subscription refused: {', '.join(refused)}")

    def start_publish(
        self, topic: str, payload: bytes, *, qos: int, retain: bool = False
    ) -> asyncio.Future[bytes] | None:
        """Sends a PUBLISH now; at QoS 1 returns the future its PUBACK resolves, else None."""
        first = (PUBLISH << 4) | (qos << 1) | (1 if retain else 0)
        encoded = topic.encode()
        head = len(encoded).to_bytes(2, "big") + encoded
        if qos == 0:
            self._send(_packet(first, head + payload))
            return None
        mid = self._packet_id()
        future = self._waiting[mid] = asyncio.get_running_loop().create_future()
        self._send(_packet(first, head + mid.to_bytes(2, "big") + payload))
        return future

    async def publish(
        self, topic: str, payload: bytes, *, qos: int, retain: bool, within_s: float | None
    ) -> None:
        """Sends a PUBLISH; at QoS 1 returns at its PUBACK (`within_s` None: no limit)."""
        acked = self.start_publish(topic, payload, qos=qos, retain=retain)
        if acked is not None:
            await self._await(acked, within_s, "PUBACK")

    def ack(self, mids: list[int]) -> None:
        """PUBACKs for QoS 1 messages received on this connection, in one write."""
        if mids and self._transport is not None and not self._transport.is_closing():
            self._send(b"".join(puback(mid) for mid in mids))

    async def _keepalive(self, keepalive: int) -> None:
        # Ping at half the keepalive; a broker silent for 1.5 keepalives is gone.
        while self._transport is not None:
            await asyncio.sleep(keepalive / 2)
            if time.monotonic() - self._last_received > keepalive * 1.5:
                self._fail(f"no packet from the broker for {keepalive * 1.5:.0f} s")
                return
            try:
                self._send(bytes((PINGREQ << 4, 0)))
            except MqttError:
                return

    def close(self) -> None:
        """Sends DISCONNECT (the broker then drops the will) and closes."""
        if self._pinger is not None:
            self._pinger.cancel()
        if self._transport is not None and not self._transport.is_closing():
            self._write_out()
            self._transport.write(bytes((DISCONNECT << 4, 0)))
            self._transport.close()
