"""The parts of a cloud process, started for its role (cloud/runtime/roles.py).

`run_role` is the app's lifespan: it prepares the database, then starts what the
role runs and publishes each part on `app.state` for the routes
(cloud/deps.py). Every part is pushed on one exit stack right after it starts,
so shutdown runs in the reverse order: live streams end first, then the jobs
that publish through a broker session, then ingestion (which writes and
acknowledges what it holds), the telemetry sink and the database last.

Between the parts, changes travel as signals on the bus (cloud/runtime/bus.py):
in process for `all`, over PostgreSQL for the other roles.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.bookings.qrcheckin import CheckinKeys
from cloud.bookings.store import BookingStore
from cloud.db.engine import make_engine
from cloud.fleet.broker_accounts import make_broker_accounts
from cloud.fleet.snapshots import SnapshotPublisher, SnapshotSigner
from cloud.ingest.pipeline import Ingestor
from cloud.jobs.leader import LeaderElection
from cloud.jobs.scheduled import JobSet
from cloud.keys import require_keys
from cloud.live.hub import DeskChanges, LiveHub
from cloud.mqtt.commands import CommandSender
from cloud.mqtt.session import MqttSession
from cloud.runtime.bus import Bus, InProcessBus, Signal, publisher
from cloud.runtime.pgbus import PgBus
from cloud.runtime.roles import RUNS, check_role, ingest_subscriptions, process_name
from cloud.runtime.startup import prepare_database
from cloud.settings import CloudSettings
from cloud.telemetry.sinks import make_sink
from cloud.transport.live import LiveService
from cloud.transport.rides import RideWrites
from cloud.transport.seat_facts import capacity_rule
from cloud.visitors.passes import PassKeys

log = logging.getLogger(__name__)


@dataclass
class RoleStatus:
    """What `GET /role` reports about this process."""

    role: str
    worker: int
    name: str
    election: LeaderElection | None = None
    jobs: JobSet | None = None
    ingestor: Ingestor | None = None

    @property
    def received(self) -> int | None:
        """MQTT messages this process's ingestion received; None without ingestion."""
        return self.ingestor.stats.received if self.ingestor is not None else None

    @property
    def leader(self) -> bool | None:
        """Leading the jobs now; None for a role that runs no jobs."""
        if self.election is not None:
            return self.election.is_leader
        return True if self.jobs is not None else None


class SnapshotTriggers:
    """The snapshot publisher as the API sees it in a process that does not publish:
    `mark_dirty` becomes a signal to the jobs leader, `signer` serves the public key."""

    def __init__(self, bus: Bus, signer: SnapshotSigner) -> None:
        self._bus = bus
        self.signer = signer

    def mark_dirty(self, node: str | None = None, *, desk: str | None = None) -> None:
        if desk is not None:
            self._bus.publish(Signal.SNAPSHOT_DESKS, [desk])
        elif node is not None:
            self._bus.publish(Signal.SNAPSHOT_NODES, [node])
        else:
            self._bus.publish(Signal.SNAPSHOT_ALL)


def _ignore(_message: object) -> None:
    """A publish-only session subscribes to nothing; nothing arrives here."""


def _make_bus(settings: CloudSettings) -> Bus:
    if settings.role == "all":
        return InProcessBus()
    return PgBus(settings.database_url, name=process_name(settings))


def _desk_changes(bus: Bus) -> DeskChanges:
    # Bookings changed by the API, auto-release or a QR check-in reach both the
    # snapshots of the nodes serving the desks and the open floor maps.
    return DeskChanges(publisher(bus, Signal.SNAPSHOT_DESKS), publisher(bus, Signal.LIVE_DESKS))


def _listen_snapshots(bus: Bus, snapshots: SnapshotPublisher) -> None:
    bus.listen(Signal.SNAPSHOT_NODES, snapshots.nodes_changed)
    bus.listen(Signal.SNAPSHOT_DESKS, snapshots.desks_changed)
    bus.listen(Signal.SNAPSHOT_ALL, lambda _ids: snapshots.mark_dirty())
    if isinstance(bus, PgBus):
        # Signals sent while the bus was down are lost: every snapshot is due then.
        bus.on_reconnect(snapshots.mark_dirty)


def _listen_live(bus: Bus, live: LiveHub) -> None:
    bus.listen(Signal.LIVE_DESKS, live.announce)
    bus.listen(Signal.LIVE_ROOMS, live.announce_rooms)


async def _start_ingestor(
    stack: AsyncExitStack, app: FastAPI, settings: CloudSettings, engine: AsyncEngine, bus: Bus
) -> Ingestor:
    sink = make_sink(settings)
    stack.push_async_callback(sink.close)
    # Boardings and pool-car uses are applied by the transport domain (rides.py).
    ingestor = Ingestor(
        settings, engine, sink,
        rides=RideWrites(engine.dialect.name, capacity_rule(settings)),
        subscriptions=ingest_subscriptions(settings),
        client_id=process_name(settings),
    )  # fmt: skip
    app.state.ingestor = ingestor
    ingestor.on_bookings_changed = publisher(bus, Signal.SNAPSHOT_NODES)
    ingestor.on_desks_changed = publisher(bus, Signal.LIVE_DESKS)
    ingestor.on_rooms_changed = publisher(bus, Signal.LIVE_ROOMS)
    return ingestor


