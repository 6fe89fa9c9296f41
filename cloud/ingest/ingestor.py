"""MQTT ingestion: validates contract messages and writes them to SQL and the telemetry sink.

One aiomqtt connection with a persistent session (stable client id,
clean_session=False) so QoS 1 events queued while the cloud was away are
delivered on reconnect. Messages are handled synchronously as paho decodes
them (see `_dispatch_queue`): telemetry is folded into an in-memory batch and
written every `flush_interval_s`; events and state messages wake the writer
at once. A bad message is counted by reason and dropped; nothing in a message
can stop the loop.

A message whose edge `ts` is outside the window around the cloud's clock
(settings.ingest_max_age_s / ingest_max_ahead_s) is refused as `clock_skew`;
an event so refused is parked in the dead-letter table (cloud/ingest/dead_letters.py).
When a batch fails to commit while the database still takes writes (a write
probe succeeds), the batch is bisected into separate transactions until the
message that fails on its own is found; it is parked as a dead letter and
acknowledged, and everything else is applied. When the probe fails too, the
database is down: nothing is parked, the batch is retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.timestamps import utc
from cloud.fleet import health as fleet
from cloud.ingest import dead_letters
from cloud.ingest.apply import Applier, ApplyResult, Envelope, Item, TelemetryBatch
from cloud.settings import CloudSettings
from cloud.telemetry import lineprotocol
from cloud.telemetry.sinks import TelemetrySink
from ruang import contract
from ruang.backoff import Backoff
from ruang.tasks import cancel_and_wait

log = logging.getLogger(__name__)

REJECT_LOG_INTERVAL_S = 10.0
# After this many failed writes in a row, pending telemetry samples are dropped
# (newer samples supersede them); events are kept and retried.
TELEMETRY_RETRY_LIMIT = 3
_TOPIC_CACHE_MAX = 50_000
SUBSCRIBE_TIMEOUT_S = 300.0
# event_ack messages awaiting the broker's PUBACK at once (see _send_event_acks).
EVENT_ACKS_IN_FLIGHT = 16
# How long stop() waits for the last acknowledgements to be sent before disconnecting.
STOP_ACK_GRACE_S = 2.0


@dataclass(frozen=True)
class ReplayOutcome:
    replayed: bool
    duplicate: bool = False  # it had been applied meanwhile (e.g. resent and accepted)
    reason: str | None = None  # why not, when not replayed


def _short(exc: BaseException) -> str:
    """One line of a database error: the driver's message, not the SQL and parameters."""
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    return f"{type(inner).__name__}: {text}"[:400]


# Telemetry naming a resource that is only written to the time series.
_SERIES_ONLY = (contract.Heartbeat, contract.BadgePresence, contract.Position)


class NotConnected(RuntimeError):
    """The cloud has no MQTT connection right now."""


@dataclass
class IngestStats:
    received: int = 0
    applied: int = 0
    duplicates: int = 0
    stale_deaths: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    write_errors: int = 0
    # Messages parked in the dead-letter table (poison or refused for the node's clock).
    dead_lettered: int = 0
    # Failed batches split up to find the message that fails alone.
    isolations: int = 0
    telemetry_dropped: int = 0
    nodes_timed_out: int = 0
    connects: int = 0
    connected: bool = False
    last_error: str | None = None
    last_error_at: float | None = None

    def error(self, text: str) -> None:
        self.last_error, self.last_error_at = text[:500], time.time()


def reject_category(reason: str) -> str:
    """A short, stable bucket for a ContractError reason (for counters, not for people)."""
    if ": ts: " in reason:
        # A timestamp beyond the contract's bounds: the node's clock, like the window.
        return "clock_skew"
    if reason.startswith(("topic outside", "malformed", "invalid node id")):
        return "topic"
    if reason.startswith("unknown"):
        return "unknown_kind"
    if "does not match topic node" in reason:
        return "node_mismatch"
    if "Invalid JSON" in reason or "JSON input" in reason:
        return "bad_json"
    if reason.startswith("commands"):
        return "wrong_direction"
    return "schema"


@dataclass(frozen=True)
class MqttTarget:
    host: str
    port: int
    username: str | None
    password: str | None


def parse_mqtt_url(url: str) -> MqttTarget:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp"):
        raise ValueError(f"unsupported MQTT URL scheme {parts.scheme!r} (use mqtt://host:port)")
    return MqttTarget(parts.hostname or "127.0.0.1", parts.port or 1883, parts.username,
                      parts.password)


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


