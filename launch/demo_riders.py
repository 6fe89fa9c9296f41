"""Riders at the demo shuttles' doors: badges of the demo roster tapping while a shuttle dwells.

Each demo shuttle's vehicle edge agent has a door reader (simulators/riders.py's
`door_reader()`: the desk-unit protocol with LED and buzzer, on a pty). For every trip
the shuttle drives, a few people of the demo roster board it: `taps_along` picks each
rider's stop, and the rider taps while the simulated shuttle stands at that stop (the
simulator's ground truth, `ShuttleRun.truth`, on the simulator's own clock), so the
node infers the stop from its last fix exactly as on the road. Before the shuttle
reaches them, a couple of riders reserve a seat through the API
(`POST /api/v1/transport/reservations`, as the operator acting for them) and tap as
`reserved`; the others walk on; one reservation is never used, so the seat is released
as a no-show at departure. The node decides every tap from its signed snapshot; the
`boarding` events it sends become the dispatcher's `load` and the ridership figures.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

    from cloud.transport.plan import TripPlan
    from ruang import contract
    from simulators.deskunit import DeskUnitSimulator
    from simulators.shuttle import ShuttleSimulator

log = logging.getLogger(__name__)

READER = "door-1"
WALK_ONS = (4, 9)  # riders without a reservation per trip (inclusive range)
RESERVED = 2  # riders who reserve beforehand and tap
NO_SHOWS = 1  # riders who reserve and never come
RESERVE_AHEAD_S = 90.0  # reserve only at stops the shuttle leaves at least this much later
TAP_AFTER_ARRIVAL_S = 4.0  # the node has read a fix at the stop by then
SNAPSHOT_WAIT_S = 30.0  # riders wait this long at most for the node to learn of their trip


@dataclass(frozen=True, slots=True)
class Rider:
    person: str
    badge: str
    stop: str
    taps: bool = True


def riders_for(
    plan: TripPlan, roster: dict[str, str], seed: int, *, reservable: set[str]
) -> tuple[list[Rider], list[Rider]]:
    """(walk-ons, reserved) riders of `plan`, from the roster {person: badge}.

    Reserved riders board at a stop in `reservable` (seats can only be reserved from a
    stop the shuttle has not left yet); the last `NO_SHOWS` of them never tap."""
    from simulators.riders import taps_along

    rng = random.Random(f"{seed}:{plan.trip_id}:{plan.service_date}")
    people = sorted(roster)
    count = rng.randint(*WALK_ONS)
    chosen = rng.sample(people, min(len(people), count + RESERVED + NO_SHOWS))
    walkers = chosen[:count]
    taps = taps_along(plan, rng.randrange(1 << 30), [roster[p] for p in walkers], reader=READER)
    person_of = {roster[p]: p for p in walkers}
    walk_ons = [Rider(person_of[t.badge], t.badge, t.stop or "") for t in taps if t.stop]
    stops = [s.stop_id for s in plan.stops[:-1] if s.stop_id in reservable]
    reserved: list[Rider] = []
    if stops:
        for i, person in enumerate(chosen[count:]):
            stop = stops[rng.randrange(len(stops))]
            reserved.append(Rider(person, roster[person], stop, taps=i < RESERVED))
    return walk_ons, reserved


async def reserve(http: httpx.AsyncClient, plan: TripPlan, rider: Rider) -> bool:
    """Reserves `rider`'s seat on `plan` from their stop; False (logged) when refused."""
    r = await http.post(
        "/api/v1/transport/reservations",
        json={
            "trip_id": plan.trip_id,
            "service_date": plan.service_date,
            "from_stop": rider.stop,
            "person_id": rider.person,
        },
    )
    if r.status_code >= 400:
        log.info("demo riders: reservation on %s refused: %s", plan.trip_id, r.text[:200])
        return False
    return True


async def ride_trips(
    http: httpx.AsyncClient,
    sim: ShuttleSimulator,
    reader: DeskUnitSimulator,
    roster: dict[str, str],
    current: Callable[[], TripPlan],
    snapshot: Callable[[], contract.SnapshotBody | None],
    *,
    seed: int = 7,
    poll_s: float = 0.5,
) -> None:
    """For every trip the shuttle drives (`current()`), lets its riders tap during the
    dwell at their stops; runs until cancelled. `snapshot()` is the node's current
    snapshot: riders wait (a while) until it lists the trip and the seats just reserved,
    as a rider of a real shuttle would not tap before the bus reached them."""
    done: set[tuple[str, str]] = set()
    while True:
        plan = current()
        key = (plan.trip_id, plan.service_date)
        if key in done:
            await asyncio.sleep(poll_s * 4)
            continue
        done.add(key)
        try:
            await _ride(http, sim, reader, roster, plan, seed, poll_s, current, snapshot)
        except asyncio.CancelledError:
            raise
        except Exception:  # a refused call must not stop the riders of the next trips
            log.exception("demo riders on %s failed", plan.trip_id)


async def _ride(
    http: httpx.AsyncClient,
    sim: ShuttleSimulator,
    reader: DeskUnitSimulator,
    roster: dict[str, str],
    plan: TripPlan,
    seed: int,
    poll_s: float,
    current: Callable[[], TripPlan],
    snapshot: Callable[[], contract.SnapshotBody | None],
) -> None:
    run = sim.run
    truth = {t.stop_id: t for t in run.truth}
    now = sim.sim_time.timestamp()
    reservable = {
        s.stop_id
        for s in plan.stops
        if s.departure > now + RESERVE_AHEAD_S and truth[s.stop_id].arrival > now + 30
    }
    walk_ons, reserved = riders_for(plan, roster, seed, reservable=reservable)
    body = snapshot()
    before = -1 if body is None else body.version
    booked = [r for r in reserved if await reserve(http, plan, r)]
    await _node_knows(plan, snapshot, before if booked else None, poll_s)
    pending = walk_ons + [r for r in booked if r.taps]
    log.info(
        "demo riders: %s on %s: %d walk-ons, %d reserved",
        sim.run.plan.trip_id,
        plan.trip_id,
        len(walk_ons),
        len(booked),
    )
    while pending and sim.run is run and current() is plan:
        ts = sim.sim_time.timestamp()
        due = [
            r
            for r in pending
            if truth[r.stop].arrival + TAP_AFTER_ARRIVAL_S <= ts <= truth[r.stop].departure - 1
        ]
        for rider in due:
            await reader.tap(rider.badge)
            pending.remove(rider)
            await asyncio.sleep(1.0)  # one rider after the other at the door
        # A rider whose shuttle has left without them (the demo started mid-trip) stays home.
        pending = [r for r in pending if truth[r.stop].departure - 1 >= ts]
        await asyncio.sleep(poll_s)


async def _node_knows(
    plan: TripPlan,
    snapshot: Callable[[], contract.SnapshotBody | None],
    newer_than: int | None,
    poll_s: float,
) -> None:
    """Waits until the node's snapshot lists `plan` (and is newer than `newer_than`, the
    version before the seats were reserved), at most SNAPSHOT_WAIT_S."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SNAPSHOT_WAIT_S
    while loop.time() < deadline:
        body = snapshot()
        if body is not None and (newer_than is None or body.version > newer_than):
            if any(
                t.trip == plan.trip_id and t.service_date == plan.service_date for t in body.trips
            ):
                return
        await asyncio.sleep(poll_s)
    log.info("demo riders: the node has not learnt of %s yet; tapping anyway", plan.trip_id)
