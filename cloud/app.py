"""The FastAPI application; its lifespan runs the parts of the process's role.

What each role runs, and in which order the parts start and stop, is in
cloud/runtime/ (roles.py, components.py). A process that serves the API gets
every route and the extensions (the dashboards); an `ingest` or `jobs` process
answers only its health (`/healthz`, `/readyz`) and `/role`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cloud.api import health, role, router
from cloud.api import metrics as metrics_api
from cloud.monitoring.http_latency import HttpLatency
from cloud.monitoring.metrics import CloudMetrics
from cloud.openapi import install_openapi
from cloud.problems import install_problem_handlers
from cloud.runtime.components import run_role
from cloud.runtime.roles import RUNS
from cloud.security_headers import SecurityHeaders
from cloud.settings import CloudSettings


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
        async with run_role(app, settings):
            yield

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
    app.include_router(role.router)
    if RUNS[settings.role].http_api:
        app.include_router(router)
        install_openapi(app)
        for extend in extensions:
            extend(app)
    else:
        app.include_router(health.router)
        app.include_router(metrics_api.router)  # every role is scraped
    app.add_middleware(SecurityHeaders)
    return app
