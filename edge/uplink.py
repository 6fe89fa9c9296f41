"""The edge's MQTT uplink: one supervised connection to the broker.

Publishes the birth on every connect and leaves a last-will (both retained on
the node's state topic, with a birth/death sequence number so the cloud can tell
a stale death from a fresh one), drains the outgoing queue in order, hands the
cloud's commands to the agent, and reconnects with jittered backoff. Messages
stay queued while the broker is unreachable; a message leaves the queue only
after the broker accepted it (PUBACK for QoS 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiomqtt

from ruang import contract
from ruang.backoff import Backoff
from ruang.mqtt_url import parse_broker_url

from .settings import EdgeSettings

log = logging.getLogger(__name__)

CommandHandler = Callable[[contract.Message], Awaitable[None]]
BirthFactory = Callable[[int], contract.NodeState]


@dataclass
class UplinkStats:
    published: int = 0
    reconnects: int = 0
    dropped_telemetry: int = 0
    rejected_commands: int = 0
    last_error: str | None = None


class BdSeqStore:
    """Birth/death sequence number, kept on disk so it grows across restarts."""

    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / "bdseq"

    def next(self) -> int:
        try:
            current = int(self._path.read_text().strip())
        except (OSError, ValueError):
            current = -1
        value = current + 1
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(str(value))
        tmp.replace(self._path)
        return value


class Uplink:
    def __init__(
        self,
        settings: EdgeSettings,
        *,
        birth: BirthFactory,
        on_command: CommandHandler,
        backoff: Backoff | None = None,
    ) -> None:
        self._settings = settings
        self._node = settings.node_id
        self._broker = parse_broker_url(settings.mqtt_url)
        self._birth = birth
        self._on_command = on_command
        self._backoff = backoff or Backoff(base=0.5, cap=30.0)
        self._bdseq = BdSeqStore(settings.state_dir)
        self._queue: deque[contract.Message] = deque()
        self._telemetry_queued = 0
        self._wakeup = asyncio.Event()
        self.connected = asyncio.Event()
        self.stats = UplinkStats()
        self.current_bdseq: int | None = None

    @property
    def queued(self) -> int:
        return len(self._queue)

    def publish(self, message: contract.Message) -> None:
        """Queues a message for the broker; never blocks the caller (a device loop)."""
        is_telemetry = contract.qos_for(message) == contract.TELEMETRY_QOS
        if len(self._queue) >= self._settings.queue_limit and is_telemetry:
            # Bound memory while the uplink is down: telemetry goes, events stay.
            self.stats.dropped_telemetry += 1
            return
        self._queue.append(message)
        self._wakeup.set()

    async def run(self) -> None:
        """Connects, publishes and reconnects until cancelled."""
        while True:
            bdseq = self._bdseq.next()
            try:
                await self._session(bdseq)
            except aiomqtt.MqttError as exc:
                self.stats.last_error = str(exc)
                log.warning("uplink to %s:%s lost: %s", self._broker.host, self._broker.port, exc)
            finally:
                self.connected.clear()
            self.stats.reconnects += 1
            delay = self._backoff.next_delay()
            log.info("uplink reconnecting in %.1f s", delay)
            await asyncio.sleep(delay)

    def _client(self, bdseq: int) -> aiomqtt.Client:
        death = contract.NodeState(node=self._node, online=False, bdseq=bdseq)
        will = aiomqtt.Will(
            contract.state_topic(self._node),
            contract.encode(death),
            qos=contract.STATE_QOS,
            retain=True,
        )
        password = self._settings.mqtt_password
        return aiomqtt.Client(
            self._broker.host,
            self._broker.port,
            username=self._settings.mqtt_username or self._broker.username,
            password=password.get_secret_value() if password else self._broker.password,
            identifier=f"ruang-edge-{self._node}",
            # MQTT 3.1.1 works on every broker we meet, amqtt included.
            protocol=aiomqtt.ProtocolVersion.V311,
            will=will,
            clean_session=True,
            keepalive=self._settings.mqtt_keepalive_s,
            timeout=10,
            tls_context=ssl.create_default_context() if self._broker.tls else None,
        )

    async def _session(self, bdseq: int) -> None:
        async with self._client(bdseq) as client:
            self.current_bdseq = bdseq
            birth = self._birth(bdseq)
            await client.publish(
                contract.state_topic(self._node),
                contract.encode(birth),
                qos=contract.STATE_QOS,
                retain=True,
            )
            await client.subscribe(
                contract.node_command_subscription(self._node), qos=contract.COMMAND_QOS
            )
            self._backoff.reset()
            self.connected.set()
            log.info(
                "uplink connected to %s:%s (bdseq %d)", self._broker.host, self._broker.port, bdseq
            )
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._pump(client))
                    tg.create_task(self._commands(client))
            except asyncio.CancelledError:
                # A clean stop sends no last-will, so say offline ourselves before leaving.
                await self._say_offline(client, bdseq)
                raise
            except BaseExceptionGroup as group:
                mqtt_errors, rest = group.split(aiomqtt.MqttError)
                if rest is not None or mqtt_errors is None:
                    raise
                raise mqtt_errors.exceptions[0] from None

    async def _say_offline(self, client: aiomqtt.Client, bdseq: int) -> None:
        death = contract.NodeState(node=self._node, online=False, bdseq=bdseq)
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            async with asyncio.timeout(1.0):
                await client.publish(
                    contract.state_topic(self._node),
                    contract.encode(death),
                    qos=contract.STATE_QOS,
                    retain=True,
                )

    async def _pump(self, client: aiomqtt.Client) -> None:
        task = asyncio.current_task()
        while True:
            # aiomqtt waits for PUBACK with asyncio.wait_for, which on Python 3.11 can
            # swallow a cancellation that races the ack; honour it here instead of
            # waiting forever with a cancel pending.
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            message = self._queue[0]
            await client.publish(
                contract.topic_for(message), contract.encode(message), qos=contract.qos_for(message)
            )
            # Only now is it the broker's: a failure above leaves it queued for the next session.
            self._queue.popleft()
            self.stats.published += 1

    async def _commands(self, client: aiomqtt.Client) -> None:
        async for msg in client.messages:
            try:
                payload = msg.payload if isinstance(msg.payload, bytes | bytearray) else b""
                _, command = contract.decode(str(msg.topic), payload)
            except contract.ContractError as exc:
                self.stats.rejected_commands += 1
                log.warning("command refused on %s: %s", msg.topic, exc.reason)
                continue
            try:
                await self._on_command(command)
            except Exception:
                self.stats.rejected_commands += 1
                log.exception("command handler failed for %s", msg.topic)
