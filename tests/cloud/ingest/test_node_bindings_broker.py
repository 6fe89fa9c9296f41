"""Two enrolled nodes on a Mosquitto enforcing the cloud's ACL: each may only speak for its own.

The broker keeps node-a on node-a's topics; these tests pin what the cloud adds
on top: a payload naming node-b's desk or room, or one the layout does not know,
is refused, counted and acknowledged, and changes nothing (cloud/ingest/bindings.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import func, insert, select

from cloud.db.engine import make_engine, migrate
from cloud.db.models import Booking, Person
from cloud.db.tables import DESKS, ROOMS
from cloud.fleet.broker_credentials import BrokerFiles
from cloud.fleet.enrolment import create_token, enrol
from cloud.settings import CloudSettings
from ruang import contract
from tests.cloud.binding_helpers import bind
from tests.cloud.conftest import RunningCloud, eventually, start_cloud, unique
from tests.cloud.fleet.test_broker_credentials import (
    CLOUD_PASSWORD,
    CLOUD_USER,
    auth_broker,
    client,
)

pytestmark = pytest.mark.servers

BADGE = "04A1B2C3D4E5F6"


@dataclass
class TwoNodes:
    cloud: RunningCloud
    port: int
    passwords: dict[str, str]
    booking: int


@pytest.fixture
async def two_nodes(tmp_path: Path) -> AsyncIterator[TwoNodes]:
    """node-a (desk A1, room RA) and node-b (desk B1 booked now, room RB), both enrolled."""
    settings = CloudSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/cloud.sqlite3",
        mosquitto_password_file=tmp_path / "broker" / "passwd",
        mosquitto_acl_file=tmp_path / "broker" / "acl",
        cloud_mqtt_username=CLOUD_USER,
        cloud_mqtt_password=CLOUD_PASSWORD,  # type: ignore[arg-type]
        mqtt_client_id=unique("ruang-cloud-bindings"),
        telemetry_sqlite_path=tmp_path / "telemetry.sqlite3",
        flush_interval_s=0.05,
    )
    await migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    passwords = {}
    now = datetime.now(UTC)
    try:
        for node in ("node-a", "node-b"):
            async with engine.begin() as conn:
                issued = await create_token(conn, settings, node_id=node, ttl_s=60, config={})
                passwords[node] = (
                    await enrol(conn, settings, token=issued.token, hardware_id=None)
                ).mqtt_password
                await BrokerFiles(settings).write(conn)
        await bind(engine, "node-a", ["A1"], rooms=["RA"])
        await bind(engine, "node-b", ["B1"], rooms=["RB"])
        async with engine.begin() as conn:
            await conn.execute(insert(Person).values(id="p-b", kind="asn", name="B", role="asn"))
            booking = await conn.scalar(
                insert(Booking)
                .values(
                    desk_id="B1",
                    person_id="p-b",
                    starts_at=now - timedelta(minutes=5),
                    ends_at=now + timedelta(hours=2),
                    status="booked",
                    created_at=now,
                )
                .returning(Booking.id)
            )
    finally:
        await engine.dispose()
    assert settings.mosquitto_password_file and settings.mosquitto_acl_file
    with auth_broker(settings.mosquitto_password_file, settings.mosquitto_acl_file) as broker:
        settings = settings.model_copy(
            update={"mqtt_url": f"mqtt://{CLOUD_USER}:{CLOUD_PASSWORD}@127.0.0.1:{broker.port}"}
        )
        async with start_cloud(settings) as cloud:
            yield TwoNodes(cloud, broker.port, passwords, int(booking))


async def booking_status(cloud: RunningCloud, booking: int) -> str:
    async with cloud.app.state.engine.connect() as conn:
        return str(await conn.scalar(select(Booking.status).where(Booking.id == booking)))


async def desk_row(cloud: RunningCloud, desk: str) -> object:
    async with cloud.app.state.engine.connect() as conn:
        return (await conn.execute(select(DESKS).where(DESKS.c.id == desk))).first()


async def send(node: aiomqtt.Client, message: contract.Message) -> None:
    await node.publish(
        contract.topic_for(message), contract.encode(message), qos=contract.qos_for(message)
    )


async def test_node_cannot_check_in_or_report_presence_for_another_nodes_desk_or_room(
    two_nodes: TwoNodes,
) -> None:
    cloud, stats = two_nodes.cloud, two_nodes.cloud.ingestor.stats
    pw = two_nodes.passwords
    async with (
        client(two_nodes.port, "node-a", pw["node-a"]) as node_a,
        client(two_nodes.port, "node-b", pw["node-b"]) as node_b,
    ):
        await node_a.subscribe(contract.node_command_subscription("node-a"), qos=1)
        acks: set[str] = set()

        async def collect() -> None:
            async for m in node_a.messages:
                if str(m.topic).endswith("/event_ack"):
                    acks.update(contract.decode(str(m.topic), m.payload)[1].ids)  # type: ignore[arg-type,attr-defined]

        collector = asyncio.create_task(collect())
        forged = contract.CheckIn(
            node="node-a", desk="B1", badge=BADGE, booking=str(two_nodes.booking)
        )
        ghost = contract.CheckIn(node="node-a", desk="GHOST-1", badge=BADGE)
        await send(node_a, forged)
        await send(node_a, ghost)
        await send(node_a, contract.Presence(node="node-a", desk="B1", present=True))
        await send(node_a, contract.Presence(node="node-a", desk="GHOST-2", present=True))
        await send(node_a, contract.RoomPresence(node="node-a", room="RB", present=True))

        async def all_refused() -> bool:
            r = stats.rejected
            return r.get("not_bound", 0) >= 3 and r.get("unknown_resource", 0) >= 2

        await eventually(all_refused)

        # Refused for good, so acknowledged: node-a stops resending them.
        async def acked() -> bool:
            return {forged.id, ghost.id} <= acks

        await eventually(acked)
        collector.cancel()
        b1 = await desk_row(cloud, "B1")
        assert b1.state == "free" and b1.present is None  # type: ignore[attr-defined]
        assert await booking_status(cloud, two_nodes.booking) == "booked"
        async with cloud.app.state.engine.connect() as conn:
            assert (
                await conn.scalar(
                    select(func.count())
                    .select_from(DESKS)
                    .where(DESKS.c.id.in_(["GHOST-1", "GHOST-2"]))
                )
                == 0
            )
            assert await conn.scalar(select(ROOMS.c.occupied).where(ROOMS.c.id == "RB")) is None

        # node-b's own messages about the same desk and room still apply.
        await send(
            node_b,
            contract.CheckIn(node="node-b", desk="B1", badge=BADGE, booking=str(two_nodes.booking)),
        )
        await send(node_b, contract.Presence(node="node-b", desk="B1", present=True))
        await send(node_b, contract.RoomPresence(node="node-b", room="RB", present=True))

        async def applied() -> bool:
            row = await desk_row(cloud, "B1")
            async with cloud.app.state.engine.connect() as conn:
                room = await conn.scalar(select(ROOMS.c.occupied).where(ROOMS.c.id == "RB"))
            return (
                row.state == "occupied"
                and row.present is True  # type: ignore[attr-defined]
                and room is True
            )

        await eventually(applied)
        assert await booking_status(cloud, two_nodes.booking) == "checked_in"