def _desks_touched(items: list[Item], presence_written: dict[str, bool]) -> set[str]:
    """Desks a committed batch may have changed: new presence values, desk events.

    Replayed events are included too; listeners re-read the state, so an extra
    mention costs a query, a missing one a stale map.
    """
    desks = set(presence_written)
    for item in items:
        if isinstance(item, Envelope):
            desk = getattr(item.message, "desk", None)
            if desk is not None:
                desks.add(desk)
    return desks


class Ingestor:
    def __init__(
        self,
        settings: CloudSettings,
        engine: AsyncEngine,
        sink: TelemetrySink,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.stats = IngestStats()
        self.sink = sink
        self._engine = engine
        self._applier = Applier(
            engine.dialect.name,
            last_seen_resolution_s=min(5.0, settings.node_offline_after_s / 10),
            health_sample_interval_s=settings.fleet_sample_interval_s,
        )
        self._target = parse_mqtt_url(settings.mqtt_url)
        self._clock = clock
        self._client: aiomqtt.Client | None = None
        self._pending: list[Item] = []
        self._open: TelemetryBatch | None = None
        self._pending_count = 0
        self._lines: list[str] = []
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._write_failures = 0
        self._topics: dict[str, tuple[contract.ParsedTopic, type[BaseModel]]] = {}
        self._reject_logged: dict[str, tuple[float, int]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._last_sweep = 0.0
        self._stopping = False
        # QoS 1 message ids received but not yet acknowledged to the broker, in order:
        # a PUBACK goes out only after the message is committed to the database.
        self._unacked: list[int] = []
        self._paho: Any = None
        self._background: set[asyncio.Task[None]] = set()
        # Committed event ids per node, waiting for the event_ack sender (one at a time).
        self._event_acks: dict[str, list[str]] = {}
        self._event_ack_task: asyncio.Task[None] | None = None
        # Told which nodes' bookings an applied batch changed (the snapshot publisher).
        self.on_bookings_changed: Callable[[set[str]], None] | None = None
        # Told which desks an applied batch touched (the live floor map hub).
        self.on_desks_changed: Callable[[set[str]], None] | None = None
        # Told which rooms' occupancy an applied batch changed (the same hub).
        self.on_rooms_changed: Callable[[set[str]], None] | None = None
        self._max_age = settings.ingest_max_age_s
        self._max_ahead = settings.ingest_max_ahead_s
        # Refused for the clock, waiting for the writer: events to park (with the
        # message, for its event_ack), and per node (edge - cloud offset, receive time).
        self._parked: list[tuple[dead_letters.Parked, contract.Message]] = []
        self._skews: dict[str, tuple[float | None, float]] = {}

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._mqtt_loop(), name="ruang-ingest-mqtt"),
            asyncio.create_task(self._write_loop(), name="ruang-ingest-writer"),
        ]

    async def stop(self) -> None:
        """Writes whatever was received and acknowledges it, then disconnects.

        In this order so the PUBACKs of the last commit still have a connection to
        go out on: acknowledged after the disconnect, they went nowhere and the
        broker redelivered every message of that commit on the next start.
        """
        self._stopping = True
        mqtt_tasks = [t for t in self._tasks if t.get_name() == "ruang-ingest-mqtt"]
        # The writer is stopped between two flushes (never inside a commit).
        async with self._flush_lock:
            for task in self._tasks:
                if task not in mqtt_tasks:
                    await cancel_and_wait(task)
        await self.flush()
        # Let the acks queued by that flush (event_ack, audit_ack) reach the broker.
        if self._background:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_ACK_GRACE_S):
                    await asyncio.gather(*list(self._background), return_exceptions=True)
        for task in mqtt_tasks:
            await cancel_and_wait(task)
        self._tasks = []

    @property
    def connected(self) -> bool:
        return self.stats.connected

    # --- MQTT ---------------------------------------------------------------------------

    async def _mqtt_loop(self) -> None:
        backoff = Backoff(base=0.2, cap=10.0)
        while not self._stopping:
            try:
                await self._session(backoff)
            except Exception as exc:  # MqttError mostly; any failure means reconnect
                if self.stats.connected or backoff.attempt == 0:
                    log.warning("MQTT connection to %s:%d lost or refused: %s",
                                self._target.host, self._target.port, exc)
                self.stats.error(f"mqtt: {exc}")
            finally:
                self.stats.connected = False
                self._client = None
                # Ids belong to the lost connection; the broker redelivers those
                # messages (de-duplicated by message id) on the next session.
                self._paho = None
                self._unacked = []
            await asyncio.sleep(backoff.next_delay())

    async def _session(self, backoff: Backoff) -> None:
        client = aiomqtt.Client(
            self._target.host,
            self._target.port,
            username=self._target.username,
            password=self._target.password,
            identifier=self.settings.mqtt_client_id,
            clean_session=False,
            keepalive=self.settings.mqtt_keepalive_s,
            timeout=10,
            queue_type=_dispatch_queue(self._on_message),
        )
        # Persist, then acknowledge: paho would PUBACK as soon as our callback
        # returns, before the event is in the database. aiomqtt does not expose
        # paho's manual acknowledgement, so reach its client for this one switch.
        paho = client._client
        paho.manual_ack_set(True)
        async with client:
            self._client = client
            self._paho = paho
            self.stats.connected = True
            self.stats.connects += 1
            backoff.reset()
            # With a persistent session the broker delivers the queued backlog right
            # after CONNACK, and the SUBACK only after it: allow for a long drain.
            await client.subscribe(list(contract.CLOUD_SUBSCRIPTIONS), timeout=SUBSCRIBE_TIMEOUT_S)
            log.info("ingesting from MQTT %s:%d", self._target.host, self._target.port)
            # Messages never reach this iterator (see _dispatch_queue); it raises
            # MqttError when the connection drops.
            async for _ in client.messages:
                pass

    async def publish(self, message: contract.Message, *, retain: bool = False) -> str:
        """Publishes a cloud -> edge message (a command); returns its topic.

        `retain` keeps it on the broker for a node that connects later (snapshots).
        """
        client = self._client
        if client is None or not self.stats.connected:
            raise NotConnected("not connected to the MQTT broker")
        topic = contract.topic_for(message)
        try:
            await client.publish(topic, contract.encode(message), qos=contract.qos_for(message),
                                 retain=retain, timeout=5)
        except aiomqtt.MqttError as exc:
            raise NotConnected(str(exc)) from exc
        return topic

    # --- the hot path: one call per MQTT message ----------------------------------------

    def _decode(self, topic: str, payload: Any) -> tuple[contract.ParsedTopic, contract.Message]:
        # Same checks as contract.decode, with the per-topic part cached: parsing
        # the topic costs more than validating the payload. Any failure goes
        # through contract.decode so the reason is the contract's own.
        entry = self._topics.get(topic)
        if entry is None:
            parsed = contract.parse_topic(topic)
            if parsed.channel is contract.Channel.COMMANDS:
                raise contract.ContractError("commands go cloud -> edge; not ingested")
            entry = (parsed, contract.model_for(parsed))
            if len(self._topics) >= _TOPIC_CACHE_MAX:
                self._topics.clear()
            self._topics[topic] = entry
        parsed, model = entry
        try:
            message = model.model_validate_json(payload)
        except ValueError:
            message = None
        if message is None or message.node != parsed.node:  # type: ignore[attr-defined]
            contract.decode(topic, payload)  # raises with the contract's reason
            raise contract.ContractError("payload rejected")
        return parsed, message  # type: ignore[return-value]

    def _on_message(self, mqtt_message: aiomqtt.Message) -> None:
        self.stats.received += 1
        if mqtt_message.qos:
            self._unacked.append(mqtt_message.mid)
            self._wake.set()
        topic, payload = mqtt_message.topic.value, mqtt_message.payload
        try:
            parsed, message = self._decode(topic, payload)
        except contract.ContractError as exc:
            self._reject(exc.reason)
            if ": ts: " in exc.reason:
                entry = self._topics.get(topic)
                if entry is not None:
                    self._skews[entry[0].node] = (None, self._clock())
            return
        except Exception as exc:  # never let one message break paho's read loop
            self._reject(f"internal: {type(exc).__name__}: {exc}", category="internal")
            return
        received = self._clock()
        channel = parsed.channel
        # State messages are exempt: a last-will carries the time it was registered,
        # which can be weeks old, and state ordering goes by bdseq, not by ts.
        ts = message.ts
        if (ts < received - self._max_age or ts > received + self._max_ahead) and (
            channel is not contract.Channel.STATE
        ):
            self._clock_skewed(parsed, message, topic, payload, received)
            return
        if channel is contract.Channel.TELEMETRY:
            self._take_telemetry(message, received)
        elif channel is contract.Channel.BACKLOG and parsed.kind in contract.TELEMETRY_KINDS:
            # Historical samples from a node's outbox: they belong in the time
            # series, but must not overwrite the desks' current state.
            refusal = self._applier.bindings.check_cached(message)
            if refusal is not None:
                self._reject(f"node {message.node} may not speak for {refusal.resource}",
                             category=refusal.category)
                return
            line = lineprotocol.for_telemetry(message)
            if line is not None:
                self._lines.append(line)
            self._pending_count += 1
            self._wake.set()
        else:
            self._pending.append(Envelope(parsed, message, received, topic, payload))
            self._open = None  # later telemetry goes after this message
            self._pending_count += 1
            self._wake.set()

    def _clock_skewed(
        self, parsed: contract.ParsedTopic, message: contract.Message, topic: str,
        payload: bytes, received: float,
    ) -> None:
        """Refuses a message whose ts is outside the window; an event is parked, not lost."""
        offset = message.ts - received
        side = "ahead of" if offset > 0 else "behind"
        reason = (f"clock_skew: ts {message.ts:.0f} is {abs(offset):.0f} s {side} the cloud "
                  f"(accepted: {self._max_age:.0f} s behind to {self._max_ahead:.0f} s ahead)")
        self._reject(reason, category="clock_skew")
        self._skews[message.node] = (offset, received)
        if parsed.kind in contract.EVENT_KINDS:
            self._parked.append((dead_letters.Parked(
                message.id, message.node, topic, bytes(payload), reason, received), message))
        self._wake.set()

    def _take_telemetry(self, message: contract.Message, received: float) -> None:
        # What a node may speak for (cloud/ingest/bindings.py): series-only kinds are decided
        # here; for the rest the Applier decides and counts, this only keeps the line out.
        refusal = self._applier.bindings.check_cached(message)
        if refusal is not None and type(message) in _SERIES_ONLY:
            self._reject(f"node {message.node} may not speak for {refusal.resource}",
                         category=refusal.category)
            return
        batch = self._open
        if batch is None:
            batch = self._open = TelemetryBatch()
            self._pending.append(batch)
        batch.count += 1
        batch.seen[message.node] = received
        kind = type(message)
        if kind is contract.Presence:
            presence: contract.Presence = message  # type: ignore[assignment]
            batch.presence[presence.desk] = (presence.node, presence.present, presence.ts)
            if refusal is None:
                self._lines.append(lineprotocol.presence(presence))
        elif kind is contract.RoomPresence:
            room: contract.RoomPresence = message  # type: ignore[assignment]
            batch.rooms[room.room] = (room.node, room.present, room.ts, room.sensor)
            if refusal is None:
                self._lines.append(lineprotocol.room_presence(room))
        elif kind is contract.Heartbeat:
            self._lines.append(lineprotocol.heartbeat(message))  # type: ignore[arg-type]
        elif kind is contract.NodeHealth:
            health: contract.NodeHealth = message  # type: ignore[assignment]
            self._lines.append(lineprotocol.node_health(health))
            # Latest per node for the fleet view; the receive time gives the clock offset.
            batch.health[health.node] = (health, batch.seen[health.node])
        elif kind is contract.DeviceHealth:
            device: contract.DeviceHealth = message  # type: ignore[assignment]
            if refusal is None:
                self._lines.append(lineprotocol.device_health(device))
            batch.devices[(device.node, device.device)] = (device, batch.seen[device.node])
        else:
            line = lineprotocol.for_telemetry(message)
            if line is not None:
                self._lines.append(line)
        self._pending_count += 1
        if self._pending_count >= self.settings.flush_max_messages:
            self._wake.set()

    def _reject(self, reason: str, category: str | None = None) -> None:
        category = category or reject_category(reason)
        rejected = self.stats.rejected
        rejected[category] = rejected.get(category, 0) + 1
        self.stats.error(f"rejected ({category}): {reason}")
        # Rate-limited per category: a misbehaving node must not flood the log.
        now = time.monotonic()
        last, folded = self._reject_logged.get(category, (float("-inf"), 0))
        if now - last >= REJECT_LOG_INTERVAL_S:
            log.warning("dropped message (%s, %d similar since last report): %s",
                        category, folded, reason)
            self._reject_logged[category] = (now, 0)
        else:
            self._reject_logged[category] = (last, folded + 1)

    # --- writing ------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        interval = self.settings.flush_interval_s
        sweep_every = max(interval, min(self.settings.node_offline_after_s / 4, 10.0))
        while not self._stopping:
            # asyncio.timeout rather than wait_for: 3.11's wait_for can lose a cancel.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            self._wake.clear()
            ok = await self.flush()
            if not ok:
                await asyncio.sleep(Backoff(base=interval, cap=5.0,
                                            attempt=self._write_failures).next_delay())
            now = time.monotonic()
            if now - self._last_sweep >= sweep_every:
                self._last_sweep = now
                await self._sweep()

    async def flush(self) -> bool:
        """Writes everything received so far; False when the database write failed."""
        async with self._flush_lock:
            items, self._pending, self._open = self._pending, [], None
            self._pending_count = 0
            lines, self._lines = self._lines, []
            acks, self._unacked, paho = self._unacked, [], self._paho
            parked, self._parked = self._parked, []
            skews, self._skews = self._skews, {}
            if lines:
                self.sink.write(lines)
            if parked or skews:
                try:
                    await self._park(parked, skews)
                except Exception as exc:
                    self._parked[:0] = parked
                    self._skews = skews | self._skews
                    return self._flush_failed(items, exc, paho, acks)
            if items:
                left, failure = await self._apply(items)
                if left:
                    assert failure is not None
                    return self._flush_failed(left, failure, paho, acks)
            self._ack(paho, acks)
            self._write_failures = 0
            return True

    def _flush_failed(self, items: list[Item], exc: Exception, paho: Any, acks: list[int]) -> bool:
        self._write_failed(items, exc)
        if paho is self._paho:
            self._unacked[:0] = acks
        return False

    async def _commit(self, items: list[Item]) -> ApplyResult:
        async with self._engine.begin() as conn:
            return await self._applier.apply(conn, items)

    async def _apply(self, items: list[Item]) -> tuple[list[Item], Exception | None]:
        """Applies `items`; returns those left unapplied because the database is down."""
        try:
            result = await self._commit(items)
        except Exception as exc:
            if not await self._database_writable():
                return items, exc
            # The database takes writes but not this batch: something in it is poison.
            self.stats.isolations += 1
            log.warning("a batch of %d item(s) failed while the database takes writes; "
                        "isolating the failing message(s): %s", len(items), _short(exc))
            return await self._bisect(items, exc)
        self._committed(items, result)
        return [], None

    async def _bisect(
        self, items: list[Item], exc: Exception
    ) -> tuple[list[Item], Exception | None]:
        """Applies halves of a failed batch in separate transactions, recursively, in order."""
        if len(items) == 1:
            return await self._isolated(items[0], exc)
        mid = len(items) // 2
        halves = (items[:mid], items[mid:])
        for i, half in enumerate(halves):
            try:
                result = await self._commit(half)
            except Exception as half_exc:
                left, last = await self._bisect(half, half_exc)
                if left:
                    return left + (halves[1] if i == 0 else []), last
            else:
                self._committed(half, result)
        return [], None

    async def _isolated(self, item: Item, exc: Exception) -> tuple[list[Item], Exception | None]:
        """One item failed alone: park it, unless the database (not the item) is the trouble."""
        if not await self._database_writable():
            return [item], exc
        failure: Exception = exc
        try:  # once more: a lock timeout or a serialisation conflict passes
            result = await self._commit([item])
        except Exception as again:
            failure = again
        else:
            self._committed([item], result)
            return [], None
        reason = f"apply: {_short(failure)}"
        if isinstance(item, TelemetryBatch):
            # QoS 0 samples, already superseded by newer ones: dropped, counted.
            self.stats.telemetry_dropped += item.count
            self._reject(f"{item.count} telemetry sample(s) could not be written: {reason}",
                         category="unappliable")
            return [], None
        message = item.message
        letter = dead_letters.Parked(
            message.id, message.node, item.topic or contract.topic_for(message),
            item.raw or contract.encode(message), reason, item.received_at)
        try:
            await self._park([(letter, message)], {})
        except Exception as park_exc:
            return [item], park_exc
        log.error("message %s from %s (%s) fails on its own; parked as a dead letter: %s",
                  message.id, message.node, letter.topic, reason)
        return [], None

    async def _database_writable(self) -> bool:
        try:
            async with self._engine.begin() as conn:
                await dead_letters.write_probe(conn)
        except Exception:
            return False
        return True

    async def _park(
        self, parked: list[tuple[dead_letters.Parked, contract.Message]],
        skews: dict[str, tuple[float | None, float]],
    ) -> None:
        """Stores dead letters and clock-skew marks, then acknowledges the parked events."""
        async with self._engine.begin() as conn:
            await dead_letters.park(conn, [letter for letter, _ in parked])
            await dead_letters.mark_clock_skew(conn, skews)
        self.stats.dead_lettered += len(parked)
        # The node may forget them: they are kept here, to be replayed by an admin.
        # (No audit_ack for a parked access decision: the node's audit log keeps it.)
        self._queue_event_acks(message for _, message in parked)

    def _committed(self, items: list[Item], result: ApplyResult) -> None:
        """Everything that follows one committed transaction of `items`."""
        self._acknowledge_access_decisions(items)
        self._acknowledge_events(items)
        self._applier.committed(result)
        self.stats.applied += result.applied
        self.stats.duplicates += result.duplicates
        self.stats.stale_deaths += result.stale_deaths
        for category, count in result.refused.items():  # see cloud/ingest/bindings.py
            for _ in range(count):
                self._reject(result.last_refusal or category, category=category)
        if result.lines:
            self.sink.write(result.lines)
        if result.booking_nodes and self.on_bookings_changed is not None:
            self.on_bookings_changed(result.booking_nodes)
        if self.on_desks_changed is not None:
            desks = _desks_touched(items, result.presence_written)
            if desks:
                self.on_desks_changed(desks)
        if result.rooms_changed and self.on_rooms_changed is not None:
            self.on_rooms_changed(result.rooms_changed)

    # --- dead letters: replay ------------------------------------------------------------

    async def replay_dead_letter(self, letter_id: int) -> ReplayOutcome | None:
        """Decodes a parked message again and applies it; None if there is no such letter.

        Applied (or found already applied): the letter is deleted in the same
        transaction. Refused or failing again: its attempts, reason and last_seen move.
        """
        async with self._engine.connect() as conn:
            row = await dead_letters.get_letter(conn, letter_id)
        if row is None:
            return None
        now = self._clock()
        try:
            env = self._redecode(row["topic"], row["payload"], now)
        except contract.ContractError as exc:
            return await self._replay_failed(letter_id, exc.reason, now)
        async with self._flush_lock:
            try:
                async with self._engine.begin() as conn:
                    result = await self._applier.apply(conn, [env])
                    await dead_letters.delete_letter(conn, letter_id)
            except Exception as exc:
                return await self._replay_failed(letter_id, f"apply: {_short(exc)}", now)
            self._committed([env], result)
        return ReplayOutcome(replayed=True, duplicate=result.duplicates > 0)

    def _redecode(self, topic: str, payload: bytes, now: float) -> Envelope:
        parsed, message = contract.decode(topic, payload)
        if parsed.channel is contract.Channel.COMMANDS or parsed.kind in contract.TELEMETRY_KINDS:
            raise contract.ContractError(f"{parsed.channel}/{parsed.kind}: not replayable")
        if parsed.channel is not contract.Channel.STATE and not (
            now - self._max_age <= message.ts <= now + self._max_ahead
        ):
            raise contract.ContractError(
                f"clock_skew: ts {message.ts:.0f} still outside the ingestion window")
        return Envelope(parsed, message, now, topic, payload)

    async def _replay_failed(self, letter_id: int, reason: str, now: float) -> ReplayOutcome:
        with contextlib.suppress(Exception):  # the outcome is reported either way
            async with self._engine.begin() as conn:
                await dead_letters.replay_failed(conn, letter_id, reason, utc(now))
        return ReplayOutcome(replayed=False, reason=reason)

    def _acknowledge_access_decisions(self, items: list[Item]) -> None:
        """Tells each node which access decisions are now committed (new or replayed).

        The node keeps every decision in its hash-chained audit log until then; if
        this ack is lost the node sends the decision again and the replay is a no-op.
        """
        seqs: dict[str, list[int]] = {}
        for item in items:
            if isinstance(item, Envelope) and isinstance(item.message, contract.AccessDecision):
                seqs.setdefault(item.message.node, []).append(item.message.audit_seq)
        for node, node_seqs in seqs.items():
            task = asyncio.create_task(self._send_quietly(
                contract.AuditAck(node=node, seqs=tuple(node_seqs[:5000]))))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    # --- event_ack: the edge keeps each event until the cloud has committed it -------

    def _acknowledge_events(self, items: list[Item]) -> None:
        """Queues an event_ack for every committed event (new or duplicate), per node.

        A broker killed outright can lose QoS 1 messages it already PUBACKed, so
        the node keeps each event until this ack and resends it otherwise; the
        duplicate is dropped by message id and acknowledged again. Acks of many
        commits are coalesced while one is being sent (at most MAX_EVENT_ACK_IDS
        ids per message); a lost ack costs only a resend.
        """
        self._queue_event_acks(item.message for item in items if isinstance(item, Envelope))

    def _queue_event_acks(self, messages: Iterable[contract.Message]) -> None:
        pending = self._event_acks
        for message in messages:
            if contract.is_event(message):
                pending.setdefault(message.node, []).append(message.id)
        if pending and self._event_ack_task is None:
            task = asyncio.create_task(self._send_event_acks(pending))
            self._event_ack_task = task
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _send_event_acks(self, pending: dict[str, list[str]]) -> None:
        # Several acks in flight at once: the broker's PUBACK to the cloud queues behind
        # every message it is still delivering to us, which can take many seconds in a
        # backlog, while the ack itself reaches the node at once.
        slots = asyncio.Semaphore(EVENT_ACKS_IN_FLIGHT)

        async def send(message: contract.Message) -> None:
            try:
                await self._send_quietly(message)
            finally:
                slots.release()

        try:
            while pending:
                node = next(iter(pending))
                ids = pending[node]
                chunk, rest = ids[: contract.MAX_EVENT_ACK_IDS], ids[contract.MAX_EVENT_ACK_IDS :]
                if rest:
                    pending[node] = rest
                else:
                    del pending[node]
                await slots.acquire()
                task = asyncio.create_task(send(contract.EventAck(node=node, ids=tuple(chunk))))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        finally:
            self._event_ack_task = None

    async def _send_quietly(self, message: contract.Message) -> None:
        try:
            await self.publish(message)
        except (NotConnected, contract.ContractError) as exc:
            log.info("could not send %s to %s now: %s", type(message).__name__, message.node, exc)

    def _ack(self, paho: Any, mids: list[int]) -> None:
        # Only on the connection the messages came in on; after a reconnect the
        # broker resends them instead.
        if paho is None or paho is not self._paho:
            return
        for mid in mids:
            paho.ack(mid, 1)

    def _write_failed(self, items: list[Item], exc: Exception) -> None:
        self._write_failures += 1
        self.stats.write_errors += 1
        self.stats.error(f"database: {type(exc).__name__}: {exc}")
        if self._write_failures == 1 or self._write_failures % 20 == 0:
            log.error("database write failed (%d in a row), will retry: %s",
                      self._write_failures, exc)
        if self._write_failures >= TELEMETRY_RETRY_LIMIT:
            dropped = sum(i.count for i in items if isinstance(i, TelemetryBatch))
            self.stats.telemetry_dropped += dropped
            items = [i for i in items if not isinstance(i, TelemetryBatch)]
        # Put them back in front of whatever arrived meanwhile, order kept.
        self._pending[:0] = items
        self._open = None

    async def _sweep(self) -> None:
        cutoff = self._clock() - self.settings.node_offline_after_s
        history_cutoff = self._clock() - self.settings.fleet_history_hours * 3600
        try:
            async with self._engine.begin() as conn:
                silent = await self._applier.mark_silent_nodes_offline(conn, cutoff)
                await fleet.prune_health_samples(conn, history_cutoff)
        except Exception as exc:
            self.stats.error(f"database: {type(exc).__name__}: {exc}")
            return
        if silent:
            self._applier.forget_nodes(silent)
            self.stats.nodes_timed_out += len(silent)
            now = self._clock()
            self.sink.write([lineprotocol.node_state(node, False, now) for node in silent])
            log.info("no message for %.0f s: %s marked offline",
                     self.settings.node_offline_after_s, ", ".join(silent[:10]))
