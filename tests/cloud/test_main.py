"""`serve` runs uvicorn in the caller's loop, signals readiness and stops on cancellation."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from cloud.settings import CloudSettings
from launch import devservers
from launch.webapp import serve


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_serve_answers_http_and_stops_cleanly_when_cancelled(settings: CloudSettings) -> None:
    settings = settings.model_copy(update={"http_port": devservers.free_port()})
    ready = asyncio.Event()
    task = asyncio.create_task(serve(settings, ready=ready))
    try:
        async with asyncio.timeout(30):
            await ready.wait()
        base = f"http://127.0.0.1:{settings.http_port}"
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            async with asyncio.timeout(30):
                await task
    assert task.done()
