"""The FastAPI application: its lifespan owns the database, the telemetry sink and ingestion."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from cloud.admin.audit import AuditRetention
from cloud.api import router
from cloud.bookings.autorelease import AutoReleaser
from cloud.bookings.qrcheckin import CheckinKeys
from cloud.bookings.reminders import CheckinReminder
from cloud.bookings.store import BookingStore
from cloud.buildings.layout import apply_layout, load_layout
from cloud.db.engine import make_engine, migrate
from cloud.fleet.broker_credentials import BrokerFiles
from cloud.fleet.snapshots import SnapshotPublisher, SnapshotSigner
from cloud.ingest.pipeline import Ingestor
from cloud.integrations.webhooks import WebhookDispatcher
from cloud.keys import require_keys
from cloud.live.hub import DeskChanges, LiveHub
from cloud.monitoring.http_latency import HttpLatency
from cloud.monitoring.metrics import CloudMetrics
from cloud.notifications.dispatcher import NotificationDispatcher
from cloud.openapi import install_openapi
from cloud.problems import install_problem_handlers
from cloud.rooms.noshow import RoomNoShowJob
from cloud.security_headers import SecurityHeaders
from cloud.settings import CloudSettings
from cloud.telemetry.sinks import make_sink
from cloud.transport.live import LiveService
from cloud.transport.noshow import SeatJob
from cloud.transport.rides import RideWrites
from cloud.transport.seat_facts import capacity_rule
from cloud.transport.seat_notices import SeatReminder
from cloud.visitors.passes import PassKeys
from cloud.visitors.retention import VisitPurger

log = logging.getLogger(__name__)


def create_app(
    settings: CloudSettings | None = None,
    *,
    extensions: Sequence[Callable[[FastAPI], None]] = (),
) -> FastAPI:
    """The cloud's API app; `extensions` add to it (the composition layer mounts the
    dashboards this way, so the cloud never imports them)."""
    settings = settings or CloudSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Before anything is touched: in production a missing key stops start-up, naming
        # its setting, instead of a replica inventing its own (cloud/keys.py).
        require_keys(settings)
        await migrate(settings.database_url)
        engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
        # Mosquitto refuses to start without its password file, and the cloud's own
        # account lives in it: write the files from the database before ingesting.
        if settings.layout_file is not None:
            await apply_layout(engine, load_layout(settings.layout_file))
            log.info("building layout applied from %s", settings.layout_file)
        broker_files = BrokerFiles(settings)
        app.state.broker_files = broker_files
        if broker_files.enabled:
            async with engine.begin() as conn:
                await broker_files.sync(conn)
        sink = make_sink(settings)
        # Boardings and pool-car uses are applied by the transport domain (rides.py).
        ingestor = Ingestor(
            settings, engine, sink, rides=RideWrites(engine.dialect.name, capacity_rule(settings))
        )
        app.state.settings, app.state.engine, app.state.ingestor = settings, engine, ingestor
        # The one booking store of the app: API writes, auto-release and QR check-in
        # all queue on it (on SQLite, one FIFO lock for the database).
        booking_store = BookingStore(engine)
        app.state.booking_store = booking_store
        # Commands to nodes go out on ingestion's broker session (cloud/mqtt/commands.py).
        app.state.commands = ingestor.session
        snapshots = SnapshotPublisher(
            settings, engine, ingestor.session, SnapshotSigner.from_settings(settings)
        )
        app.state.snapshots = snapshots
        ingestor.on_bookings_changed = snapshots.nodes_changed
        # Live floor maps hear about every committed desk change (cloud/live/hub.py).
        live = LiveHub()
        app.state.live = live
        app.state.checkin_keys = CheckinKeys.from_settings(settings)
        app.state.visitor_pass_keys = PassKeys.from_settings(settings)
        ingestor.on_desks_changed = live.announce
        ingestor.on_rooms_changed = live.announce_rooms
        # Vehicle positions (live and from outbox backlogs) feed live transport.
        transport_live = LiveService(engine)
        app.state.transport_live = transport_live
        ingestor.on_position = transport_live.offer
        await transport_live.start()

        # Bookings changed by the API, auto-release or a QR check-in reach both.
        desk_changes = DeskChanges(snapshots.desks_changed, live.announce)
        app.state.desk_changes = desk_changes
        releaser = AutoReleaser(booking_store, settings.autorelease_interval_s, desk_changes)
        reminder = CheckinReminder(
            booking_store,
            settings.autorelease_interval_s,
            timedelta(minutes=settings.booking_reminder_lead_min),
        )
        room_noshows = RoomNoShowJob(booking_store, settings.autorelease_interval_s)
        # Shuttle seats not boarded by departure go back to the trip and its waitlist.
        seat_job = SeatJob(
            booking_store,
            settings.seat_job_interval_s,
            timedelta(minutes=settings.seat_noshow_grace_min),
        )
        seat_reminder = SeatReminder(
            booking_store,
            settings.seat_job_interval_s,
            timedelta(minutes=settings.seat_reminder_lead_min),
        )
        ingestor.start()
        webhooks = WebhookDispatcher(settings, engine)
        app.state.webhooks = webhooks
        webhooks.start()
        notifications = NotificationDispatcher(settings, engine)
        app.state.notifications = notifications
        notifications.start()
        snapshots.start()
        releaser.start()
        reminder.start()
        purger = VisitPurger(
            engine, settings.visitor_retention_days, settings.visitor_purge_interval_s
        )
        purger.start()
        room_noshows.start()
        seat_job.start()
        audit_retention = AuditRetention(
            engine, settings.audit_retention_days, settings.audit_purge_interval_s
        )
        audit_retention.start()
        seat_reminder.start()
        # This process runs the scheduled jobs above (ruang_job_leader on /metrics).
        metrics.job_leader = True
        try:
            yield
        finally:
            # Order matters: stop the jobs that publish through ingestion, stop
            # receiving, write what is pending, then close the sink (which flushes
            # the time series) and the database.
            metrics.job_leader = False
            live.close()  # ends the open floor streams first
            await transport_live.stop()
            await releaser.stop()
            await reminder.stop()
            await purger.stop()
            await room_noshows.stop()
            await seat_job.stop()
            await audit_retention.stop()
            await seat_reminder.stop()
            await snapshots.stop()
            await webhooks.stop()
            await notifications.stop()
            await ingestor.stop()
            await sink.close()
            await engine.dispose()

    app = FastAPI(
        title="Ruang cloud",
        version="1",
        summary="Desks, nodes and ingestion state of a Ruang smart-office deployment",
        lifespan=lifespan,
    )
    # Prometheus metrics of this app, in a registry of its own (cloud/monitoring/metrics.py).
    metrics = CloudMetrics(app.state)
    app.state.metrics = metrics
    app.add_middleware(HttpLatency, histogram=metrics.http)
    install_problem_handlers(app)
    app.include_router(router)
    install_openapi(app)
    for extend in extensions:
        extend(app)
    app.add_middleware(SecurityHeaders)
    return app
