"""MQTT ingestion: received contract messages -> SQL and the telemetry sink -> acks.

The `Ingestor` composes the parts. Its broker session (cloud/mqtt/session.py)
hands over each message as paho decodes it (`_on_message`); it is decoded and
validated (cloud/ingest/decode.py), telemetry is folded into an in-memory batch
written every `flush_interval_s`, and events and state messages wake the writer
at once. A bad message is counted by reason and dropped (cloud/ingest/stats.py);
nothing in a message can stop the loop.

A message whose edge `ts` is outside the window around the cloud's clock
(settings.ingest_max_age_s / ingest_max_ahead_s) is refused as `clock_skew`;
an event so refused is parked as a dead letter. `flush` applies the batch
(cloud/ingest/apply.py) through failure isolation (cloud/ingest/isolation.py),
the events first in a transaction of their own and the telemetry that need not
precede them in a second (cloud/ingest/events_first.py), and acknowledges each
part only once it is committed: the broker's PUBACKs (session) and the nodes'
event_ack / audit_ack (cloud/ingest/acks.py). The write loop also runs the
offline sweep (cloud/ingest/sweep.py). The session doubles as the cloud's
`CommandSender` (cloud/mqtt/commands.py) for everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.ingest import dead_letters, events_first
from cloud.ingest.acks import Acks
from cloud.ingest.apply import Applier, ApplyResult, Envelope, Item, TelemetryBatch
from cloud.ingest.decode import Decoder
from cloud.ingest.isolation import Isolation, ParkedEvent, ReplayOutcome, Skews
from cloud.ingest.items import RideApplier
from cloud.ingest.stats import IngestStats
from cloud.ingest.sweep import Sweep
from cloud.mqtt.session import Held, MqttSession
from cloud.privacy.pseudonyms import Pseudonyms
from cloud.settings import CloudSettings
from cloud.telemetry import lineprotocol
from cloud.telemetry.sinks import TelemetrySink
from ruang import contract
from ruang.backoff import Backoff
from ruang.mqtt_wire import Incoming
from ruang.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# After this many failed writes in a row, pending telemetry samples are dropped
# (newer samples supersede them); events are kept and retried.
TELEMETRY_RETRY_LIMIT = 3
# How long stop() waits for the last acknowledgements to be sent before disconnecting.
STOP_ACK_GRACE_S = 2.0

# Telemetry naming a resource that is only written to the time series.
_SERIES_ONLY = (contract.Heartbeat, contract.BadgePresence, contract.Position)


def _lag_channel(channel: contract.Channel) -> str | None:
    """The lag histogram's label; None for state (a will's ts is when it was registered).

    Identity tests and plain strings: an enum member hashes through Python code,
    and this runs for every message.
    """
    if channel is contract.Channel.TELEMETRY:
        return "telemetry"
    if channel is contract.Channel.EVENTS:
        return "events"
    if channel is contract.Channel.BACKLOG:
        return "backlog"
    return None


def _carries_qos1(items: list[Item]) -> bool:
    """Whether `items` hold samples of QoS 1 messages: presence drained from an outbox.

    (The other backlog telemetry only becomes lines, handed to the sink before any commit.)
    """
    return any(isinstance(i, TelemetryBatch) and i.backlog_presence for i in items)


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
        rides: RideApplier | None = None,
        subscriptions: Iterable[tuple[str, int]] = contract.CLOUD_SUBSCRIPTIONS,
        client_id: str | None = None,
        pseudonyms: Pseudonyms | None = None,
    ) -> None:
        self.settings = settings
        # Badge ids become keyed pseudonyms before any line is built (docs/privacy.md).
        self._pseudonym = (pseudonyms or Pseudonyms.from_settings(settings)).badge
        self.stats = IngestStats()
        self.sink = sink
        self._engine = engine
        self._applier = Applier(
            engine.dialect.name,
            last_seen_resolution_s=min(5.0, settings.node_offline_after_s / 10),
            health_sample_interval_s=settings.fleet_sample_interval_s,
            rides=rides,
        )
        self._clock = clock
        # The broker session; also the cloud's CommandSender (app.state.commands).
        # An ingest worker passes shared subscriptions and its own client id
        # (cloud/runtime/roles.py); one process alone takes the defaults.
        self.session = MqttSession(
            settings, self._on_message, subscriptions, on_error=self.stats.error,
            client_id=client_id,
        )  # fmt: skip
        self._acks = Acks(self.session)
        self._max_age = settings.ingest_max_age_s
        self._max_ahead = settings.ingest_max_ahead_s
        self._isolation = Isolation(
            engine,
            self._applier,
            self.stats,
            self._acks,
            self._committed,
            clock=clock,
            max_age_s=self._max_age,
            max_ahead_s=self._max_ahead,
        )
        self._sweep = Sweep(settings, engine, self._applier, self.stats, sink, clock)
        self._decoder = Decoder()
        self._pending: list[Item] = []
        self._open: TelemetryBatch | None = None
        self._pending_count = 0
        self._lines: list[str] = []
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._write_failures = 0
        self._writer: asyncio.Task[None] | None = None
        self._last_sweep = 0.0
        self._stopping = False
        # Told which nodes' bookings an applied batch changed (the snapshot publisher).
        self.on_bookings_changed: Callable[[set[str]], None] | None = None
        # Told which desks an applied batch touched (the live floor map hub).
        self.on_desks_changed: Callable[[set[str]], None] | None = None
        # Told which rooms' occupancy an applied batch changed (the same hub).
        self.on_rooms_changed: Callable[[set[str]], None] | None = None
        # Given every accepted vehicle position, live (False) or from a backlog (True):
        # live transport (cloud/transport/live.py). Must only queue: it runs per message.
        self.on_position: Callable[[contract.Position, bool], None] | None = None
        # Refused for the clock, waiting for the writer: events to park (with the
        # message, for its event_ack), and per node (edge - cloud offset, receive time).
        self._parked: list[ParkedEvent] = []
        self._skews: Skews = {}

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self.session.start()
        self._writer = asyncio.create_task(self._write_loop(), name="ruang-ingest-writer")

    async def stop(self) -> None:
        """Writes whatever was received and acknowledges it, then disconnects.

        In this order so the PUBACKs of the last commit still have a connection to
        go out on: acknowledged after the disconnect, they went nowhere and the
        broker redelivered every message of that commit on the next start.
        """
        self._stopping = True
        # The writer is stopped between two flushes (never inside a commit).
        async with self._flush_lock:
            if self._writer is not None:
                await cancel_and_wait(self._writer)
                self._writer = None
        await self.flush()
        # Let the acks queued by that flush (event_ack, audit_ack) reach the broker.
        await self._acks.drain(STOP_ACK_GRACE_S)
        await self.session.stop()

    @property
    def connected(self) -> bool:
        return self.session.connected

    # --- the hot path: one call per MQTT message ----------------------------------------

    def _on_message(self, mqtt_message: Incoming) -> None:
        self.stats.received += 1
        if mqtt_message.qos:  # held by the session until committed: write it soon
            self._wake.set()
        topic, payload = mqtt_message.topic, mqtt_message.payload
        try:
            parsed, message = self._decoder.decode(topic, payload)
        except contract.ContractError as exc:
            self.stats.reject(exc.reason)
            if ": ts: " in exc.reason:
                node = self._decoder.node_of(topic)
                if node is not None:
                    self._skews[node] = (None, self._clock())
            return
        except Exception as exc:  # never let one message break paho's read loop
            self.stats.reject(f"internal: {type(exc).__name__}: {exc}", category="internal")
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
        self.stats.accept(parsed.kind or "state", _lag_channel(channel), received - ts)
        if channel is contract.Channel.TELEMETRY:
            self._take_telemetry(message, received)
        elif channel is contract.Channel.BACKLOG and parsed.kind in contract.TELEMETRY_KINDS:
            # Historical samples from a node's outbox: they belong in the time
            # series, but must not overwrite the desks' current state.
            refusal = self._applier.bindings.check_cached(message)
            if refusal is not None:
                self.stats.reject(
                    f"node {message.node} may not speak for {refusal.resource}",
                    category=refusal.category,
                )
                return
            line = lineprotocol.for_telemetry(message, self._pseudonym)
            if line is not None:
                self._lines.append(line)
            if self.on_position is not None and type(message) is contract.Position:
                self.on_position(message, True)
            elif type(message) is contract.Presence:
                self._take_backlog_presence(message)
            self._pending_count += 1
            self._wake.set()
        else:
            self._pending.append(Envelope(parsed, message, received, topic, payload))
            self._open = None  # later telemetry goes after this message
            self._pending_count += 1
            self._wake.set()

    def _clock_skewed(
        self,
        parsed: contract.ParsedTopic,
        message: contract.Message,
        topic: str,
        payload: bytes,
        received: float,
    ) -> None:
        """Refuses a message whose ts is outside the window; an event is parked, not lost."""
        offset = message.ts - received
        side = "ahead of" if offset > 0 else "behind"
        reason = (
            f"clock_skew: ts {message.ts:.0f} is {abs(offset):.0f} s {side} the cloud "
            f"(accepted: {self._max_age:.0f} s behind to {self._max_ahead:.0f} s ahead)"
        )
        self.stats.reject(reason, category="clock_skew")
        self._skews[message.node] = (offset, received)
        if parsed.kind in contract.EVENT_KINDS:
            self._parked.append(
                (
                    dead_letters.Parked(
                        message.id, message.node, topic, bytes(payload), reason, received
                    ),
                    message,
                )
            )
        self._wake.set()

    def _take_backlog_presence(self, presence: contract.Presence) -> None:
        # The sensed history of the outage: presence_changes, never the desk's state.
        batch = self._open
        if batch is None:
            batch = self._open = TelemetryBatch()
            self._pending.append(batch)
        samples = batch.backlog_presence.setdefault(presence.desk, [])
        samples.append((presence.node, presence.present, presence.ts))

    def _take_telemetry(self, message: contract.Message, received: float) -> None:
        # What a node may speak for (cloud/ingest/bindings.py): series-only kinds are decided
        # here; for the rest the Applier decides and counts, this only keeps the line out.
        refusal = self._applier.bindings.check_cached(message)
        if refusal is not None and type(message) in _SERIES_ONLY:
            self.stats.reject(
                f"node {message.node} may not speak for {refusal.resource}",
                category=refusal.category,
            )
            return
        batch = self._open
        if batch is None:
            batch = self._open = TelemetryBatch()
            self._pending.append(batch)
        node = message.node
        batch.count += 1
        batch.counts[node] = batch.counts.get(node, 0) + 1
        batch.seen[node] = received
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
        elif kind is contract.Position:
            self._lines.append(lineprotocol.position(message))  # type: ignore[arg-type]
            if self.on_position is not None:
                self.on_position(message, False)  # type: ignore[arg-type]
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
                self._lines.append(lineprotocol.device_health(device, self._pseudonym))
            batch.devices[(device.node, device.device)] = (device, batch.seen[device.node])
        else:
            line = lineprotocol.for_telemetry(message, self._pseudonym)
            if line is not None:
                self._lines.append(line)
        self._pending_count += 1
        if self._pending_count >= self.settings.flush_max_messages:
            self._wake.set()

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
                await asyncio.sleep(
                    Backoff(base=interval, cap=5.0, attempt=self._write_failures).next_delay()
                )
            now = time.monotonic()
            if now - self._last_sweep >= sweep_every:
                self._last_sweep = now
                await self._sweep.run()

    async def flush(self) -> bool:
        """Writes everything received so far; False when the database write failed."""
        async with self._flush_lock:
            items, self._pending, self._open = self._pending, [], None
            self._pending_count = 0
            lines, self._lines = self._lines, []
            held = self.session.take_held()
            parked, self._parked = self._parked, []
            skews, self._skews = self._skews, {}
            if lines:
                self.sink.write(lines)
            if parked or skews:
                try:
                    await self._isolation.park(parked, skews)
                except Exception as exc:
                    self._parked[:0] = parked
                    self._skews = skews | self._skews
                    return self._flush_failed(items, exc, held)
            # Events first, in a short transaction of their own; the telemetry that
            # need not precede them in a second one (cloud/ingest/events_first.py).
            first, rest = events_first.split(items)
            if first:
                left, failure = await self._isolation.apply(first)
                if left:
                    assert failure is not None
                    return self._flush_failed(left + rest, failure, held)
                if not _carries_qos1(rest):
                    # Everything the held messages carried is committed: PUBACK now,
                    # not after the telemetry's transaction.
                    self.session.ack(held)
                    held = Held(held.connection)
            if rest:
                left, failure = await self._isolation.apply(rest)
                if left:
                    assert failure is not None
                    return self._flush_failed(left, failure, held)
            self.session.ack(held)
            self._write_failures = 0
            return True

    def _flush_failed(self, items: list[Item], exc: Exception, held: Held) -> bool:
        self._write_failed(items, exc)
        self.session.hold_again(held)
        return False

    def _committed(self, items: list[Item], result: ApplyResult) -> None:
        """Everything that follows one committed transaction of `items`."""
        self._acks.committed(items)
        self._applier.committed(result)
        self.stats.applied += result.applied
        self.stats.duplicates += result.duplicates
        self.stats.stale_deaths += result.stale_deaths
        for key, count in result.transport.items():
            self.stats.transport[key] = self.stats.transport.get(key, 0) + count
        for category, count in result.refused.items():  # see cloud/ingest/bindings.py
            for _ in range(count):
                self.stats.reject(result.last_refusal or category, category=category)
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

    def _write_failed(self, items: list[Item], exc: Exception) -> None:
        self._write_failures += 1
        self.stats.write_errors += 1
        self.stats.error(f"database: {type(exc).__name__}: {exc}")
        if self._write_failures == 1 or self._write_failures % 20 == 0:
            log.error(
                "database write failed (%d in a row), will retry: %s", self._write_failures, exc
            )
        if self._write_failures >= TELEMETRY_RETRY_LIMIT:
            dropped = sum(i.count for i in items if isinstance(i, TelemetryBatch))
            self.stats.telemetry_dropped += dropped
            items = [i for i in items if not isinstance(i, TelemetryBatch)]
        # Put them back in front of whatever arrived meanwhile, order kept.
        self._pending[:0] = items
        self._open = None

    async def replay_dead_letter(self, letter_id: int) -> ReplayOutcome | None:
        """Replays a parked message (cloud/ingest/isolation.py); None if there is none."""
        return await self._isolation.replay(letter_id, self._flush_lock)
