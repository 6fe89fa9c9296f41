"""Shared set-up of the transport browser tests: the sample IKN schedule, vehicles, and rows
written straight into the cloud's database for history (as the desk analytics tests do)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import create_async_engine

from cloud.db import tables
from cloud.transport.gtfs_export import sample_zip
from cloud.transport.gtfs_import import import_gtfs
from tests.dashboards.conftest import Ruang

SHUTTLES = (("shuttle-01", 24), ("shuttle-02", 24), ("shuttle-03", 30))
POOL_CARS = (("car-01", "KT 1001 IK"), ("car-02", "KT 1002 IK"))


async def load_sample_transport(ruang: Ruang, *, site: str = "ikn-kipp") -> None:
    """The sample GTFS schedule, three shuttles and two pool cars (each on its own node)."""
    engine = create_async_engine(ruang.settings.database_url)
    try:
        await import_gtfs(engine, sample_zip())
        now = datetime.now(UTC)
        vehicles: list[dict[str, Any]] = [
            {
                "id": vid,
                "kind": "shuttle",
                "label": vid.replace("-", " ").title(),
                "capacity": capacity,
                "seats": capacity - 6,
                "wheelchair_accessible": True,
                "plate": None,
                "site_id": None,
                "node_id": vid,
                "state": "in_service",
                "state_changed_at": now,
                "created_at": now,
            }
            for vid, capacity in SHUTTLES
        ]
        vehicles += [
            {
                "id": vid,
                "kind": "poolcar",
                "label": f"Mobil dinas {plate}",
                "capacity": 5,
                "seats": 5,
                "wheelchair_accessible": False,
                "plate": plate,
                "site_id": site,
                "node_id": vid,
                "state": "at_depot",
                "state_changed_at": now,
                "created_at": now,
            }
            for vid, plate in POOL_CARS
        ]
        await insert_rows(ruang, "transport_vehicles", vehicles, engine=engine)
    finally:
        await engine.dispose()


async def insert_rows(
    ruang: Ruang, table: str, rows: Sequence[dict[str, Any]], *, engine: Any = None
) -> None:
    """Rows into one of the cloud's tables, in one transaction."""
    own = engine is None
    engine = engine or create_async_engine(ruang.settings.database_url)
    try:
        target: Table = tables.models.Base.metadata.tables[table]
        async with engine.begin() as conn:
            await conn.execute(insert(target), list(rows))
    finally:
        if own:
            await engine.dispose()
