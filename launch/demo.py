"""`ruang demo`: the whole system in one process, on one asyncio loop, with people to click through.

An MQTT broker (embedded amqtt unless RUANG_MQTT_URL names one), the cloud on
SQLite, an edge agent, and a simulated floor of desk units on pseudo-terminals
playing office days on an accelerated clock. Ctrl-C cancels the one task tree;
every part closes its own resources (ptys, sockets, files) on the way out.

So that the dashboards show something real, the demo also sets the building up
the way an administrator would, through the cloud's HTTP API with a dev admin
token:

- imports `cloud/buildings/sample_layout/ikn-people.csv` (about thirty ASN of Otorita IKN
  and the ministries, facility managers, technicians and two guests, each with
  an NFC badge); the guests' passes are moved to today;
- books desks for today (`PLAN`): some people show up and the simulation taps
  them in, one steps away from the desk, some never come (auto-release frees
  those desks within seconds), one booking is for this afternoon;
- hands the edge the cloud's snapshot public key, so taps are decided from the
  signed snapshot (bookings, badges) rather than a fallback;
- lets the simulated crowd tap the roster's badges, so the floor map shows the
  facility manager real names;
- invites two visitors hosted by Ayu Lestari, one arrived and checked in at reception with a
  temporary card, one due now and not arrived yet (launch/demo_visitors.py);
- books two meeting rooms on floor 1 and prints their door panels' URLs
  (launch/demo_rooms.py);
- loads the sample IKN shuttle schedule (GTFS), three shuttles and two pool cars,
  and the stops near the site (launch/demo_transport.py);
- backfills three weeks of simulated office history (check-ins, presence, meetings on all
  three floors) through MQTT, so the analytics open on weeks of data
  (launch/demo_history.py);
- keeps floors 2 and 3 alive with a light publisher per floor node speaking the same
  contract (launch/demo_history.py), beside floor 1's full edge agent;
- drives the shuttles along their trips and a pool car on an errand, each through its
  own vehicle edge agent reading a simulated GPS on a pty (launch/demo_fleet.py), so
  the kiosk's departures and the dispatcher's map move on their own;
- sets up the floor's lobby door with its rights (Otorita IKN may open it), driven by
  the edge through a simulated OSDP reader: it opens for a permitted badge and refuses
  another, both in the access log (launch/demo_doors.py).

Every map state appears on floor 1: free, booked, checked in, away, occupied
(someone at the drop-in desk who never taps) and unavailable (L1-D24).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from launch.demo_doors import (
    DEMO_DOOR,
    DEMO_SCBK,
    PERMITTED,
    REFUSED,
    door_config,
    play_door,
    set_up_doors,
)
from launch.demo_history import floor_plans, live_floor, run_history
from launch.demo_rooms import set_up_rooms
from launch.demo_transport import SHUTTLES, set_up_transport
from launch.demo_visitors import set_up_visitors
from launch.devservers import free_port

if TYPE_CHECKING:
    import httpx

    from cloud.settings import CloudSettings
    from edge.agent import EdgeAgent
    from simulators.floor import SimulatedFloor
    from simulators.ld2410 import LD2410Simulator
    from simulators.scenario import Scenario, Step

log = logging.getLogger(__name__)

DEMO_NODE = "ikn-demo-l1"
DAY_S = 9 * 3600.0  # one simulated office day, in scenario seconds


@dataclass(frozen=True)
class Planned:
    """A booking the demo makes for today, and what its person does about it."""

    desk: str
    person: str
    # show: arrives and taps in; away: taps in, later leaves the desk for a while;
    # no_show: never comes (its start is put just inside the check-in grace, so
    # auto-release frees it within seconds); booked: not here yet (released after
    # the grace); later: a booking for this afternoon.
    plan: str


PLAN = (
    Planned("L1-D02", "p-budi", "show"),
    Planned("L1-D07", "p-ayu", "show"),  # the Kementerian PUPR zone
    Planned("L1-D05", "p-tamu-maria", "show"),  # a guest, hosted by Ayu
    Planned("L1-D13", "p-rudi", "away"),  # the Otorita IKN zone
    Planned("L1-D03", "p-dewi", "no_show"),
    Planned("L1-D19", "p-andi", "no_show"),
    Planned("L1-D08", "p-nurul", "booked"),
    Planned("L1-D14", "p-maya", "booked"),
    Planned("L1-D20", "p-intan", "later"),
)
# A drop-in desk someone sits at without tapping their badge: the map's `occupied`.
SITTER_DESK = "L1-D22"


def roster_path() -> Path:
    from cloud.buildings.layout import SAMPLE_LAYOUT

    return SAMPLE_LAYOUT.parent / "ikn-people.csv"


def roster_for_today(text: str, now: datetime) -> tuple[str, dict[str, str]]:
    """The roster CSV with guest passes valid around `now`, and {person id: badge UID}."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise ValueError("the demo roster is empty")
    for row in rows:
        # The file's guest passes carry a fixed date; a demo always runs "today".
        if row.get("kind") == "guest":
            row["valid_from"] = (now - timedelta(hours=1)).isoformat()
            row["valid_until"] = (now + timedelta(hours=10)).isoformat()
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    badges = {row["id"]: row["badge_uid"] for row in rows if row.get("badge_uid")}
    return out.getvalue(), badges


