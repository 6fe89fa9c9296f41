"""The FastAPI application: its lifespan owns the database, the telemetry sink and ingestion."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from cloud.api import router
from cloud.autorelease import AutoReleaser
from cloud.db import make_engine, migrate
from cloud.ingest import Ingestor
from cloud.layout import apply_layout, load_layout
from cloud.mosquitto_auth import BrokerFiles
from cloud.problems import install_problem_handlers
from cloud.settings import CloudSettings
from cloud.snapshots import SnapshotPublisher, SnapshotSigner
from cloud.telemetry import make_sink
from cloud.webhooks import WebhookDispatcher
from dashboards import STATIC_DIR

log = logging.getLogger(__name__)


def create_app(settings: CloudSettings | None = None) -> FastAPI:
    settings = settings or CloudSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate(settings.database_url)
        engine = make_engine(settings.database_url)
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
        ingestor = Ingestor(settings, engine, sink)
        app.state.settings, app.state.engine, app.state.ingestor = settings, engine, ingestor
        snapshots = SnapshotPublisher(settings, engine, ingestor,
                                      SnapshotSigner.from_path(settings.snapshot_key_path))
        app.state.snapshots = snapshots
        ingestor.on_bookings_changed = snapshots.nodes_changed
        releaser = AutoReleaser(engine, settings.autorelease_interval_s,
                                snapshots.desks_changed)
        ingestor.start()
        webhooks = WebhookDispatcher(settings, engine)
        app.state.webhooks = webhooks
        webhooks.start()
        snapshots.start()
        releaser.start()
        try:
            yield
        finally:
            # Order matters: stop the jobs that publish through ingestion, stop
            # receiving, write what is pending, then close the sink (which flushes
            # the time series) and the database.
            await releaser.stop()
            await snapshots.stop()
            await webhooks.stop()
            await ingestor.stop()
            await sink.close()
            await engine.dispose()

    app = FastAPI(
        title="Ruang cloud",
        version="1",
        summary="Desks, nodes and ingestion state of a Ruang smart-office deployment",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.include_router(router)
    # The dashboards are static pages on the same origin, calling the API above;
    # mounted last so /api, /docs and the probes take precedence.
    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="dashboards")
    return app
