"""The edge's MQTT uplink: one supervised connection, fed from the durable outbox.

Publishes the birth on every connect (with the outbox depth) and leaves a
last-will, both retained on the node's state topic with a birth/death sequence
number so the cloud can tell a stale death from a fresh one; hands the cloud's
commands to the agent (except `backlog_rate`, which it applies itself); and
reconnects with jittered backoff. `mqtt_url` may list the nodes of a broker
cluster (comma-separated): a failed or lost session moves to the next node,
round-robin, and the outbox resends whatever the cloud had not acknowledged.

`publish(message)` only puts the message into the outbox (edge/outbox.py); the
uplink publishes a row after the outbox committed it and acks it (deletes it)
once the broker took it: PUBACK for QoS 1, a successful publish call for live
QoS 0 telemetry. On each connect the outbox is split at its last committed seq:

* live: rows committed after the connect go out at once on their normal topics
  (events QoS 1, telemetry QoS 0), in seq order;
* backlog: rows from before the connect drain on the backlog channel (QoS 1),
  strictly by priority then seq, throttled by a token bucket the cloud sets.

Both streams keep many QoS 1 publishes in flight (bounded by `max_inflight` each,
far below the 65,535 packet ids) instead of one round trip per message; no task per
message either: a callback on its PUBACK finishes each one. A message
whose ack was lost to a disconnect is published again: duplicates are exact
(same message id) and the cloud drops them.

Events are not done at their PUBACK: a broker killed outright can lose messages
it acknowledged. The outbox keeps them "awaiting cloud ack" until the cloud's
`event_ack` command names them (the uplink applies it itself); a third stream,
the resend pump, republishes on the backlog channel every event whose ack is
overdue, and each connect's backlog includes every event still awaiting one.

Watchdog (edge/watchdog.py): the reconnect loop and the pumps beat the
heartbeat of the task they run in, except while a publish has waited for its
PUBACK longer than half the allowed staleness: a broker that stops answering
makes the uplink stale, and the watchdog restarts its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ruang import contract
from ruang.backoff import Backoff
from ruang.mqtt_url import BrokerAddress, BrokerRing
from ruang.mqtt_wire import MqttError
from ruang.tls import client_tls_context

from . import watchdog
from .mqtt_link import Link, open_link
from .outbox import Outbox
from .outbox_store import Row
from .settings import EdgeSettings
from .token_bucket import TokenBucket

log = logging.getLogger(__name__)

CommandHandler = Callable[[contract.Message], Awaitable[None]]
BirthFactory = Callable[[int], contract.NodeState]


class UplinkStats:
    """Counters for node health; outbox figures are read live from the outbox."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self.published_live = 0
        self.published_backlog = 0
        self.reconnects = 0
        self.rejected_commands = 0
        self.resent = 0
        self.cloud_acks = 0
        self.last_error: str | None = None

    @property
    def published(self) -> int:
        return self.published_live + self.published_backlog

    @property
    def outbox_depth(self) -> int:
        return self._outbox.depth

    @property
    def dropped_telemetry(self) -> int:
        return self._outbox.dropped_telemetry

    @property
    def alarm(self) -> str | None:
        return self._outbox.alarm

    def as_dict(self) -> dict[str, Any]:
        return {
            "published_live": self.published_live,
            "published_backlog": self.published_backlog,
            "reconnects": self.reconnects,
            "rejected_commands": self.rejected_commands,
            "resent": self.resent,
            "cloud_acks": self.cloud_acks,
            "last_error": self.last_error,
            **self._outbox.health(),
        }


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
        outbox: Outbox | None = None,
    ) -> None:
        self._settings = settings
        self._node = settings.node_id
        # One broker, or the nodes of a cluster: a failed session moves to the next.
        self._brokers = BrokerRing.from_urls(settings.mqtt_url)
        self._birth = birth
        self._on_command = on_command
        self._backoff = backoff or Backoff(base=0.5, cap=30.0)
        self._bdseq = BdSeqStore(settings.state_dir)
        self.outbox = outbox or Outbox.in_dir(
            settings.state_dir,
            max_mb=settings.outbox_max_mb,
            cloud_ack_timeout_s=settings.event_ack_timeout_s,
            cloud_ack_max_backoff_s=settings.event_ack_max_backoff_s,
        )
        self.outbox.on_commit(self._committed)
        self._bucket: TokenBucket | None = None
        self._rate: float | None = settings.backlog_default_rate
        # Rows committed after the current session's split point; None while offline,
        # when new rows simply wait in the outbox for the next session's backlog.
        self._live: deque[Row] | None = None
        self._live_ready = asyncio.Event()
        self.backlog_drained = asyncio.Event()
        self.connected = asyncio.Event()
        self.stats = UplinkStats(self.outbox)
        self.current_bdseq: int | None = None
        # Publishes awaiting their PUBACK -> when they started (monotonic), oldest first.
        self._inflight_since: dict[int, float] = {}
        # When the last event_ack arrived (monotonic); None: never (maybe an older cloud).
        self._last_cloud_ack: float | None = None
        self._stall_s = settings.watchdog_uplink_stale_s / 2
        self._beat_every = settings.watchdog_uplink_stale_s / 4

    @property
    def broker(self) -> BrokerAddress:
        """The broker (node) the uplink is connected to, or tries next."""
        return self._brokers.current

    def _beat(self) -> None:
        """Beats the watchdog unless a publish has been waiting too long for its PUBACK."""
        if self._inflight_since:
            oldest = next(iter(self._inflight_since.values()))
            if time.monotonic() - oldest > self._stall_s:
                return
        watchdog.beat()

    async def _sleep_beating(self, delay: float) -> None:
        end = time.monotonic() + delay
        while (left := end - time.monotonic()) > 0:
            watchdog.beat()
            await asyncio.sleep(min(left, self._beat_every))

    @property
    def queued(self) -> int:
        """Messages in the outbox, not yet acknowledged by the broker."""
        return self.outbox.depth

    @property
    def backlog_rate(self) -> float | None:
        return self._rate

    def set_backlog_rate(self, rate: float | None) -> None:
        """Messages per second the backlog may drain at (None: unlimited); applies at once."""
        self._rate = rate
        if self._bucket is not None:
            self._bucket.rate = rate

    def publish(self, message: contract.Message) -> None:
        """Puts a message into the outbox; never blocks the caller (a device loop)."""
        self.outbox.put(message)

    def _committed(self, rows: list[Row]) -> None:
        if self._live is not None and rows:
            self._live.extend(rows)
            self._live_ready.set()

    async def run(self) -> None:
        """Connects, publishes and reconnects until cancelled."""
        try:
            while True:
                watchdog.beat()
                bdseq = self._bdseq.next()
                try:
                    await self._session(bdseq)
                except MqttError as exc:
                    self.stats.last_error = str(exc)
                    log.warning("uplink to %s:%s lost: %s", self.broker.host, self.broker.port, exc)
                    # Another node of a cluster may be up; a lone broker is simply retried.
                    self._brokers.advance()
                finally:
                    self.connected.clear()
                    self._live = None
                    self._bucket = None
                self.stats.reconnects += 1
                delay = self._brokers.delay(self._backoff)
                log.info("uplink reconnecting in %.1f s", delay)
                await self._sleep_beating(delay)
        finally:
            # Commit the acks we already have, so a restart resends as little as possible.
            self.outbox.flush_now()

    def _link(self, bdseq: int) -> contextlib.AbstractAsyncContextManager[Link]:
        death = contract.NodeState(node=self._node, online=False, bdseq=bdseq)
        password = self._settings.mqtt_password
        broker = self.broker
        return open_link(
            broker.host,
            broker.port,
            client_id=f"ruang-edge-{self._node}",
            username=self._settings.mqtt_username or broker.username,
            password=password.get_secret_value() if password else broker.password,
            keepalive=self._settings.mqtt_keepalive_s,
            will=(
                contract.state_topic(self._node),
                contract.encode(death),
                contract.STATE_QOS,
                True,
            ),
            tls=client_tls_context(self._settings.mqtt_ca_file) if broker.tls else None,
        )

    async def _session(self, bdseq: int) -> None:
        async with self._link(bdseq) as client:
            self.current_bdseq = bdseq
            # The split point: everything committed by now is backlog, the rest is live.
            self.outbox.flush_now()
            split = self.outbox.last_committed_seq
            # Start collecting live rows at once: a commit during the awaits below must
            # land here, since the backlog stops at `split`.
            self._live = deque()
            birth = self._birth(bdseq)
            if birth.outbox_depth is None:
                birth = birth.model_copy(update={"outbox_depth": self.outbox.depth})
            await client.publish(
                contract.state_topic(self._node),
                contract.encode(birth),
                qos=contract.STATE_QOS,
                retain=True,
            )
            await client.subscribe(
                contract.node_command_subscription(self._node), contract.COMMAND_QOS
            )
            self._backoff.reset()
            self._brokers.reached()
            self._bucket = TokenBucket(self._rate)
            self.backlog_drained.clear()
            self.connected.set()
            log.info(
                "uplink connected to %s:%s (bdseq %d, backlog up to seq %d, %d queued)",
                self.broker.host,
                self.broker.port,
                bdseq,
                split,
                self.outbox.depth,
            )
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._live_pump(client))
                    tg.create_task(self._backlog_pump(client, split, self._bucket))
                    tg.create_task(self._commands(client))
                    tg.create_task(self._resend_pump(client, self._bucket))
            except asyncio.CancelledError:
                # A clean stop sends no last-will, so say offline ourselves before leaving.
                await self._say_offline(client, bdseq)
                raise
            except BaseExceptionGroup as group:
                mqtt_errors, rest = group.split(MqttError)
                if rest is not None or mqtt_errors is None:
                    raise
                raise mqtt_errors.exceptions[0] from None

    async def _say_offline(self, client: Link, bdseq: int) -> None:
        death = contract.NodeState(node=self._node, online=False, bdseq=bdseq)
        with contextlib.suppress(MqttError, TimeoutError):
            async with asyncio.timeout(1.0):
                await client.publish(
                    contract.state_topic(self._node),
                    contract.encode(death),
                    qos=contract.STATE_QOS,
                    retain=True,
                )

    @staticmethod
    def _honour_cancel() -> None:
        # A cancellation that races a PUBACK (Python 3.11's wait_for could swallow
        # one, in the aiomqtt days) is honoured here instead of going on with a
        # cancel pending.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError

    def _send(
        self,
        client: Link,
        row: Row,
        topic: str,
        qos: int,
        slots: asyncio.Semaphore | None,
        backlog: bool,
    ) -> asyncio.Future[bytes] | None:
        """Puts `row` on the wire now (callers send in seq order, so the wire keeps it).

        QoS 0 is the broker's at once; QoS 1 at its PUBACK (`_acked`), which is
        returned. No task per message: a callback on the PUBACK does the rest.
        """
        acked = client.send(topic, row.payload, qos)
        if acked is None:
            self._sent(row, backlog)
            return None
        key = id(row)
        self._inflight_since[key] = time.monotonic()
        acked.add_done_callback(functools.partial(self._acked, row, slots, backlog, key))
        return acked

    def _acked(
        self,
        row: Row,
        slots: asyncio.Semaphore | None,
        backlog: bool,
        key: int,
        acked: asyncio.Future[bytes],
    ) -> None:
        self._inflight_since.pop(key, None)
        if slots is not None:
            slots.release()
        if acked.cancelled() or acked.exception() is not None:
            return  # the connection went: the row stays in the outbox for the next session
        self._sent(row, backlog)

    def _sent(self, row: Row, backlog: bool) -> None:
        # Only now is it the broker's: a failure before leaves it in the outbox. An
        # event stays there until the cloud's event_ack (see the outbox).
        self.outbox.published(row)
        if backlog:
            self.stats.published_backlog += 1
        else:
            self.stats.published_live += 1

    async def _live_pump(self, client: Link) -> None:
        live = self._live
        assert live is not None
        slots = asyncio.Semaphore(self._settings.max_inflight)
        while True:
            self._honour_cancel()
            self._beat()
            while not live:
                self._live_ready.clear()
                # Idle is healthy: wake now and then to say so.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._beat_every):
                        await self._live_ready.wait()
                self._beat()
            row = live.popleft()
            if row.is_event:
                topic = contract.event_topic(self._node, row.kind)
                await slots.acquire()
                self._send(client, row, topic, contract.EVENT_QOS, slots, False)
            else:
                topic = contract.telemetry_topic(self._node, row.kind)
                self._send(client, row, topic, contract.TELEMETRY_QOS, None, False)

    async def _backlog_pump(self, client: Link, split: int, bucket: TokenBucket) -> None:
        slots = asyncio.Semaphore(self._settings.max_inflight)
        after = (-1, 0)
        while True:
            page = self.outbox.rows(after=after, upto_seq=split)
            if not page:
                break
            for row in page:
                self._honour_cancel()
                self._beat()
                await bucket.take()
                await slots.acquire()
                topic = contract.backlog_topic(self._node, row.kind)
                self._send(client, row, topic, contract.BACKLOG_QOS, slots, True)
            after = (page[-1].priority, page[-1].seq)
        # Wait for the last acks so "drained" means the broker has it all.
        for _ in range(self._settings.max_inflight):
            await slots.acquire()
        self.backlog_drained.set()
        log.info("uplink backlog drained")

    async def _resend_pump(self, client: Link, bucket: TokenBucket) -> None:
        """Republishes events whose cloud ack is overdue, on the backlog channel, paced."""
        timeout = self.outbox.cloud_ack_timeout_s
        if timeout is None:
            return
        # Everything awaiting an ack at the connect is in this session's backlog already.
        await self.backlog_drained.wait()
        slots = asyncio.Semaphore(self._settings.max_inflight)
        interval = max(0.05, min(5.0, timeout / 4))
        sending: set[int] = set()
        while True:
            await asyncio.sleep(interval)
            last = self._last_cloud_ack
            if last is not None and time.monotonic() - last < timeout:
                # Acks are still coming: the cloud is working through a backlog and
                # would get there. Resending now only doubles its work (and, on a
                # broker that persists every message, the broker's); what is still
                # unacknowledged once the acks stop is resent then.
                self._beat()
                continue
            for row in self.outbox.due_for_resend():
                if row.seq in sending:
                    continue  # its PUBACK is not in yet: the next scan sees the new due time
                self._honour_cancel()
                self._beat()
                await bucket.take()
                await slots.acquire()
                sending.add(row.seq)
                self.stats.resent += 1
                topic = contract.backlog_topic(self._node, row.kind)
                acked = self._send(client, row, topic, contract.BACKLOG_QOS, slots, True)
                if acked is None:
                    sending.discard(row.seq)
                else:
                    acked.add_done_callback(functools.partial(_forget, sending, row.seq))

    async def _commands(self, client: Link) -> None:
        async for msg in client.messages():
            try:
                _, command = contract.decode(msg.topic, msg.payload)
            except contract.ContractError as exc:
                self.stats.rejected_commands += 1
                log.warning("command refused on %s: %s", msg.topic, exc.reason)
                continue
            if isinstance(command, contract.EventAck):
                self.stats.cloud_acks += 1
                self._last_cloud_ack = time.monotonic()
                self.outbox.cloud_acked(command.ids)
                continue
            if isinstance(command, contract.BacklogRate):
                log.info("backlog rate set to %.1f msg/s by the cloud", command.max_msgs_per_s)
                self.set_backlog_rate(command.max_msgs_per_s)
                continue
            try:
                await self._on_command(command)
            except Exception:
                self.stats.rejected_commands += 1
                log.exception("command handler failed for %s", msg.topic)


def _forget(sending: set[int], seq: int, _acked: asyncio.Future[bytes]) -> None:
    sending.discard(seq)
