"""The cloud's one broker session: receives what nodes send, publishes commands.

A stable client id with clean_session=False makes the broker keep the session
(and queue QoS 1 events) while the cloud is away. The wire protocol is the
project's own (ruang/mqtt_wire.py: paho's read path was most of the ingestion's
time); each message goes to the handler as it is framed, many per event-loop
wake-up. A QoS 1 message is *held*:
its PUBACK goes out only when the ingestion pipeline says it is committed
(`take_held` / `ack`), so the broker redelivers anything a crash lost. The
connection is re-made with jittered backoff (ruang/backoff.py) whatever the
failure; when settings.mqtt_url lists the nodes of a broker cluster, each new
attempt after a failure goes to the next node (round-robin), and the persistent
session, kept by the cluster, follows. mqtts:// URLs connect with TLS, trusting
settings.mqtt_ca_file when set (ruang/tls.py), as the edge does. The login is
settings.mqtt_login.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cloud.mqtt.commands import NotConnected
from cloud.settings import CloudSettings
from ruang import contract
from ruang.backoff import Backoff
from ruang.mqtt_url import BrokerAddress, BrokerRing
from ruang.mqtt_wire import Incoming, MqttError, MqttProtocol
from ruang.tasks import cancel_and_wait
from ruang.tls import client_tls_context

log = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT_S = 300.0


@dataclass
class Held:
    """QoS 1 message ids received on one connection and not yet acknowledged."""

    connection: MqttProtocol | None = None  # the connection the ids belong to
    mids: list[int] = field(default_factory=list)


CONNECT_TIMEOUT_S = 10.0


class MqttSession:
    """Keeps one persistent broker session; a `CommandSender` (cloud/mqtt/commands.py)."""

    def __init__(
        self,
        settings: CloudSettings,
        on_message: Callable[[Incoming], None],
        subscriptions: Iterable[tuple[str, int]],
        *,
        on_error: Callable[[str], None] | None = None,
        client_id: str | None = None,
        clean_session: bool = False,
    ) -> None:
        self._settings = settings
        # Each process of a multi-process cloud has its own id (cloud/runtime/roles.py);
        # a publish-only session needs no persistent state, so it starts clean.
        self._client_id = client_id or settings.mqtt_client_id
        self._clean_session = clean_session
        self._brokers = BrokerRing(settings.mqtt_brokers)
        self._login = settings.mqtt_login
        self._on_message = on_message
        self._subscriptions = list(subscriptions)
        self._on_error = on_error
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._connected = False
        self._connects = 0
        # The current connection: message ids belong to it.
        self._connection: MqttProtocol | None = None
        self._held = Held()

    @property
    def broker(self) -> BrokerAddress:
        """The broker (node) connected to, or tried next."""
        return self._brokers.current

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
        held, self._held = self._held, Held(self._connection)
        return held

    def ack(self, held: Held) -> None:
        # Only on the connection the messages came in on; after a reconnect the
        # broker resends them instead.
        if held.connection is None or held.connection is not self._connection:
            return
        held.connection.ack(held.mids)

    def hold_again(self, held: Held) -> None:
        """Not committed after all: keep them held, in front of later ones, if still ours."""
        if held.connection is self._connection:
            self._held.mids[:0] = held.mids

    def _received(self, message: Incoming) -> None:
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
                        self.broker.host,
                        self.broker.port,
                        exc,
                    )
                # Another node of a cluster may be up; a lone broker is simply retried.
                self._brokers.advance()
                if self._on_error is not None:
                    self._on_error(f"mqtt: {exc}")
            finally:
                self._connected = False
                # Ids belong to the lost connection; the broker redelivers those
                # messages (de-duplicated by message id) on the next session.
                self._connection = None
                self._held = Held()
            await asyncio.sleep(self._brokers.delay(backoff))

    async def _session(self, backoff: Backoff) -> None:
        loop = asyncio.get_running_loop()
        broker = self.broker
        tls = client_tls_context(self._settings.mqtt_ca_file) if broker.tls else None
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            _, connection = await loop.create_connection(
                lambda: MqttProtocol(self._received),
                broker.host,
                broker.port,
                ssl=tls,
            )
        try:
            username, password = self._login
            # Persist, then acknowledge: PUBACKs go out only through `ack` (never on
            # receipt), after the pipeline has committed what the messages carried.
            await connection.connect(
                self._client_id,
                clean_session=self._clean_session,
                keepalive=self._settings.mqtt_keepalive_s,
                username=username,
                password=password,
                within_s=CONNECT_TIMEOUT_S,
            )
            self._connection = connection
            self._held = Held(connection)
            self._connected = True
            self._connects += 1
            backoff.reset()
            self._brokers.reached()
            # With a persistent session the broker delivers the queued backlog right
            # after CONNACK, and the SUBACK only after it: allow for a long drain.
            if self._subscriptions:  # a publish-only session (the api role) has none
                await connection.subscribe(self._subscriptions, within_s=SUBSCRIBE_TIMEOUT_S)
            log.info(
                "%s MQTT %s:%d%s",
                "ingesting from" if self._subscriptions else "publishing to",
                broker.host,
                broker.port,
                " (TLS)" if broker.tls else "",
            )
            await connection.closed  # raises MqttError when the connection drops
        finally:
            connection.close()

    async def publish(self, message: contract.Message, *, retain: bool = False) -> str:
        """Publishes a cloud -> edge message (a command); returns its topic.

        `retain` keeps it on the broker for a node that connects later (snapshots).
        """
        connection = self._connection
        if connection is None or not self._connected:
            raise NotConnected("not connected to the MQTT broker")
        topic = contract.topic_for(message)
        try:
            await connection.publish(
                topic,
                contract.encode(message),
                qos=contract.qos_for(message),
                retain=retain,
                within_s=5,
            )
        except MqttError as exc:
            raise NotConnected(str(exc)) from exc
        return topic
