"""The product's web app (cloud API + dashboards) and its runner under uvicorn.

`serve` runs it inside the caller's event loop; the CLI, the demo, tests and
benchmarks all start the cloud through here.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn
from fastapi import FastAPI

from cloud.app import create_app as create_api_app
from cloud.live.hub import LiveHub
from cloud.settings import CloudSettings
from dashboards.mount import mount as mount_dashboards


def create_app(settings: CloudSettings | None = None) -> FastAPI:
    """The cloud API with the dashboards mounted on the same origin."""
    return create_api_app(settings, extensions=(mount_dashboards,))


class _Server(uvicorn.Server):
    """uvicorn waits for open responses before the lifespan shutdown; live streams never
    end on their own, so the live hub is closed first (ending them), then uvicorn goes on."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        live: LiveHub | None = getattr(self._app.state, "live", None)
        if live is not None:
            live.close()
        # The same for the live transport map's streams (cloud/transport/live.py).
        transport = getattr(self._app.state, "transport_live", None)
        if transport is not None:
            transport.hub.close()
        await super().shutdown(sockets)


async def serve(settings: CloudSettings, *, ready: asyncio.Event | None = None) -> None:
    """Serves until cancelled; sets `ready` once the app has started and listens.

    Cancelling this coroutine shuts uvicorn down gracefully (lifespan shutdown
    included). Uvicorn's SIGINT/SIGTERM capture stays on: it restores the
    caller's handlers afterwards and re-raises the signal to them.
    """
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        # At "warning" the access log is discarded anyway, but uvicorn would still build
        # each line's arguments (client address, quoted path) for every response.
        access_log=False,
        lifespan="on",
    )
    server = _Server(config, app)
    task = asyncio.create_task(server.serve())
    try:
        if ready is not None:
            while not server.started:
                if task.done():
                    await task  # re-raises a startup failure
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.02)
            ready.set()
        await asyncio.shield(task)
    finally:
        # Cancelled (or failed): ask uvicorn to shut down gracefully, which runs
        # the lifespan shutdown (ingestion stop, final flush) before returning.
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
