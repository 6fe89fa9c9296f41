"""The demo's past and its other floors: weeks of history backfilled, floors 2 and 3 alive.

`backfill` publishes the simulated history of simulators/history.py to the
broker as the floors' edge nodes would have (check-ins and check-outs on the
events channel, presence and room presence drained on the backlog channel),
with their historic timestamps. The cloud ingests them like any other node
traffic: bindings checked (each floor speaks as its own node), check-ins with
a roster badge become walk-up bookings, the clock window
(`RUANG_INGEST_MAX_AGE_S`, 30 days by default) holds three weeks. Message ids
are derived from the day and the node, so a second backfill into the same
database is dropped by the exactly-once de-duplication.

`live_floor` keeps a floor without a real edge agent busy: a light publisher
that says it is online (birth, last-will), plays generated office days
(simulators/scenario.py) as presence telemetry and check-in/out events, moves
the floor's meeting rooms, and reports its health. The demo runs one for
floors 2 and 3; floor 1 has the full edge agent with desk units on ptys.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from ruang import contract
from simulators.history import FloorPlan, history, is_holiday, past_weekdays

if TYPE_CHECKING:
    import aiomqtt

    from cloud.buildings.layout import Layout

log = logging.getLogger(__name__)

HISTORY_WEEKS = 3
HISTORY_SEED = 13
# QoS 1 publishes in flight at once: enough to keep the broker busy, bounded memory.
WINDOW = 200
# Messages per second the demo's backfill is paced at (see `publish_all`).
DEMO_RATE = 200.0
# The shuttle history's pace: a boarding costs the cloud more than a desk event (the
# rider's seat row), and at 200/s the embedded broker times out waiting for acknowledgements.
TRANSPORT_RATE = 100.0
# Stop events written per transaction by the shuttle history (see `run_transport_history`).
STOP_EVENTS_BATCH = 200
# Of the roster people at a desk on a past day, the share who had booked it ahead
# (`booked_ahead`), and of those the share who then did not come.
BOOKED_AHEAD = 0.35
NO_SHOW = 0.2


def floor_plans(layout: Layout) -> list[FloorPlan]:
    """Each floor's node, its usable desks and its rooms with their sensors, layout order."""
    plans: list[FloorPlan] = []
    for building in layout.buildings:
        for floor in building.floors:
            desks: dict[str, list[str]] = {}
            rooms: dict[str, list[tuple[str, str | None]]] = {}
            for zone in floor.zones:
                for desk in zone.desks:
                    node = desk.node or floor.node
                    if node is not None and desk.mode != "unavailable":
                        desks.setdefault(node, []).append(desk.id)
                for room in zone.rooms:
                    node = room.node or floor.node
                    if node is not None:
                        rooms.setdefault(node, []).append((room.id, room.sensor))
            for node in dict.fromkeys([*desks, *rooms]):
                plans.append(
                    FloorPlan(node, tuple(desks.get(node, ())), tuple(rooms.get(node, ())))
                )
    return plans


