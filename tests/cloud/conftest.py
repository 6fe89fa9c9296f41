"""Cloud test fixtures: settings pointing at the real servers, a running app, a publisher."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import httpx
import pytest
from fastapi import FastAPI

from cloud.ingest.pipeline import Ingestor
from cloud.settings import CloudSettings
from launch import devservers
from launch.webapp import create_app
from ruang import contract
from tests.helpers import auth_headers, keep_history


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 15.0) -> None:
    """Polls `check` until it holds; fails the test if it never does.

    The deadline only bounds a hung test; nothing asserts how fast it happened.
    """
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition {check.__name__} never held")
        await asyncio.sleep(0.02)


def unique(prefix: str) -> str:
    # Retained state from other tests lives on the shared broker: never reuse ids.
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settings(
    database_url: str, mosquitto_server: devservers.Mosquitto, tmp_path: Path
) -> CloudSettings:
    return CloudSettings(
        database_url=database_url,
        mqtt_url=mosquitto_server.url,
        mqtt_client_id=unique("ruang-cloud-test"),
        telemetry_sqlite_path=tmp_path / "telemetry.sqlite3",
        flush_interval_s=0.05,
        **keep_history(),
    )


@dataclass
class RunningCloud:
    app: FastAPI
    http: httpx.AsyncClient

    @property
    def ingestor(self) -> Ingestor:
        ingestor: Ingestor = self.app.state.ingestor
        return ingestor


@asynccontextmanager
async def start_cloud(settings: CloudSettings) -> AsyncIterator[RunningCloud]:
    """The app with its lifespan running (migrations, sink, ingestion connected)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://cloud", headers=auth_headers(settings)
        ) as http:
            cloud = RunningCloud(app, http)

            async def connected() -> bool:
                return cloud.ingestor.connected

            await eventually(connected)
            yield cloud


@pytest.fixture
async def cloud(settings: CloudSettings) -> AsyncIterator[RunningCloud]:
    async with start_cloud(settings) as running:
        yield running


@pytest.fixture
async def publisher(mosquitto_server: devservers.Mosquitto) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(
        "127.0.0.1", mosquitto_server.port, identifier=unique("test-publisher")
    ) as client:
        yield client


async def publish(client: aiomqtt.Client, message: contract.Message) -> None:
    await client.publish(
        contract.topic_for(message),
        contract.encode(message),
        qos=contract.qos_for(message),
        retain=isinstance(message, contract.NodeState),
    )


@asynccontextmanager
async def serving(settings: CloudSettings) -> AsyncIterator[tuple[str, asyncio.Task[None]]]:
    """The cloud under uvicorn on a free loopback port: (base URL, the serve task).

    Leaving the block cancels the task, which shuts uvicorn down gracefully.
    """
    from launch.webapp import serve

    if settings.http_port in (0, 8000):
        settings = settings.model_copy(update={"http_port": devservers.free_port()})
    ready = asyncio.Event()
    task = asyncio.create_task(serve(settings, ready=ready))
    try:
        async with asyncio.timeout(30):
            await ready.wait()
        yield f"http://127.0.0.1:{settings.http_port}", task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