def _publish_session(stack: AsyncExitStack, settings: CloudSettings) -> MqttSession:
    """A session that only publishes (commands, snapshots): clean, named for the process."""
    session = MqttSession(
        settings, _ignore, (), client_id=process_name(settings), clean_session=True
    )
    session.start()
    stack.push_async_callback(session.stop)
    return session


@asynccontextmanager
async def run_role(app: FastAPI, settings: CloudSettings) -> AsyncIterator[None]:
    """The lifespan of a process of `settings.role` (see the module docstring)."""
    check_role(settings)
    # Before anything is touched: in production a missing key stops start-up, naming
    # its setting, instead of a replica inventing its own (cloud/keys.py).
    require_keys(settings)
    runs = RUNS[settings.role]
    await prepare_database(settings)
    async with AsyncExitStack() as stack:
        engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
        stack.push_async_callback(engine.dispose)
        app.state.settings, app.state.engine = settings, engine
        status = RoleStatus(settings.role, settings.worker_id, process_name(settings))
        app.state.role_status = status
        bus = _make_bus(settings)
        await bus.start()
        stack.push_async_callback(bus.stop)
        # The one booking store of the process: API writes, auto-release and QR check-in
        # all queue on it (on SQLite, one FIFO lock for the database).
        booking_store = BookingStore(engine)
        app.state.booking_store = booking_store
        desk_changes = _desk_changes(bus)
        app.state.desk_changes = desk_changes

        ingestor: Ingestor | None = None
        commands: CommandSender
        if runs.ingestion:
            ingestor = await _start_ingestor(stack, app, settings, engine, bus)
            status.ingestor = ingestor
            # Commands to nodes go out on ingestion's broker session.
            commands = ingestor.session
        else:
            commands = _publish_session(stack, settings)
        app.state.commands = commands

        signer = SnapshotSigner.from_settings(settings)
        if runs.jobs:
            snapshots = SnapshotPublisher(settings, engine, commands, signer)
            _listen_snapshots(bus, snapshots)
            app.state.snapshots = snapshots
            jobs = JobSet(settings, engine, booking_store, snapshots, desk_changes)
            status.jobs = jobs
        else:
            app.state.snapshots = SnapshotTriggers(bus, signer)

        if runs.http_api:
            await _start_api_parts(stack, app, settings, engine, bus)
        if ingestor is not None:
            # Vehicle positions (live and from outbox backlogs) feed live transport.
            transport_live = await _transport_live(stack, app, engine)
            ingestor.on_position = transport_live.offer
            ingestor.start()
            stack.push_async_callback(ingestor.stop)
        if runs.jobs:
            await _start_jobs(stack, app, settings, status, jobs)
        log.info("cloud process %s running as role %s", status.name, settings.role)
        yield


async def _transport_live(stack: AsyncExitStack, app: FastAPI, engine: AsyncEngine) -> LiveService:
    existing: LiveService | None = getattr(app.state, "transport_live", None)
    if existing is not None:
        return existing
    transport_live = LiveService(engine)
    app.state.transport_live = transport_live
    await transport_live.start()
    stack.push_async_callback(transport_live.stop)
    return transport_live


async def _start_api_parts(
    stack: AsyncExitStack, app: FastAPI, settings: CloudSettings, engine: AsyncEngine, bus: Bus
) -> None:
    # The broker's accounts in step with the database before serving (files: Mosquitto
    # needs them to start; dynsec: stale node accounts go, cloud/fleet/broker_dynsec.py).
    broker_accounts = make_broker_accounts(settings)
    app.state.broker_accounts = broker_accounts
    await broker_accounts.start(engine)
    stack.push_async_callback(broker_accounts.stop)
    app.state.checkin_keys = CheckinKeys.from_settings(settings)
    app.state.visitor_pass_keys = PassKeys.from_settings(settings)
    await _transport_live(stack, app, engine)
    # Live floor maps hear about every committed desk change (cloud/live/hub.py).
    live = LiveHub()
    app.state.live = live
    _listen_live(bus, live)
    stack.callback(live.close)  # ends the open floor streams first


async def _start_jobs(
    stack: AsyncExitStack,
    app: FastAPI,
    settings: CloudSettings,
    status: RoleStatus,
    jobs: JobSet,
) -> None:
    if not RUNS[settings.role].elected:
        await jobs.start()
        stack.push_async_callback(jobs.stop)
        app.state.webhooks, app.state.notifications = jobs.webhooks, jobs.notifications
        return
    election = LeaderElection(
        settings.database_url, name=status.name, on_elected=jobs.start, on_deposed=jobs.stop
    )
    status.election = election
    election.start()
    stack.push_async_callback(election.stop)
