"""FastAPI dependencies of the running app: database, booking store, ingestor, commands, live hub,
QR keys, live transport.

The getters are `async def` although they only read app state: FastAPI runs a plain
`def` dependency in its thread pool, a thread hand-off per dependency per request
(docs/performance.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.bookings.qrcheckin import CheckinKeys
from cloud.bookings.store import BookingStore
from cloud.errors import Unavailable
from cloud.ingest.pipeline import Ingestor
from cloud.live.hub import DeskChanges, LiveHub
from cloud.mqtt.commands import CommandSender
from cloud.privacy.pseudonyms import Pseudonyms
from cloud.settings import CloudSettings
from cloud.transport.live import LiveService


async def get_settings(request: Request) -> CloudSettings:
    settings: CloudSettings = request.app.state.settings
    return settings


async def get_pseudonyms(request: Request) -> Pseudonyms:
    """The app's badge pseudonyms, made on first use and kept: the secret is read once,
    and each pseudonym is computed once per process (its memo)."""
    found: Pseudonyms | None = getattr(request.app.state, "pseudonyms", None)
    if found is None:
        found = request.app.state.pseudonyms = Pseudonyms.from_settings(request.app.state.settings)
    return found


async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_db(
    engine: Annotated[AsyncEngine, Depends(get_engine)],
) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        yield conn


async def get_booking_store(request: Request) -> BookingStore:
    store: BookingStore = request.app.state.booking_store
    return store


async def get_ingestor(request: Request) -> Ingestor:
    ingestor: Ingestor | None = getattr(request.app.state, "ingestor", None)
    if ingestor is None:  # an `api` process: ingestion runs in the `ingest` processes
        raise Unavailable(
            "ingestion does not run in this process (role api); ask an ingest process",
            title="Not in this role",
        )
    return ingestor


async def get_commands(request: Request) -> CommandSender:
    commands: CommandSender = request.app.state.commands
    return commands


async def get_desk_changes(request: Request) -> DeskChanges:
    changes: DeskChanges = request.app.state.desk_changes
    return changes


async def get_live(request: Request) -> LiveHub:
    live: LiveHub = request.app.state.live
    return live


async def get_checkin_keys(request: Request) -> CheckinKeys:
    keys: CheckinKeys = request.app.state.checkin_keys
    return keys


SettingsDep = Annotated[CloudSettings, Depends(get_settings)]
PseudonymsDep = Annotated[Pseudonyms, Depends(get_pseudonyms)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
DbDep = Annotated[AsyncConnection, Depends(get_db)]
BookingStoreDep = Annotated[BookingStore, Depends(get_booking_store)]
IngestorDep = Annotated[Ingestor, Depends(get_ingestor)]
CommandsDep = Annotated[CommandSender, Depends(get_commands)]
LiveDep = Annotated[LiveHub, Depends(get_live)]
DeskChangesDep = Annotated[DeskChanges, Depends(get_desk_changes)]
CheckinKeysDep = Annotated[CheckinKeys, Depends(get_checkin_keys)]


def get_transport_live(request: Request) -> LiveService:
    service: LiveService = request.app.state.transport_live
    return service


TransportLiveDep = Annotated[LiveService, Depends(get_transport_live)]