async def set_up_building(http: httpx.AsyncClient, desks: set[str]) -> dict[str, str]:
    """Imports the roster and books today's desks; returns {person id: badge UID}."""
    now = datetime.now(UTC)
    roster, badges = roster_for_today(roster_path().read_text(encoding="utf-8"), now)
    r = await http.post(
        "/api/v1/people/import", content=roster.encode(), headers={"content-type": "text/csv"}
    )
    r.raise_for_status()
    for planned in PLAN:
        if planned.desk not in desks:
            continue  # a smaller demo floor: that desk is not simulated
        start = {
            "no_show": now - timedelta(minutes=14, seconds=50),
            "later": now + timedelta(hours=3),
        }.get(planned.plan, now - timedelta(minutes=1))
        r = await http.post(
            "/api/v1/bookings",
            json={
                "desk_id": planned.desk,
                "person_id": planned.person,
                "starts_at": start.isoformat(),
                "ends_at": (
                    start + timedelta(hours=3 if planned.plan == "later" else 8)
                ).isoformat(),
            },
        )
        if r.status_code != 201:
            # A demo with one booking fewer is still a demo; say why and go on.
            log.warning("demo booking %s for %s refused: %s", planned.desk, planned.person, r.text)
    return badges


def first_day(desks: list[str], badges: dict[str, str]) -> Scenario:
    """Day one: the booked people at their desks, the sitter, and walk-ups everywhere else."""
    from simulators.scenario import Scenario, Step, office_day

    steps: list[Step] = []
    booked_desks = {p.desk for p in PLAN}
    for i, planned in enumerate(p for p in PLAN if p.plan in ("show", "away")):
        if planned.desk not in desks or planned.person not in badges:
            continue
        badge, sit = badges[planned.person], 300.0 + 240 * i
        steps += [
            Step(at=sit, desk=planned.desk, presence=True),
            Step(at=sit + 8, desk=planned.desk, tap=badge),
        ]
        if planned.plan == "away":
            # Out to a meeting for an hour and a half: the map shows the desk `away`.
            steps += [
                Step(at=2 * 3600, desk=planned.desk, presence=False),
                Step(at=3.5 * 3600, desk=planned.desk, presence=True),
            ]
        steps += [
            Step(at=DAY_S - 900, desk=planned.desk, tap=badge),
            Step(at=DAY_S - 890, desk=planned.desk, presence=False),
        ]
    if SITTER_DESK in desks:
        steps += [
            Step(at=3600, desk=SITTER_DESK, presence=True),
            Step(at=6 * 3600, desk=SITTER_DESK, presence=False),
        ]
    walk_up_desks = [d for d in desks if d not in booked_desks and d != SITTER_DESK]
    planned_people = {p.person for p in PLAN}
    walk_up_badges = [uid for person, uid in badges.items() if person not in planned_people]
    if walk_up_desks:
        crowd = office_day(
            walk_up_desks,
            people=max(1, len(walk_up_desks) * 4 // 5),
            seed=0,
            day_s=DAY_S,
            badges=walk_up_badges,
        )
        steps += crowd.steps
    return Scenario(steps=tuple(sorted(steps, key=lambda step: step.at)))


async def play_days(
    floor: SimulatedFloor, desks: list[str], badges: dict[str, str], speed: float
) -> None:
    """The first (scripted) day, then generated office days with the roster's badges."""
    from simulators.scenario import office_day

    await floor.run_scenario(first_day(desks, badges), speed=speed)
    day = 1
    while True:
        crowd = max(1, len(desks) * 4 // 5)
        await floor.run_scenario(
            office_day(desks, people=crowd, seed=day, day_s=DAY_S, badges=list(badges.values())),
            speed=speed,
        )
        day += 1


# Meeting rooms of the demo floor, each with an LD2410 radar simulator on a pty.
DEMO_ROOMS = ("A1-L1-R1", "A1-L1-R2")


async def play_rooms(radars: dict[str, LD2410Simulator], speed: float) -> None:
    """Meetings: every half hour of demo time each room is in use or empty, at random."""
    import random

    from firmware_bridge.ld2410 import TargetState

    rng = random.Random(11)
    while True:
        for radar in radars.values():
            if rng.random() < 0.6:
                # A few people sitting at the table, 1.5 m from the sensor.
                radar.set_target(
                    TargetState.BOTH, moving_cm=150, moving_energy=60, still_cm=150, still_energy=55
                )
            else:
                radar.set_target(TargetState.NONE)
        await asyncio.sleep(max(2.0, 30 * 60 / speed))


async def run_demo(
    desks: int = 24, speed: float = 120.0, http_port: int = 8000, data_dir: Path = Path("var/demo")
) -> None:
    import httpx

    from cloud.buildings.layout import SAMPLE_LAYOUT, load_layout
    from cloud.people.auth import mint_dev_token
    from cloud.settings import CloudSettings
    from edge.agent import EdgeAgent
    from edge.devices.deskunit import DeskUnitConfig
    from edge.devices.radar import RadarConfig
    from edge.settings import EdgeSettings
    from launch.embedded_broker import embedded_broker
    from launch.webapp import serve
    from simulators.floor import SimulatedFloor
    from simulators.ld2410 import LD2410Simulator
    from simulators.osdp_reader import OsdpReaderSim

    if desks < 1:
        raise ValueError("the demo needs at least one desk")
    # Edge settings prefer RUANG_ env vars to arguments (a node's environment wins), so a
    # RUANG_STATE_DIR would give every simulated node of the demo one shared outbox.
    if os.environ.pop("RUANG_STATE_DIR", None) is not None:
        print("RUANG_STATE_DIR ignored: each demo node keeps its state under the data dir")
    # A demo starts from an empty building: old state would disagree with the new edge.
    data_dir.mkdir(parents=True, exist_ok=True)
    for old in data_dir.glob("*.sqlite3*"):
        old.unlink()
    # ... and the node's door audit chain goes with the cloud's copy of it.
    for old in (data_dir / "edge").glob("door_audit.sqlite3*"):
        old.unlink()
    port = http_port or free_port()
    layout = load_layout(SAMPLE_LAYOUT)
    unavailable = {desk.id for _, _, desk in layout.desks() if desk.mode == "unavailable"}

    async with contextlib.AsyncExitStack() as stack:
        mqtt_url = os.environ.get("RUANG_MQTT_URL")
        if mqtt_url:
            print(f"MQTT broker: {mqtt_url} (from RUANG_MQTT_URL)", flush=True)
        else:
            mqtt_url = await stack.enter_async_context(embedded_broker())
            print(f"MQTT broker: embedded amqtt on {mqtt_url}", flush=True)

        floor = await stack.enter_async_context(SimulatedFloor(count=desks))
        radars = {
            room: await stack.enter_async_context(LD2410Simulator(report_hz=2))
            for room in DEMO_ROOMS
        }
        reader = OsdpReaderSim(bytes.fromhex(DEMO_SCBK), cp_port=data_dir.resolve() / "rs485")
        reader.start()
        stack.callback(reader.stop)
        cloud_settings = CloudSettings(
            database_url=f"sqlite+aiosqlite:///{data_dir.resolve()}/cloud.sqlite3",
            mqtt_url=mqtt_url,
            http_host="127.0.0.1",
            http_port=port,
            telemetry_sqlite_path=data_dir.resolve() / "telemetry.sqlite3",
            snapshot_key_path=data_dir.resolve() / "snapshot-signing-key.pem",
            layout_file=SAMPLE_LAYOUT,
            # No-shows should visibly free their desks within seconds, not half a minute.
            autorelease_interval_s=5,
        )
        url = f"http://127.0.0.1:{port}"
        ready = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(serve(cloud_settings, ready=ready), name="cloud")
            await ready.wait()
            admin = mint_dev_token(
                cloud_settings, "ruang-demo", ["admin"], name="Ruang demo", ttl_s=600
            )
            async with httpx.AsyncClient(
                base_url=url, timeout=30, headers={"Authorization": f"Bearer {admin}"}
            ) as http:
                badges = await set_up_building(http, set(floor.sims))
                transport = await set_up_transport(http)
                await set_up_doors(http, DEMO_NODE)
                visits = await set_up_visitors(http)
                panels = await set_up_rooms(http)
                public_key = data_dir / "snapshot.pub"
                public_key.write_bytes((await http.get("/api/v1/snapshot-key")).content)
            edge_settings = EdgeSettings(
                node_id=DEMO_NODE,
                mqtt_url=mqtt_url,
                state_dir=data_dir / "edge",
                health_interval_s=10,
                desk_units=[DeskUnitConfig(desk=d, port=p) for d, p in floor.paths.items()],
                radars=[
                    RadarConfig(device=f"{room}-occupancy", room=room, port=radar.path)
                    for room, radar in radars.items()
                ],
                snapshot_public_key=public_key,
                doors=[door_config(reader, data_dir.resolve() / "node.key")],
                node_key_file=data_dir.resolve() / "node.key",
            )
            agent = EdgeAgent(edge_settings)
            tg.create_task(agent.run(), name="edge")
            print(
                f"Ruang demo: {desks} simulated desks on node {DEMO_NODE}, "
                f"{len(badges)} people with badges from {roster_path().name}",
                flush=True,
            )
            print(f"  dashboard  {url}/", flush=True)
            print(
                f"  sign in    dev login: pick a person at {url}/login "
                "(Siti Rahmawati, facility manager, sees the floor map with names)",
                flush=True,
            )
            print(
                f"  kiosk      {url}/kiosk?site=ikn-kipp   (lobby screen with shuttle "
                "departures, no sign-in)",
                flush=True,
            )
            print(
                f"  transport  {url}/transport/dispatch (dispatcher: sign in as a facility "
                f"manager), {url}/transport/me (my shuttle), {url}/transport/analytics",
                flush=True,
            )
            arrived = sum(v["status"] == "checked_in" for v in visits)
            print(
                f"  reception  {url}/reception   ({len(visits)} visitors today, {arrived} checked "
                "in; sign in as Admin (dev) or with a `reception` token of the site)",
                flush=True,
            )
            for room, panel_url in panels.items():
                print(f"  room panel {panel_url}   ({room}, the tablet at its door)", flush=True)
            print(
                f"  transport  {transport['trips.txt']} weekday shuttle trips on "
                f"{transport['routes.txt']} routes (WITA), {len(SHUTTLES)} shuttles: "
                f"{url}/api/v1/transport/trips",
                flush=True,
            )
            print(
                f"  door       {DEMO_DOOR}: opens for {PERMITTED} (Otorita IKN), refuses "
                f"{REFUSED}: {url}/api/v1/access-log",
                flush=True,
            )
            print(
                f"  API        {url}/docs   (scripts: `ruang token admin --role admin` "
                "mints a bearer token)",
                flush=True,
            )
            print(
                f"  analytics  {url}/analytics   (three weeks of simulated history, loading now)",
                flush=True,
            )
            print("Press Ctrl-C to stop.", flush=True)
            # The past's bookings made ahead are imported by an admin token of their own.
            history_api = (url, mint_dev_token(cloud_settings, "ruang-demo", ["admin"], ttl_s=7200))
            desks_history = tg.create_task(
                run_history(
                    mqtt_url, layout, list(badges.values()), api=history_api, people=badges
                ),
                name="history",
            )
            for plan in floor_plans(layout):
                if plan.node != DEMO_NODE:
                    tg.create_task(live_floor(mqtt_url, plan, speed), name=f"floor {plan.node}")
            await agent.uplink.connected.wait()
            await _signed_snapshot(agent)
            usable = [d for d in floor.sims if d not in unavailable]
            tg.create_task(play_days(floor, usable, badges, speed), name="scenario")
            tg.create_task(play_rooms(radars, speed), name="rooms")
            tg.create_task(
                _drive_fleet(
                    cloud_settings, url, mqtt_url, data_dir, public_key, badges, desks_history
                ),
                name="fleet",
            )
            tg.create_task(play_door(reader, badges, speed), name="door")


async def _signed_snapshot(agent: EdgeAgent) -> None:
    """Waits (30 s at most) for the edge's first signed snapshot, so the first taps find
    the bookings."""
    try:
        async with asyncio.timeout(30):
            while agent.book.snapshot is None:  # noqa: ASYNC110 - the book has no event to await
                await asyncio.sleep(0.2)
    except TimeoutError:
        # Taps still work (the edge falls back); the demo just starts less faithful.
        log.warning("no signed snapshot at the edge after 30 s; starting anyway")


async def _drive_fleet(
    settings: CloudSettings,
    url: str,
    mqtt_url: str,
    data_dir: Path,
    public_key: Path,
    riders: dict[str, str],
    after: asyncio.Task[object],
) -> None:
    """The shuttles and the pool car (launch/demo_fleet.py), with a token that outlives a
    long demo: the fleet keeps assigning trips as the day goes on."""
    import httpx

    from cloud.people.auth import mint_dev_token
    from launch.demo_fleet import run_fleet

    token = mint_dev_token(settings, "ruang-demo-fleet", ["admin"], name="Ruang demo", ttl_s=86400)
    async with httpx.AsyncClient(
        base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        await run_fleet(
            http,
            database_url=settings.database_url,
            mqtt_url=mqtt_url,
            data_dir=data_dir,
            public_key=public_key,
            riders=riders,
            after=asyncio.shield(after),
        )
