"""The retention purge (cloud/privacy/retention.py) deletes exactly the records past their
class's age, in batches, on both databases, and keeps the exactly-once store longer than
the ingestion window."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.buildings.layout import SAMPLE_LAYOUT, apply_layout, load_layout
from cloud.db.engine import make_engine, migrate
from cloud.db.tables import (
    ACCESS_LOG,
    BUILDINGS,
    CAR_BOOKINGS,
    CAR_POSITIONS,
    DESKS,
    EVENTS,
    FLOORS,
    PEOPLE,
    SITES,
    TRANSPORT_BOARDINGS,
    TRANSPORT_CAR_USES,
    TRANSPORT_VEHICLES,
)
from cloud.privacy.retention import CLASSES, cutoff, prune_local_telemetry, purge_due
from cloud.settings import CloudSettings
from cloud.telemetry.sinks import LocalSqliteSink

NOW = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.UTC)
# Rows are seeded this far apart either side of each class's cutoff.
SIDE = dt.timedelta(seconds=1)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await migrate(database_url)
    engine = make_engine(database_url, pool_size=2)
    await apply_layout(engine, load_layout(SAMPLE_LAYOUT))
    try:
        yield engine
    finally:
        await engine.dispose()


def _settings(**retention: Any) -> CloudSettings:
    defaults: dict[str, Any] = {
        "retention_events_days": 90, "retention_access_log_days": 365,
        "retention_boardings_days": 90, "retention_car_uses_days": 365,
        "retention_car_positions_days": 90, "ingest_max_age_s": 30 * 86400,
    }  # fmt: skip
    return CloudSettings(**(defaults | retention))


def _row(table: Table, n: int, ts: dt.datetime, car_booking: int) -> dict[str, Any]:
    common = {"message_id": f"m-{table.name}-{n}", "node": "n-1", "ts": ts}
    if table is EVENTS:
        return common | {"kind": "checkin", "received_at": ts, "badge": "04AA",
                         "payload": {"badge": "04AA"}}  # fmt: skip
    if table is ACCESS_LOG:
        return common | {"door": "d-1", "badge": "04AA", "person_id": None, "granted": True,
                         "reason": "granted", "ts_raw": ts.timestamp(), "received_at": ts,
                         "audit_seq": n, "audit_hash": "0" * 64}  # fmt: skip
    if table is TRANSPORT_BOARDINGS:
        return common | {"vehicle_id": "BUS-1", "reader": "door", "hour": ts.hour,
                         "allowed": True, "reason": "reserved"}  # fmt: skip
    if table is TRANSPORT_CAR_USES:
        return common | {"vehicle_id": "CAR-1", "reader": "car", "action": "pickup",
                         "reason": "booked"}  # fmt: skip
    assert table is CAR_POSITIONS
    return {"booking_id": car_booking, "vehicle_id": "CAR-1", "ts": ts, "lat": -0.97,
            "lon": 116.7}  # fmt: skip


async def _car_booking(engine: AsyncEngine) -> int:
    async with engine.begin() as conn:
        site = await conn.scalar(select(SITES.c.id).limit(1))
        await conn.execute(
            PEOPLE.insert().values(id="p-car", kind="asn", name="Ayu", role="asn", created_at=NOW)
        )
        await conn.execute(
            TRANSPORT_VEHICLES.insert().values(
                id="CAR-1", kind="poolcar", label="Avanza", capacity=6, seats=6,
                plate="KT 1 RI", site_id=site, node_id="car-node", state="in_service",
                state_changed_at=NOW, created_at=NOW, wheelchair_accessible=False,
            )
        )  # fmt: skip
        booking: int = await conn.scalar(
            CAR_BOOKINGS.insert()
            .values(vehicle_id="CAR-1", person_id="p-car", purpose="rapat", destination="KIPP",
                    starts_at=NOW - dt.timedelta(hours=2), ends_at=NOW, status="returned",
                    created_at=NOW)
            .returning(CAR_BOOKINGS.c.id)
        )  # fmt: skip
    return booking


async def _seed(engine: AsyncEngine, settings: CloudSettings, per_side: int) -> None:
    car_booking = await _car_booking(engine)
    async with engine.begin() as conn:
        for data in CLASSES:
            edge = cutoff(data, settings, NOW)
            # Seconds either side of the cutoff, each row its own second.
            rows = [
                _row(data.table, i, edge - SIDE * (i + 1), car_booking) for i in range(per_side)
            ] + [
                _row(data.table, per_side + i, edge + SIDE * (i + 1), car_booking)
                for i in range(per_side)
            ]
            await conn.execute(data.table.insert(), rows)


async def _left(
    engine: AsyncEngine, table: Table, column: str, edge: dt.datetime
) -> tuple[int, int]:
    async with engine.connect() as conn:
        older = await conn.scalar(
            select(func.count()).select_from(table).where(table.c[column] < edge)
        )
        newer = await conn.scalar(
            select(func.count()).select_from(table).where(table.c[column] >= edge)
        )
    return int(older or 0), int(newer or 0)


async def test_the_purge_deletes_exactly_what_is_past_each_classs_age_in_batches(
    engine: AsyncEngine,
) -> None:
    # Batches of 3 over 7 due rows a class: the loop has to go round more than once.
    settings = _settings(retention_batch_rows=3)
    await _seed(engine, settings, per_side=7)

    gone = await purge_due(engine, settings, NOW)

    assert gone == {data.name: 7 for data in CLASSES}
    for data in CLASSES:
        edge = cutoff(data, settings, NOW)
        assert await _left(engine, data.table, data.ts_column, edge) == (0, 7), data.name
    # A second pass finds nothing more.
    assert await purge_due(engine, settings, NOW) == {data.name: 0 for data in CLASSES}


async def test_events_are_kept_past_the_ingestion_window_whatever_their_setting(
    engine: AsyncEngine,
) -> None:
    # A 1-day setting would forget message ids the ingestion still accepts (30 days):
    # a replayed event would then be applied twice. The cutoff stays past the window.
    settings = _settings(retention_events_days=1)
    (events,) = [data for data in CLASSES if data.table is EVENTS]
    assert cutoff(events, settings, NOW) == NOW - dt.timedelta(days=31)
    await _seed(engine, settings, per_side=2)
    assert (await purge_due(engine, settings, NOW))["events"] == 2
    assert await _left(engine, EVENTS, "ts", NOW - dt.timedelta(days=31)) == (0, 2)


async def test_a_site_with_its_own_periods_keeps_its_records_by_them_and_others_by_the_default(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        site, node = (
            await conn.execute(select(SITES.c.id, DESKS.c.node_id).select_from(
                SITES.join(BUILDINGS, BUILDINGS.c.site_id == SITES.c.id)
                .join(FLOORS, FLOORS.c.building_id == BUILDINGS.c.id)
                .join(DESKS, DESKS.c.floor_id == FLOORS.c.id)
            ).where(DESKS.c.node_id.is_not(None)).limit(1))
        ).one()  # fmt: skip
    # The site keeps raw events longer (120 d) and its door log shorter (30 d) than the
    # deployment (90 d / 365 d); an unplaced node's records follow the deployment.
    settings = _settings(
        retention_site_days={site: {"events": 120, "access_log": 30}}, retention_batch_rows=2
    )
    assert cutoff(CLASSES[0], settings, NOW, site) == NOW - dt.timedelta(days=120)
    edges = {
        (EVENTS, node): NOW - dt.timedelta(days=120),
        (EVENTS, "n-1"): NOW - dt.timedelta(days=90),
        (ACCESS_LOG, node): NOW - dt.timedelta(days=30),
        (ACCESS_LOG, "n-1"): NOW - dt.timedelta(days=365),
    }
    async with engine.begin() as conn:
        for n, ((table, at), edge) in enumerate(edges.items()):
            rows = [
                _row(table, n * 10 + i, edge + side, 0) | {"node": at}
                for i, side in enumerate((-SIDE, -SIDE * 2, -SIDE * 3, SIDE, SIDE * 2))
            ]
            await conn.execute(table.insert(), rows)

    gone = await purge_due(engine, settings, NOW)

    assert (gone["events"], gone["access_log"]) == (6, 6)  # three due per node and table
    async with engine.connect() as conn:
        for (table, at), edge in edges.items():
            left = await conn.scalars(select(table.c.ts).where(table.c.node == at))
            # Exactly the two rows younger than that node's own cutoff survive.
            assert sorted(left) == [edge + SIDE, edge + SIDE * 2], (table.name, at)


def test_a_site_period_for_an_unknown_class_is_refused_when_settings_load() -> None:
    with pytest.raises(ValueError, match="unknown retention class visits"):
        CloudSettings(retention_site_days={"s": {"visits": 10}})


async def test_the_local_time_series_loses_per_badge_and_vehicle_lines_past_their_period(
    tmp_path: Path,
) -> None:
    path = tmp_path / "telemetry.sqlite3"
    sink = LocalSqliteSink(path)  # creates the file and its table as the cloud does
    await sink.close()
    settings = _settings(telemetry_sqlite_path=path)
    events, positions = NOW - dt.timedelta(days=90), NOW - dt.timedelta(days=90)
    lines = {
        'badge_presence,node=n,zone=z badge="k1.ab",present=1i 1': events,
        "device_health,node=n,device=k1.ab,kind=ble_badge online=1i 1": events,
        "position,node=n,vehicle=CAR-1 lat=1.0,lon=2.0 1": positions,
        # No person in these: kept whatever their age.
        "device_health,node=n,device=radar-1,kind=radar online=1i 1": events,
        "presence,node=n,desk=D1,source=radar present=1i 1": events,
    }
    with sqlite3.connect(path) as db:
        for line, edge in lines.items():
            for side in (-SIDE, SIDE):
                db.execute(
                    "INSERT INTO points (received_at, line) VALUES (?, ?)",
                    ((edge + side).timestamp(), line),
                )
    assert await prune_local_telemetry(settings, NOW) == 3
    with sqlite3.connect(path) as db:
        left = sorted(db.execute("SELECT line, received_at FROM points"))
    expected = sorted(
        [(line, (edge + SIDE).timestamp()) for line, edge in lines.items()]
        + [(line, (edge - SIDE).timestamp()) for line, edge in list(lines.items())[3:]]
    )
    assert left == expected
    # With an external store configured the file is not Ruang's to prune.
    assert await prune_local_telemetry(settings.model_copy(update={"influx_url": "x"}), NOW) == 0
