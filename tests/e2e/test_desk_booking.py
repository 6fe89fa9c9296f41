"""Shared desks end to end: book -> signed snapshot -> tap -> checked in -> away/no-show.

Real Mosquitto (a private one per test, with persistence, so it can be stopped
and restarted), the real cloud under uvicorn on SQLite and PostgreSQL, an
in-process EdgeAgent verifying snapshots with the cloud's public key, and desk
unit simulators on ptys.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cloud.bookings.autorelease import release_no_shows
from cloud.buildings.layout import apply_layout, parse_layout
from cloud.db.engine import make_engine
from cloud.db.models import IntegrationEvent
from edge.agent import EdgeAgent
from edge.devices.deskunit import DeskUnitConfig
from edge.settings import EdgeSettings
from firmware_bridge.deskunit import LedPattern
from launch import devservers
from simulators.deskunit import DeskUnitSimulator
from simulators.floor import SimulatedFloor
from tests.cloud.conftest import start_cloud
from tests.e2e.test_walking_skeleton import cloud_settings, running_cloud
from tests.helpers import eventually

pytestmark = pytest.mark.servers

NODE = "e2e-desks"
FLOOR = "L9"
DESK_A, DESK_B, DROP_IN = f"{FLOOR}-D01", f"{FLOOR}-D02", f"{FLOOR}-D03"
AYU, BUDI = "04A1B2C3D4E5F6", "04B0B1B2B3B4B5"
ROSTER = "id,kind,name,role\np-ayu,asn,Ayu Lestari,asn\np-budi,asn,Budi Santoso,asn\n"
LAYOUT: dict[str, Any] = {
    "site": {
        "id": "s-e2e",
        "name": "E2E",
        "timezone": "Asia/Makassar",
        "checkin_grace_min": 15,
        "away_release_min": 30,
    },
    "buildings": [
        {
            "id": "b-e2e",
            "name": "B",
            "floors": [
                {
                    "id": "f-e2e",
                    "level": 9,
                    "name": "L9",
                    "node": NODE,
                    "zones": [
                        {
                            "id": "z-e2e",
                            "name": "Z",
                            "desks": [
                                {"id": DESK_A},
                                {"id": DESK_B},
                                # A drop-in desk puts every ASN's badge on the node's allow-list.
                                {"id": DROP_IN, "mode": "drop_in"},
                            ],
                        }
                    ],
                }
            ],
        }
    ],
}


def _is_booked(led: Any) -> bool:
    return bool(led.pattern == LedPattern.SOLID and led.b > 0 and led.g == 0)


def _is_green(led: Any) -> bool:
    return bool(led.pattern == LedPattern.SOLID and led.g > 0)


@dataclass
class Office:
    http: httpx.AsyncClient
    broker: devservers.Mosquitto
    agent: EdgeAgent
    sims: dict[str, DeskUnitSimulator]

    async def book(self, desk: str, person: str, *, hours: float = 2) -> dict[str, Any]:
        start = datetime.now(UTC) - timedelta(minutes=1)
        r = await self.http.post(
            "/api/v1/bookings",
            json={
                "desk_id": desk,
                "person_id": person,
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=hours)).isoformat(),
            },
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    async def bookings(self, desk: str) -> list[dict[str, Any]]:
        r = await self.http.get("/api/v1/bookings", params={"desk": desk})
        r.raise_for_status()
        rows: list[dict[str, Any]] = r.json()
        return rows

    async def booking_where(self, desk: str, **want: object) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            for row in await self.bookings(desk):
                if all(row.get(k) == v for k, v in want.items()):
                    return row
            return None

        found: dict[str, Any] = await eventually(probe, what=f"booking on {desk} with {want}")
        return found


@contextlib.asynccontextmanager
async def office(tmp_path: Path, database_url: str) -> AsyncIterator[Office]:
    broker = devservers.Mosquitto(
        port=devservers.free_port(), workdir=tmp_path / "broker", persistence=True
    )
    broker.workdir.mkdir()
    broker.start()
    settings = cloud_settings(
        tmp_path,
        database_url,
        broker.url,
        snapshot_key_path=tmp_path / "snapshot-key.pem",
        flush_interval_s=0.05,
        snapshot_debounce_s=0.05,
    )
    edge_task: asyncio.Task[None] | None = None
    try:
        async with SimulatedFloor(count=2, floor=FLOOR) as floor, running_cloud(settings) as http:
            engine = make_engine(database_url)
            try:
                await apply_layout(engine, parse_layout(LAYOUT))
            finally:
                await engine.dispose()
            r = await http.post(
                "/api/v1/people/import", content=ROSTER, headers={"content-type": "text/csv"}
            )
            assert r.status_code == 200, r.text
            for uid, person in ((AYU, "p-ayu"), (BUDI, "p-budi")):
                r = await http.post(
                    "/api/v1/badges", json={"kind": "nfc", "uid": uid, "person_id": person}
                )
                assert r.status_code == 201, r.text
            key = tmp_path / "snapshot.pub"
            key.write_bytes((await http.get("/api/v1/snapshot-key")).content)
            agent = EdgeAgent(
                EdgeSettings(
                    node_id=NODE,
                    mqtt_url=broker.url,
                    state_dir=tmp_path / "edge",
                    desk_units=[DeskUnitConfig(desk=d, port=p) for d, p in floor.paths.items()],
                    snapshot_public_key=key,
                    away_s=2,
                    away_warning_s=1,
                )
            )
            edge_task = asyncio.create_task(agent.run())

            async def has_snapshot() -> bool:
                snap = agent.book.snapshot
                return snap is not None and BUDI in snap.badges

            await eventually(has_snapshot, what="signed snapshot installed at the edge")
            yield Office(http, broker, agent, floor.sims)
    finally:
        if edge_task is not None:
            edge_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await edge_task
        broker.stop()


async def test_book_tap_check_in_then_away_release(tmp_path: Path, database_url: str) -> None:
    async with office(tmp_path, database_url) as o:
        sim = o.sims[DESK_A]
        booking = await o.book(DESK_A, "p-ayu")
        await sim.wait_led(_is_booked, timeout=15)  # the new snapshot reached the desk

        await sim.tap(AYU)
        await sim.wait_led(_is_green, timeout=10)
        await o.booking_where(DESK_A, id=booking["id"], status="checked_in")

        # The contract keeps a snapshot's away_s >= 60 s; shorten the edge's
        # timers here so the away path runs in seconds (docs/desk-booking.md).
        o.agent._away_periods = lambda: (2.0, 1.0)  # type: ignore[method-assign]
        await sim.set_presence(True)
        await sim.set_presence(False)
        await sim.wait_led(lambda led: led.pattern == LedPattern.PULSE, timeout=10)
        released = await o.booking_where(DESK_A, id=booking["id"], status="released")
        assert released["release_reason"] == "away"
        # Released bookings leave the next snapshot: the desk goes dark.
        await sim.wait_led(lambda led: led.pattern == LedPattern.OFF, timeout=15)


async def test_tap_with_the_uplink_down_is_decided_locally_and_synced_later(
    tmp_path: Path, database_url: str
) -> None:
    async with office(tmp_path, database_url) as o:
        sim = o.sims[DESK_A]
        booking = await o.book(DESK_A, "p-ayu")
        await sim.wait_led(_is_booked, timeout=15)

        o.broker.stop()
        await sim.tap(AYU)
        await sim.wait_led(_is_green, timeout=5)
        assert (await o.bookings(DESK_A))[0]["status"] == "booked"

        o.broker.start()
        await o.booking_where(DESK_A, id=booking["id"], status="checked_in")


async def test_offline_walk_up_wins_over_an_online_booking_made_meanwhile(
    tmp_path: Path, database_url: str
) -> None:
    async with office(tmp_path, database_url) as o:
        sim = o.sims[DESK_B]
        o.broker.stop()
        await sim.tap(BUDI)  # a free desk: walk-up, decided at the desk
        await sim.wait_led(_is_green, timeout=5)
        online = await o.book(DESK_B, "p-ayu")  # the cloud does not know yet

        o.broker.start()
        displaced = await o.booking_where(DESK_B, id=online["id"], status="released")
        assert displaced["release_reason"] == "displaced_by_offline_checkin"
        walk_up = await o.booking_where(DESK_B, person_id="p-budi", status="checked_in")
        assert walk_up["starts_at"] <= displaced["ends_at"]


async def test_no_show_is_released_after_the_grace(
    tmp_path: Path, database_url: str, mosquitto_server: devservers.Mosquitto
) -> None:
    settings = cloud_settings(
        tmp_path,
        database_url,
        mosquitto_server.url,
        snapshot_key_path=tmp_path / "snapshot-key.pem",
    )
    async with start_cloud(settings) as cloud:
        engine = cloud.app.state.engine
        await apply_layout(engine, parse_layout(LAYOUT))
        r = await cloud.http.post(
            "/api/v1/people/import", content=ROSTER, headers={"content-type": "text/csv"}
        )
        assert r.status_code == 200, r.text
        start = datetime.now(UTC) - timedelta(minutes=1)
        r = await cloud.http.post(
            "/api/v1/bookings",
            json={
                "desk_id": DESK_A,
                "person_id": "p-ayu",
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=2)).isoformat(),
            },
        )
        assert r.status_code == 201, r.text
        booking = r.json()

        # Within the grace (15 min): nothing happens.
        assert await release_no_shows(engine, start + timedelta(minutes=14)) == []
        assert await release_no_shows(engine, start + timedelta(minutes=16)) == [DESK_A]
        assert await release_no_shows(engine, start + timedelta(minutes=17)) == []

        rows = (await cloud.http.get("/api/v1/bookings", params={"desk": DESK_A})).json()
        assert [(b["id"], b["status"], b["release_reason"]) for b in rows] == [
            (booking["id"], "no_show", "no_show")
        ]
        async with engine.connect() as conn:
            kinds = (await conn.scalars(select(IntegrationEvent.kind))).all()
        assert "booking.released" in kinds
        # The next snapshot no longer holds the desk for her.
        async with engine.connect() as conn:
            snap = await cloud.app.state.snapshots.snapshot_for(conn, NODE)
        assert snap.body.bookings == ()
