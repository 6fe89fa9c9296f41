"""Runs the cloud API and ingestion under uvicorn inside the caller's event loop."""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn

from cloud.app import create_app
from cloud.settings import CloudSettings


async def serve(settings: CloudSettings, *, ready: asyncio.Event | None = None) -> None:
    """Serves until cancelled; sets `ready` once the app has started and listens.

    Cancelling this coroutine shuts uvicorn down gracefully (lifespan shutdown
    included). Uvicorn's SIGINT/SIGTERM capture stays on: it restores the
    caller's handlers afterwards and re-raises the signal to them.
    """
    config = uvicorn.Config(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
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
