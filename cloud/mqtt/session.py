"""The cloud's one broker session: receives what nodes send, publishes commands.

A stable client id with clean_session=False makes the broker keep the session
(and queue QoS 1 events) while the cloud is away. Each message goes to the
handler as paho decodes it (see `_dispatch_queue`); a QoS 1 message is *held*:
its PUBACK goes out only when the ingestion pipeline says it is committed
(`take_held` / `ack`), so the broker redelivers anything a crash lost. The
connection is re-made with jittered backoff (ruang/backoff.py) whatever the
failure. mqtts:// URLs connect with TLS, trusting settings.mqtt_ca_file when set
(ruang/tls.py), as the edge does. The login is settings.mqtt_login.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from cloud.mqtt.commands import NotConnected
from cloud.settings import CloudSettings
from ruang import contract
from ruang.backoff import Backoff
from ruang.tasks import cancel_and_wait
from ruang.tls import client_tls_context

log = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT_S = 300.0


@dataclass
class Held:
    """QoS 1 message ids received on one connection and not yet acknowledged."""

    connection: Any = None  # the paho client the ids belong to
    mids: list[int] = field(default_factory=list)


def _dispatch_queue(handler: Callable[[aiomqtt.Message], None]) -> type[asyncio.Queue[Any]]:
    """An aiomqtt `queue_type` that hands each message to `handler` instead of queueing it.

    aiomqtt's message iterator costs a task and an `asyncio.wait` per message,
    which alone caps ingestion well below the broker's rate. Handling the
    message inside paho's callback (already on the event loop) avoids that;
    the iterator is still used, but only to learn about disconnects.
    """

    class DispatchQueue(asyncio.Queue[Any]):
        def put_nowait(self, item: Any) -> None:
            handler(item)

    return DispatchQueue


class MqttSession:
    """Keeps one persistent broker session; a `CommandSender` (cloud/mqtt/commands.py)."""

    def __init__(
        self,
        settings: CloudSettings,
        on_message: Callable[[aiomqtt.Message], None],
        subscriptions: Iterable[tuple[str, int]],
        *,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._broker = settings.mqtt_broker
        self._login = settings.mqtt_login
        self._on_message = on_message
        self._subscriptions = list(subscriptions)
        self._on_error = on_error
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._connected = False
        self._connects = 0
        # The paho client of the current connection: message ids belong to it.
        self._paho: Any = None
        self._held = Held()

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def connects(self) -> int:
        return self._connects

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name="ruang-ingest-mqtt")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    # --- persist, then acknowledge -------------------------------------------------------

    def take_held(self) -> Held:
        """The held message ids so far, to acknowledge once what they carried is committed."""
        held, self._held = self._held, Held(self._paho)
        return held

    def ack(self, held: Held) -> None:
        # Only on the connection the messages came in on; after a reconnect the
        # broker resends them instead.
        if held.connection is None or held.connection is not self._paho:
            return
        for mid in held.mids:
            held.connection.ack(mid, 1)

    def hold_again(self, held: Held) -> None:
        """Not committed after all: keep them held, in front of later ones, if still ours."""
        if held.connection is self._paho:
            self._held.mids[:0] = held.mids

    def _received(self, message: aiomqtt.Message) -> None:
        if message.qos:
            self._held.mids.append(message.mid)
        self._on_message(message)

    # --- the connection ------------------------------------------------------------------

    async def _loop(self) -> None:
        backoff = Backoff(base=0.2, cap=10.0)
        while not self._stopping:
            try:
                await self._session(backoff)
            except Exception as exc:  # MqttError mostly; any failure means reconnect
                if self._connected or backoff.attempt == 0:
                    log.warning(
                        "MQTT connection to %s:%d lost or refused: %s",
                        self._broker.host,
                        self._broker.port,
                        exc,
                    )
                if self._on_error is not None:
                    self._on_error(f"mqtt: {exc}")
            finally:
                self._connected = False
                self._client = None
                # Ids belong to the lost connection; the broker redelivers those
                # messages (de-duplicated by message id) on the next session.
                self._paho = None
                self._held = Held()
            await asyncio.sleep(backoff.next_delay())

    def _new_client(self) -> aiomqtt.Client:
        username, password = self._login
        return aiomqtt.Client(
            self._broker.host,
            self._broker.port,
            username=username,
            password=password,
            identifier=self._settings.mqtt_client_id,
            clean_session=False,
            keepalive=self._settings.mqtt_keepalive_s,
            timeout=10,
            queue_type=_dispatch_queue(self._received),
            tls_context=(
                client_tls_context(self._settings.mqtt_ca_file) if self._broker.tls else None
            ),
        )

    async def _session(self, backoff: Backoff) -> None:
        client = self._new_client()
        # Persist, then acknowledge: paho would PUBACK as soon as our callback
        # returns, before the event is in the database. aiomqtt does not expose
        # paho's manual acknowledgement, so reach its client for this one switch.
        paho = client._client
        paho.manual_ack_set(True)
        async with client:
            self._client = client
            self._paho = paho
            self._held = Held(paho)
            self._connected = True
            self._connects += 1
            backoff.reset()
            # With a persistent session the broker delivers the queued backlog right
            # after CONNACK, and the SUBACK only after it: allow for a long drain.
            await client.subscribe(self._subscriptions, timeout=SUBSCRIBE_TIMEOUT_S)
            log.info(
                "ingesting from MQTT %s:%d%s",
                self._broker.host,
                self._broker.port,
                " (TLS)" if self._broker.tls else "",
            )
            # Messages never reach this iterator (see _dispatch_queue); it raises
            # MqttError when the connection drops.
            async for _ in client.messages:
                pass

    async def publish(self, message: contract.Message, *, retain: bool = False) -> str:
        """Publishes a cloud -> edge message (a command); returns its topic.

        `retain` keeps it on the broker for a node that connects later (snapshots).
        """
        client = self._client
        if client is None or not self._connected:
            raise NotConnected("not connected to the MQTT broker")
        topic = contract.topic_for(message)
        try:
            await client.publish(
                topic,
                contract.encode(message),
                qos=contract.qos_for(message),
                retain=retain,
                timeout=5,
            )
        except aiomqtt.MqttError as exc:
            raise NotConnected(str(exc)) from exc
        return topic
