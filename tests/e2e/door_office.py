"""A door office for tests and the bench: real Mosquitto, the cloud, a door-only edge agent
with one simulated OSDP reader per door (secure channel over a socat pty pair)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from cloud.buildings.layout import apply_layout, parse_layout
from cloud.db.engine import make_engine
from edge.agent import EdgeAgent
from edge.devices.access_policy import WeeklySchedule
from edge.devices.door import DoorConfig
from edge.devices.door_keys import create_node_key_file, seal_key
from edge.settings import EdgeSettings
from launch import devservers
from simulators.osdp_reader import OsdpReaderSim
from tests.e2e.test_walking_skeleton import cloud_settings, running_cloud
from tests.helpers import eventually

NODE = "door-node-1"
SITE = "s-doors"
TZ = "Asia/Makassar"
LOBBY, SERVER = "D-LOBBY", "D-SERVER"
AYU, BUDI, CITRA = "04A1B2C3D4E5F6", "04B0B1B2B3B4B5", "04C0C1C2C3C4C5"
SCBK = "00112233445566778899aabbccddeeff"
ROSTER = (
    "id,kind,name,role,agency\n"
    "p-ayu,asn,Ayu Lestari,asn,Bappenas\n"
    "p-budi,asn,Budi Santoso,asn,Kemenkeu\n"
    "p-citra,asn,Citra Dewi,asn,Bappenas\n"
)
LAYOUT: dict[str, Any] = {
    "site": {"id": SITE, "name": "Doors", "timezone": TZ},
    "buildings": [
        {
            "id": "b-doors",
            "name": "B",
            "floors": [
                {"id": "f-doors", "level": 1, "name": "L1",
                 "zones": [{"id": "z-doors", "name": "Z", "desks": []}]}
            ],
        }
    ],
}  # fmt: skip
ALL_DAY = [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00",
            "end": "24:00"}]  # fmt: skip


def local_today() -> datetime:
    return datetime.now(UTC).astimezone(ZoneInfo(TZ))


def other_weekday() -> str:
    """A weekday two days away from today's (site time): a schedule on it never covers now."""
    return ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(local_today().weekday() + 2) % 7]


@dataclass
class DoorOffice:
    http: httpx.AsyncClient
    agent: EdgeAgent
    readers: dict[str, OsdpReaderSim]
    seen: int = 0
    # The broker, for tests that cut the node off (tests/e2e/test_visitors.py).
    broker: devservers.Mosquitto | None = None

    changed_at: float = 0.0

    async def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.http.put(path, json=body)
        assert r.status_code == 200, r.text
        self.changed()
        out: dict[str, Any] = r.json()
        return out

    def changed(self) -> None:
        """A change has been committed: the next `synced` waits for a snapshot built after it."""
        self.changed_at = time.time()

    async def synced(self) -> None:
        """Waits until the node runs a snapshot the cloud built after the last change."""

        async def fresh() -> bool:
            view = self.agent.snapshots.current
            return view is not None and view.body.issued_at >= self.changed_at

        await eventually(fresh, timeout=20, what="a snapshot built after the change at the node")

    async def tap(self, door: str, badge: str) -> dict[str, Any]:
        """Presents `badge` at `door`'s reader; the decision as the cloud's access log has it."""
        self.readers[door].present_card(bytes.fromhex(badge))

        async def logged() -> dict[str, Any] | None:
            r = await self.http.get("/api/v1/access-log", params={"door": door, "limit": 1})
            r.raise_for_status()
            items = r.json()["items"]
            if items and items[0]["id"] > self.seen:
                return dict(items[0])
            return None

        entry: dict[str, Any] = await eventually(logged, timeout=20, what=f"decision at {door}")
        self.seen = entry["id"]
        return entry

    def decide(self, door: str, badge: str) -> tuple[bool, str]:
        """Like `tap` but straight from the node's policy (no reader): for timing the bench."""
        policy = self.agent.doors.policy
        assert policy is not None
        d = policy.decide(door, badge, datetime.now(UTC))
        return d.granted, d.reason