def demo_closure(days: list[date]) -> list[date]:
    """A public holiday inside the window: a fixed one if the window has it, else the
    Wednesday of its middle week, simulated as a collective leave day (cuti bersama)."""
    if any(is_holiday(d) for d in days) or not days:
        return []
    middle = days[len(days) // 2]
    return [middle + timedelta(days=2 - middle.weekday())]


def _topic(message: contract.Message) -> str:
    kind = contract.kind_of(message)
    if kind in contract.EVENT_KINDS:
        return contract.event_topic(message.node, kind)
    # Samples of the past come out of a node's outbox on the backlog channel.
    return contract.backlog_topic(message.node, kind)


@dataclass(frozen=True)
class Backfilled:
    messages: int
    events: int
    seconds: float


async def publish_all(
    client: aiomqtt.Client, messages: list[contract.Message], rate: float | None = None
) -> None:
    """Publishes `messages` in order, QoS 1, at most WINDOW awaiting the broker's ack.

    `rate` (messages/s) paces them as a node's backlog drain is paced: the cloud
    then writes them in short transactions beside the live traffic and the API,
    and a broker that gives its subscribers only seconds to acknowledge
    (the embedded amqtt) is never handed more than the cloud commits in time.
    """
    step = WINDOW if rate is None else max(1, min(WINDOW, int(rate / 10)))
    loop = asyncio.get_running_loop()
    began = loop.time()
    for start in range(0, len(messages), step):
        if rate is not None:
            delay = began + start / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        chunk = messages[start : start + step]
        # gather starts the publishes in list order, so the broker receives them in order.
        await asyncio.gather(*(client.publish(_topic(m), contract.encode(m), qos=1) for m in chunk))


async def backfill(
    mqtt_url: str,
    messages: list[contract.Message],
    *,
    client_id: str = "ruang-demo-history",
    rate: float | None = None,
) -> Backfilled:
    """Publishes the history to the broker; returns what was sent and how long it took."""
    began = time.monotonic()
    async with _client(mqtt_url, client_id, inflight=WINDOW) as client:
        client.pending_calls_threshold = WINDOW  # a full window is expected, not a warning
        await publish_all(client, messages, rate)
    events = sum(1 for m in messages if contract.is_event(m))
    return Backfilled(len(messages), events, time.monotonic() - began)


def demo_history(
    layout: Layout, badges: list[str], today: date, weeks: int = HISTORY_WEEKS
) -> tuple[list[date], list[contract.Message]]:
    """The demo's working days and their messages."""
    days = past_weekdays(today, weeks)
    closed = demo_closure(days)
    messages = history(
        days,
        floor_plans(layout),
        badges,
        tz=layout.site.timezone,
        seed=HISTORY_SEED,
        extra_holidays=closed,
    )
    return [d for d in days if not is_holiday(d, closed)], messages


def _share(*parts: object) -> float:
    """A stable number in [0, 1) from the parts (the same day decides the same)."""
    digest = hashlib.sha256(":".join(map(str, (HISTORY_SEED, *parts))).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def booked_ahead(
    messages: list[contract.Message], people: dict[str, str], tz: str
) -> tuple[list[dict[str, str]], list[contract.Message]]:
    """The bookings some roster people had made for one day, and the day's messages left.

    Someone who booked and came is a `completed` booking from 08:00 until their
    tap out, checked in at their tap in; their own check-in/out events are taken
    out (the booking already tells it; left in, each would become a walk-up too).
    Someone who booked and did not come is a `no_show` 08:00-17:00, and their
    desk's messages of the day are taken out: nobody sat there. Everyone else
    stays a walk-up, as before.
    """
    from zoneinfo import ZoneInfo

    person_of = {badge: person for person, badge in people.items()}
    zone = ZoneInfo(tz)
    sitting: dict[str, contract.CheckIn] = {}
    leaving: dict[str, contract.CheckOut] = {}
    for m in messages:
        if isinstance(m, contract.CheckIn) and m.badge in person_of:
            sitting.setdefault(m.desk, m)
        elif isinstance(m, contract.CheckOut) and m.desk in sitting:
            leaving.setdefault(m.desk, m)
    rows: list[dict[str, str]] = []
    dropped_events: set[str] = set()
    absent: set[str] = set()
    for desk, checkin in sitting.items():
        day = datetime.fromtimestamp(checkin.ts, zone).date()
        if desk not in leaving or _share(day, desk, "booked") >= BOOKED_AHEAD:
            continue
        start = datetime(day.year, day.month, day.day, 8, tzinfo=zone)
        row = {"desk_id": desk, "person_id": person_of[checkin.badge], "starts_at": ""}
        if _share(day, desk, "came") < NO_SHOW:
            absent.add(desk)
            end = datetime(day.year, day.month, day.day, 17, tzinfo=zone)
            row |= {"ends_at": end.isoformat(), "outcome": "no_show"}
        else:
            dropped_events.add(desk)
            end = datetime.fromtimestamp(leaving[desk].ts, zone)
            arrived = datetime.fromtimestamp(checkin.ts, zone)
            row |= {
                "ends_at": end.isoformat(),
                "outcome": "completed",
                "checked_in_at": arrived.isoformat(),
            }
        row["starts_at"] = start.isoformat()
        rows.append(row)
    kept = [
        m
        for m in messages
        if getattr(m, "desk", None) not in absent
        and not (contract.is_event(m) and getattr(m, "desk", None) in dropped_events)
    ]
    return rows, kept


async def run_history(
    mqtt_url: str,
    layout: Layout,
    badges: list[str],
    *,
    api: tuple[str, str] | None = None,
    people: dict[str, str] | None = None,
) -> Backfilled | None:
    """The demo's backfill, with what it does said on the console.

    A failed backfill (the broker went away) is said and left at that: the demo
    without its past is still a demo, so it must not stop the live parts.
    """
    from zoneinfo import ZoneInfo

    import aiomqtt

    today = datetime.now(ZoneInfo(layout.site.timezone)).date()
    days, messages = demo_history(layout, badges, today)
    print(
        f"  history    loading {len(days)} working days ({days[0]} .. {days[-1]}, simulated) "
        f"as {len(messages)} messages through MQTT; analytics fill in as they land",
        flush=True,
    )
    try:
        if api is None or not people:
            done = await backfill(mqtt_url, messages, rate=DEMO_RATE)
        else:
            done = await _with_bookings(mqtt_url, messages, api, people, layout.site.timezone)
    except (aiomqtt.MqttError, OSError) as exc:
        print(f"  history    not loaded: {exc}", flush=True)
        return None
    print(
        f"  history    published {done.messages} messages ({done.events} events) "
        f"in {done.seconds:.1f} s",
        flush=True,
    )
    return done


async def _with_bookings(
    mqtt_url: str,
    messages: list[contract.Message],
    api: tuple[str, str],
    people: dict[str, str],
    tz: str,
) -> Backfilled:
    """Day by day: that day's bookings made ahead imported (POST /bookings/import), then
    its messages published, so a check-in never lands before the booking it belongs to.

    Re-running is harmless: identical bookings are skipped, messages de-duplicated.
    """
    from zoneinfo import ZoneInfo

    import httpx

    zone = ZoneInfo(tz)
    by_day: dict[date, list[contract.Message]] = {}
    for m in messages:
        by_day.setdefault(datetime.fromtimestamp(m.ts, zone).date(), []).append(m)
    url, token = api
    sent = events = booked = 0
    began = time.monotonic()
    async with httpx.AsyncClient(
        base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        for day_messages in by_day.values():
            rows, kept = booked_ahead(day_messages, people, tz)
            if rows:
                r = await http.post("/api/v1/bookings/import", json={"rows": rows})
                if r.status_code != 200:
                    # Left as walk-ups: the day's messages go out whole.
                    log.warning("history bookings refused (%s): %s", r.status_code, r.text)
                    kept = day_messages
                else:
                    booked += int(r.json()["created"])
            done = await backfill(mqtt_url, kept, rate=DEMO_RATE)
            sent, events = sent + done.messages, events + done.events
    print(f"  history    {booked} bookings made ahead imported (repeats skipped)", flush=True)
    return Backfilled(sent, events, time.monotonic() - began)


async def live_floor(
    mqtt_url: str, plan: FloorPlan, speed: float, *, day_s: float = 9 * 3600.0
) -> None:
    """A floor without an edge agent, kept alive as its node would: see the module docstring.

    A lost broker connection is retried (with a new birth sequence), never raised:
    the other parts of the demo go on.
    """
    import aiomqtt

    bdseq = int(time.time())  # grows from one demo run to the next, as a node's would
    while True:
        try:
            await _live_session(mqtt_url, plan, speed, day_s, bdseq)
        except aiomqtt.MqttError as exc:
            log.warning("floor %s lost the broker (%s); reconnecting", plan.node, exc)
            bdseq += 1
            await asyncio.sleep(2.0)


async def _live_session(
    mqtt_url: str, plan: FloorPlan, speed: float, day_s: float, bdseq: int
) -> None:
    import aiomqtt

    from simulators.scenario import office_day

    death = contract.NodeState(node=plan.node, online=False, bdseq=bdseq)
    will = aiomqtt.Will(
        contract.state_topic(plan.node), contract.encode(death), contract.STATE_QOS, True
    )
    async with _client(mqtt_url, f"ruang-demo-{plan.node}", will) as client:
        birth = contract.NodeState(
            node=plan.node,
            online=True,
            bdseq=bdseq,
            desks=tuple(contract.DeskInfo(desk=d) for d in plan.desks),
        )
        await client.publish(
            contract.state_topic(plan.node), contract.encode(birth), qos=1, retain=True
        )

        async def send(message: contract.Message) -> None:
            await client.publish(
                contract.topic_for(message),
                contract.encode(message),
                qos=contract.qos_for(message),
            )

        async def health() -> None:
            began = time.monotonic()
            while True:
                await send(
                    contract.NodeHealth(
                        node=plan.node,
                        uptime_s=time.monotonic() - began,
                        rss_bytes=0,
                        rejected_frames=0,
                        mqtt_reconnects=0,
                        units_online=len(plan.desks),
                    )
                )
                await asyncio.sleep(10)

        async def rooms() -> None:
            import random

            rng = random.Random(plan.node)
            while True:
                for room, sensor in plan.rooms:
                    present = rng.random() < 0.5
                    await send(
                        contract.RoomPresence(
                            node=plan.node, room=room, sensor=sensor, present=present
                        )
                    )
                await asyncio.sleep(max(2.0, 30 * 60 / speed))

        async def desks() -> None:
            day = 0
            checked_in: dict[str, str] = {}
            while True:
                scenario = office_day(
                    list(plan.desks),
                    people=max(1, len(plan.desks) * 3 // 4),
                    seed=1000 + day,
                    day_s=day_s,
                )
                loop = asyncio.get_running_loop()
                start = loop.time()
                for step in scenario.steps:
                    delay = start + step.at / speed - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if step.presence is not None:
                        await send(
                            contract.Presence(node=plan.node, desk=step.desk, present=step.presence)
                        )
                    elif step.tap is not None:
                        # A tap at a free desk checks in; the same badge again checks out.
                        if checked_in.get(step.desk) == step.tap:
                            del checked_in[step.desk]
                            await send(
                                contract.CheckOut(node=plan.node, desk=step.desk, badge=step.tap)
                            )
                        else:
                            checked_in[step.desk] = step.tap
                            await send(
                                contract.CheckIn(node=plan.node, desk=step.desk, badge=step.tap)
                            )
                day += 1

        async with asyncio.TaskGroup() as tg:
            tg.create_task(health())
            if plan.rooms:
                tg.create_task(rooms())
            if plan.desks:
                tg.create_task(desks())


def _client(
    mqtt_url: str, client_id: str, will: aiomqtt.Will | None = None, inflight: int | None = None
) -> aiomqtt.Client:
    import ssl

    import aiomqtt

    from ruang.mqtt_url import parse_broker_url

    broker = parse_broker_url(mqtt_url)
    return aiomqtt.Client(
        broker.host,
        broker.port,
        identifier=client_id,
        username=broker.username,
        password=broker.password,
        will=will,
        max_inflight_messages=inflight,
        tls_context=ssl.create_default_context() if broker.tls else None,
    )


async def run_transport_history(
    mqtt_url: str,
    database_url: str,
    badges: list[str],
    *,
    route_of: dict[str, str],
    shift_h: int,
    tz: str,
) -> Backfilled | None:
    """The shuttles' past weeks (simulators/transport_history.py), with what it does said.

    Boardings go through MQTT as each shuttle's node would have sent them (paced like the
    desks' backfill, exactly-once by message id); the stop arrivals/departures the live
    tracker would have detected are written through its own persistence function
    (cloud/transport/stop_events.py), since replaying weeks of positions would take the
    demo minutes. `route_of` says which route each shuttle drives ({vehicle: route}).
    Needs the demo timetable uploaded (launch/demo_fleet.py)."""
    from zoneinfo import ZoneInfo

    import aiomqtt

    from cloud.db.engine import make_engine
    from cloud.transport import schedule
    from cloud.transport.stop_events import persist_stop_events
    from launch.demo_transport import node_of
    from simulators.transport_history import transport_history

    vehicle_of = {route: vehicle for vehicle, route in route_of.items()}
    days = past_weekdays(datetime.now(ZoneInfo(tz)).date(), HISTORY_WEEKS)
    closed = demo_closure(days)
    days = [d for d in days if not is_holiday(d, closed)]
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            plans = [p for day in days for p in await schedule.plans_for_day(conn, day)]
        past = transport_history(
            plans,
            badges,
            vehicle_of=vehicle_of.get,
            node_of=node_of,
            tz=tz,
            seed=HISTORY_SEED,
            shift_h=shift_h,
        )
        print(
            f"  transport  loading {len(days)} days of shuttle history: {len(past.boardings)} "
            f"boardings through MQTT, {len(past.stop_events)} stop events",
            flush=True,
        )
        # Short write transactions with a pause between: on SQLite one long upsert would
        # hold the write lock for seconds, and the live ingestion (and the broker waiting
        # for its acknowledgements) would stall behind it.
        for start in range(0, len(past.stop_events), STOP_EVENTS_BATCH):
            await persist_stop_events(engine, past.stop_events[start : start + STOP_EVENTS_BATCH])
            await asyncio.sleep(0.05)
    finally:
        await engine.dispose()
    try:
        done = await backfill(
            mqtt_url,
            list(past.boardings),
            client_id="ruang-demo-transport-history",
            rate=TRANSPORT_RATE,
        )
    except (aiomqtt.MqttError, OSError) as exc:
        print(f"  transport  history not loaded: {exc}", flush=True)
        return None
    print(
        f"  transport  published {done.messages} past boardings in {done.seconds:.1f} s",
        flush=True,
    )
    return done