@contextlib.asynccontextmanager
async def door_office(
    tmp_path: Path, database_url: str, *, debounce_s: float = 0.05
) -> AsyncIterator[DoorOffice]:
    broker = devservers.Mosquitto(port=devservers.free_port(), workdir=tmp_path / "broker")
    broker.workdir.mkdir()
    broker.start()
    settings = cloud_settings(
        tmp_path, database_url, broker.url, snapshot_key_path=tmp_path / "snapshot-key.pem",
        flush_interval_s=0.05, snapshot_debounce_s=debounce_s,
    )  # fmt: skip
    readers: dict[str, OsdpReaderSim] = {}
    edge_task: asyncio.Task[None] | None = None
    try:
        async with running_cloud(settings) as http:
            engine = make_engine(database_url)
            try:
                await apply_layout(engine, parse_layout(LAYOUT))
            finally:
                await engine.dispose()
            r = await http.post(
                "/api/v1/people/import", content=ROSTER, headers={"content-type": "text/csv"}
            )
            assert r.status_code == 200, r.text
            for uid, person in ((AYU, "p-ayu"), (BUDI, "p-budi"), (CITRA, "p-citra")):
                r = await http.post(
                    "/api/v1/badges", json={"kind": "nfc", "uid": uid, "person_id": person}
                )
                assert r.status_code == 201, r.text
            kek = create_node_key_file(tmp_path / "node.key")
            doors = []
            for i, door in enumerate((LOBBY, SERVER)):
                sim = OsdpReaderSim(bytes.fromhex(SCBK), cp_port=tmp_path / f"rs485-{i}")
                sim.start()
                readers[door] = sim
                doors.append(
                    DoorConfig(
                        id=door,
                        port=str(sim.cp_port),
                        scbk_sealed=seal_key(SCBK, kek),
                        schedule=WeeklySchedule.always(),
                        open_ms=500,
                    )
                )
            # The cloud learns which doors the node controls from its desired config.
            r = await http.put(
                f"/api/v1/nodes/{NODE}/config",
                json={"config": {"doors": [d.model_dump(mode="json") for d in doors]}},
            )
            assert r.status_code == 202, r.text
            key = tmp_path / "snapshot.pub"
            key.write_bytes((await http.get("/api/v1/snapshot-key")).content)
            agent = EdgeAgent(
                EdgeSettings(
                    node_id=NODE, mqtt_url=broker.url, state_dir=tmp_path / "edge",
                    doors=doors, node_key_file=tmp_path / "node.key",
                    snapshot_public_key=key, building_tz=TZ,
                )
            )  # fmt: skip
            edge_task = asyncio.create_task(agent.run())

            async def readers_online() -> bool:
                return all(s.is_secure() for s in readers.values())

            await eventually(readers_online, timeout=30, what="readers in secure channel")
            yield DoorOffice(http, agent, readers, broker=broker)
    finally:
        if edge_task is not None:
            edge_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await edge_task
        for sim in readers.values():
            sim.stop()
        broker.stop()


async def set_up_rights(o: DoorOffice) -> None:
    """Doors in the cloud; Bappenas opens the lobby all day; Kemenkeu only the server room."""
    await o.put(f"/api/v1/access/doors/{LOBBY}", {"site_id": SITE, "name": "Lobby"})
    await o.put(f"/api/v1/access/doors/{SERVER}", {"site_id": SITE, "name": "Server room"})
    await o.put(
        "/api/v1/access/groups/g-bappenas",
        {"site_id": SITE, "name": "Bappenas", "rule": "agency", "value": "Bappenas"},
    )
    await o.put(
        "/api/v1/access/groups/g-ops",
        {"site_id": SITE, "name": "Ops", "rule": "people", "members": ["p-budi"]},
    )
    await o.put(
        "/api/v1/access/grants", {"group_id": "g-bappenas", "door_id": LOBBY, "schedule": ALL_DAY}
    )
    await o.put("/api/v1/access/grants",
                {"group_id": "g-ops", "door_id": SERVER, "schedule": ALL_DAY})  # fmt: skip
    await o.synced()

    async def rights_in() -> bool:
        view = o.agent.snapshots.current
        return view is not None and AYU in view.badges and bool(view.badges[AYU].doors)

    await eventually(rights_in, timeout=20, what="door rights at the node")
