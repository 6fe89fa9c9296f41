"""The live transport service inside the cloud app: vehicle positions from ingestion ->
trackers -> stop events, ETAs, the dispatcher's live map and GTFS-Realtime.

Ingestion calls `offer(position, backlog)` for every `position` telemetry message and
every one replayed from a node's outbox (`backlog/position`). That call only appends to a
bounded queue (a full queue drops and counts), so ingestion's throughput does not depend
on tracking. A worker task drains the queue: each fix goes to its vehicle's
`VehicleTracker` (cloud/transport/tracking.py); a vehicle with no trip gets the trip the
dispatcher assigned it, or one matched from the day's schedule and its position. Detected
stop arrivals/departures are upserted into `transport_stop_events` and teach the ETA
predictor (cloud/transport/eta.py); changed vehicles are announced on `hub` for the SSE
stream. A position naming no known vehicle is counted in `rejects` with its reason.
Accepted pool-car fixes are handed to `record_car_position` (cloud/transport/car_trips.py),
which keeps those that fall in a booking's use for its trip log.

The schedule, vehicles, assignments, cancellations and alerts are read into memory at
start, every `refresh_s`, and right after the dispatcher changes them (`refresh()`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from google.transit import gtfs_realtime_pb2 as rt
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.db.job_errors import log_failed_pass
from cloud.db.tables import TRANSPORT_AGENCIES as AGENCIES
from cloud.db.tables import TRANSPORT_BOARDINGS
from cloud.db.tables import TRANSPORT_VEHICLES as VEHICLES
from cloud.live.hub import LiveHub
from cloud.transport import dispatch, gtfsrt, schedule
from cloud.transport.car_trips import record_car_position
from cloud.transport.eta import SegmentTimes, StopEta, predict_for
from cloud.transport.gtfsrt import AlertView, TripUpdateView, VehicleView
from cloud.transport.plan import TripPlan
from cloud.transport.schemas_live import AlertPublic, LiveVehicle
from cloud.transport.stop_events import persist_stop_events
from cloud.transport.tracking import Fix, StopEvent, TrackerConfig, VehicleTracker
from ruang import contract
from ruang.tasks import cancel_and_wait

log = logging.getLogger(__name__)

QUEUE_MAX = 50_000
# How often the riders boarded per running trip are re-read for the dispatcher's view.
LOADS_S = 5.0
OFFLINE_AFTER_S = 600.0  # a vehicle in service silent this long shows as offline
MATCH_EVERY_S = 10.0  # an unmatched vehicle tries the schedule at most this often
PlanKey = tuple[str, str]  # trip_id, service_date


@dataclass(frozen=True, slots=True)
class VehicleInfo:
    id: str
    kind: str
    label: str
    capacity: int
    node_id: str | None
    state: str


def _utc(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC)


def _utc_dt(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


class LiveService:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Callable[[], float] = time.time,
        config: TrackerConfig = TrackerConfig(),
        refresh_s: float = 60.0,
        loads_s: float = LOADS_S,
        queue_max: int = QUEUE_MAX,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.config = config
        self.refresh_s = refresh_s
        self.loads_s = loads_s
        # Riders who boarded each running trip instance (allowed door taps; nobody taps out).
        self.loads: dict[PlanKey, int] = {}
        self.hub = LiveHub()  # vehicle ids that changed, for the SSE streams
        self.times = SegmentTimes()
        self.rejects: Counter[str] = Counter()
        self.processed = 0
        self.trackers: dict[str, VehicleTracker] = {}
        self.vehicles: dict[str, VehicleInfo] = {}
        self._by_node: dict[str, str] = {}
        self.plans: dict[PlanKey, TripPlan] = {}
        self.assignments: dict[PlanKey, str] = {}
        self.cancelled: set[PlanKey] = set()
        self.alerts: list[AlertPublic] = []
        self.agency_id: str | None = None
        self.tz = ZoneInfo(gtfsrt.AGENCY_TZ)
        self._trip_events: dict[PlanKey, dict[int, StopEvent]] = {}
        self._last_match: dict[str, float] = {}
        self._queue: deque[tuple[contract.Position, bool]] = deque()
        self._car_fixes: list[tuple[str, Fix]] = []  # accepted pool-car fixes to keep
        self._queue_max = queue_max
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._loader: asyncio.Task[None] | None = None
        self._refresh_lock = asyncio.Lock()
        self.idle = asyncio.Event()  # set whenever the queue has been drained
        self.idle.set()

    # -- the ingestion hook (hot path: keep it cheap) ------------------------------------

    def offer(self, message: contract.Position, backlog: bool = False) -> None:
        if len(self._queue) >= self._queue_max:
            self.rejects["queue_full"] += 1
            return
        self._queue.append((message, backlog))
        self.idle.clear()
        self._wake.set()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name="ruang-transport-live")
        self._refresher = asyncio.create_task(self._refresh_loop(), name="ruang-transport-refresh")
        self._loader = asyncio.create_task(self._loads_loop(), name="ruang-transport-loads")

    async def stop(self) -> None:
        self.hub.close()
        for task in (self._loader, self._refresher, self._task):
            if task is not None:
                await cancel_and_wait(task)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.refresh()
            except Exception as exc:  # a failed read keeps the last state; try again later
                log_failed_pass(log, "transport live: refresh failed", exc)

    async def _loads_loop(self) -> None:
        while True:
            try:
                await self.refresh_loads()
            except Exception as exc:  # a failed read keeps the last loads; try again later
                log_failed_pass(log, "transport live: reading trip loads failed", exc)
            await asyncio.sleep(self.loads_s)

    async def refresh_loads(self) -> None:
        """Re-reads how many riders boarded each trip instance a tracked vehicle runs now."""
        running = {(t.trip.trip_id, t.trip.service_date) for t in self.trackers.values() if t.trip}
        if not running:
            self.loads = {}
            return
        B = TRANSPORT_BOARDINGS
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(B.c.trip_id, B.c.service_date, func.count())
                .where(B.c.allowed.is_(True), B.c.trip_id.in_({k[0] for k in running}))
                .group_by(B.c.trip_id, B.c.service_date)
            )
            loads = {(r[0], r[1]): int(r[2]) for r in rows if (r[0], r[1]) in running}
        changed = [
            vid
            for vid, t in self.trackers.items()
            if t.trip
            and loads.get((t.trip.trip_id, t.trip.service_date))
            != self.loads.get((t.trip.trip_id, t.trip.service_date))
        ]
        self.loads = loads
        if changed:
            self.hub.announce(changed)

    async def refresh(self) -> None:
        """Re-read vehicles, the plans of the service days around now, and the dispatcher's
        assignments, cancellations and alerts."""
        async with self._refresh_lock, self.engine.connect() as conn:
            self.tz = await schedule.timezone(conn)
            self.agency_id = await conn.scalar(select(AGENCIES.c.agency_id).limit(1))
            vehicles = {
                r.id: VehicleInfo(r.id, r.kind, r.label, r.capacity, r.node_id, r.state)
                for r in await conn.execute(select(VEHICLES))
            }
            today = dt.datetime.fromtimestamp(self.clock(), self.tz).date()
            plans: dict[PlanKey, TripPlan] = {}
            for day in (today - dt.timedelta(days=1), today):
                for plan in await schedule.plans_for_day(conn, day):
                    plans[(plan.trip_id, plan.service_date)] = plan
            assigned = {
                (a.trip_id, a.service_date): a.vehicle for a in await dispatch.assignments(conn)
            }
            cancelled = {(c.trip_id, c.service_date) for c in await dispatch.cancellations(conn)}
            alerts = await dispatch.alerts(conn, active_only=True)
        self.vehicles = vehicles
        self._by_node = {v.node_id: v.id for v in vehicles.values() if v.node_id}
        self.plans, self.assignments, self.cancelled, self.alerts = (
            plans,
            assigned,
            cancelled,
            alerts,
        )
        days = {key[1] for key in plans}
        self._trip_events = {k: v for k, v in self._trip_events.items() if k[1] in days}

    # -- the worker ------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                changed: set[str] = set()
                events: list[tuple[str, StopEvent]] = []
                for _ in range(min(len(self._queue), 2000)):
                    message, backlog = self._queue.popleft()
                    try:
                        vid, evs = self.process(message, backlog)
                    except Exception:  # one bad fix must not stop tracking
                        self.rejects["internal"] += 1
                        log.exception("transport live: fix from %s", message.node)
                        continue
                    if vid is not None:
                        changed.add(vid)
                        events += [(vid, e) for e in evs]
                if events:
                    try:
                        await self._persist(events)
                    except Exception:
                        self.rejects["persist_failed"] += len(events)
                        log.exception("transport live: storing %d stop events", len(events))
                if self._car_fixes:
                    await self._record_cars()
                self.hub.announce(changed)
                await asyncio.sleep(0)
            self.idle.set()

    def _vehicle_for(self, message: contract.Position) -> VehicleInfo | None:
        info = self.vehicles.get(message.vehicle)
        if info is None and message.node in self._by_node:
            info = self.vehicles.get(self._by_node[message.node])
        return info

    def process(
        self, message: contract.Position, backlog: bool
    ) -> tuple[str | None, list[StopEvent]]:
        """One fix through its vehicle's tracker; the vehicle id and the stop events it changed."""
        self.processed += 1
        info = self._vehicle_for(message)
        if info is None:
            self.rejects["unknown_vehicle"] += 1
            return None, []
        tracker = self.trackers.get(info.id)
        if tracker is None:
            tracker = self.trackers[info.id] = VehicleTracker(info.id, self.config)
        fix = Fix(
            message.ts,
            message.lat,
            message.lon,
            message.speed_kmh,
            message.hdop,
            message.fix_quality,
            message.heading_deg,
        )
        now = self.clock()
        result = tracker.feed(fix, now=now)
        if not result.accepted:
            self.rejects[f"fix_{result.reason}"] += 1
            return None, []
        if info.kind == "poolcar":
            self._car_fixes.append((info.id, fix))
        events = list(result.events)
        if tracker.trip is None and result.live and info.kind == "shuttle":
            events += self._find_trip(tracker, now)
        for e in events:
            self._trip_events.setdefault((e.trip_id, e.service_date), {})[e.stop_sequence] = e
        for key in {(e.trip_id, e.service_date) for e in events}:
            self.times.learn(list(self._trip_events[key].values()))
        return info.id, events

    def _find_trip(self, tracker: VehicleTracker, now: float) -> list[StopEvent]:
        """An assigned trip running around now, else (at most every MATCH_EVERY_S) a match
        among the trips nobody is assigned to or already running."""
        w = self.config.match_window_s
        mine = sorted(
            (
                self.plans[k]
                for k, v in self.assignments.items()
                if v == tracker.vehicle and k in self.plans
            ),
            key=lambda p: p.start,
        )
        for plan in mine:
            key = (plan.trip_id, plan.service_date)
            if key in tracker.completed or key in self.cancelled:
                continue
            if plan.start - w <= now <= plan.end + w:
                tracker.set_trip(plan, assigned=True)
                return tracker.stop_events()
        if now - self._last_match.get(tracker.vehicle, -1e18) < MATCH_EVERY_S:
            return []
        self._last_match[tracker.vehicle] = now
        running = {(t.trip.trip_id, t.trip.service_date) for t in self.trackers.values() if t.trip}
        free = [
            p
            for k, p in self.plans.items()
            if k not in self.assignments and k not in self.cancelled and k not in running
        ]
        if tracker.auto_match(free) is None:
            return []
        return [e for e in tracker.stop_events() if e.arrival is not None]

    async def _persist(self, events: list[tuple[str, StopEvent]]) -> None:
        await persist_stop_events(self.engine, events)

    async def _record_cars(self) -> None:
        """Pool-car fixes go to the seat/pool-car service's trip trace (car_trips.py)."""
        fixes, self._car_fixes = self._car_fixes, []
        try:
            async with self.engine.begin() as conn:
                for vid, fix in fixes:
                    assert fix.lat is not None and fix.lon is not None
                    await record_car_position(conn, vid, _utc_dt(fix.ts), fix.lat, fix.lon)
        except Exception:
            self.rejects["car_trace_failed"] += len(fixes)
            log.exception("transport live: storing %d pool-car fixes", len(fixes))

    # -- views -------------------------------------------------------------------------------

    def etas(self, vehicle: str, now: float) -> list[StopEta]:
        tracker = self.trackers.get(vehicle)
        return [] if tracker is None else predict_for(tracker, self.times, now)

    def tracker_for_trip(self, key: PlanKey) -> VehicleTracker | None:
        for t in self.trackers.values():
            if t.trip is not None and (t.trip.trip_id, t.trip.service_date) == key:
                return t
        return None

    def live_vehicle(self, info: VehicleInfo, now: float) -> LiveVehicle:
        t = self.trackers.get(info.id)
        fix = t.last if t else None
        plan = t.trip if t else None
        stale = t is None or t.stale(now)
        state = info.state
        if plan is not None and not stale:
            state = "in_service"
        elif fix is not None and now - fix.ts > OFFLINE_AFTER_S and info.state == "in_service":
            state = "offline"
        etas = predict_for(t, self.times, now) if t is not None and plan is not None else []
        last_i = t.last_stop_index() if t is not None else None
        return LiveVehicle(
            vehicle=info.id,
            kind=info.kind,  # type: ignore[arg-type]
            label=info.label,
            state=state,  # type: ignore[arg-type]
            trip=plan.trip_id if plan else None,
            route=plan.route_id if plan else None,
            service_date=plan.service_date if plan else None,
            assigned=bool(t and t.assigned),
            lat=fix.lat if fix else None,
            lon=fix.lon if fix else None,
            ts=_utc(fix.ts) if fix else None,
            speed_kmh=fix.speed_kmh if fix else None,
            heading_deg=fix.heading_deg if fix else None,
            dist_m=round(t.dist_m, 1) if t is not None and t.dist_m is not None else None,
            last_stop=plan.stops[last_i].stop_id if plan and last_i is not None else None,
            next_stop=etas[0].stop_id if etas else None,
            next_stop_eta=_utc(etas[0].arrival) if etas else None,
            delay_s=etas[0].delay_s if etas else None,
            capacity=info.capacity,
            load=self.loads.get((plan.trip_id, plan.service_date), 0) if plan else None,
            stale=stale,
            off_route=bool(t and t.off_route),
        )

    def live(self, now: float) -> list[LiveVehicle]:
        return [self.live_vehicle(info, now) for _, info in sorted(self.vehicles.items())]

    def vehicle_positions(self, now: float) -> rt.FeedMessage:
        views = []
        for vid, t in sorted(self.trackers.items()):
            fix, info = t.last, self.vehicles.get(vid)
            # Best practice: no position older than the stale limit in the feed.
            if fix is None or info is None or t.stale(now) or fix.lat is None or fix.lon is None:
                continue
            plan = t.trip
            n = t.next_stop_index()
            status: gtfsrt.StopStatus = "IN_TRANSIT_TO"
            if plan is not None and n is not None:
                ev = t.stop_events()[n]
                if ev.arrival is not None and ev.departure is None and not ev.inferred:
                    status = "STOPPED_AT"
            views.append(
                VehicleView(
                    vid,
                    info.label,
                    fix.lat,
                    fix.lon,
                    fix.ts,
                    fix.speed_kmh,
                    fix.heading_deg,
                    plan,
                    n,
                    status,
                )
            )
        return gtfsrt.vehicle_positions(views, now, self.tz.key)

    def trip_updates(self, now: float) -> rt.FeedMessage:
        views = []
        for vid, t in sorted(self.trackers.items()):
            if (
                t.trip is None
                or t.stale(now)
                or (t.trip.trip_id, t.trip.service_date) in self.cancelled
            ):
                continue
            etas = predict_for(t, self.times, now)
            views.append(TripUpdateView(t.trip, t.last.ts if t.last else now, etas, vid))
        for key in sorted(self.cancelled):
            plan = self.plans.get(key)
            if plan is not None and plan.end >= now - 3600:
                views.append(TripUpdateView(plan, now, canceled=True))
        return gtfsrt.trip_updates(views, now, self.tz.key)

    def alerts_feed(self, now: float) -> rt.FeedMessage:
        views = [
            AlertView(
                a.id,
                {a.language: a.header},
                {a.language: a.description} if a.description else {},
                a.cause,
                a.effect,
                a.starts_at.timestamp() if a.starts_at else None,
                a.ends_at.timestamp() if a.ends_at else None,
                [a.route_id] if a.route_id else [],
                [a.stop_id] if a.stop_id else [],
                [a.trip_id] if a.trip_id else [],
                self.agency_id,
            )
            for a in self.alerts
            if (a.starts_at is None or a.starts_at.timestamp() <= now)
            and (a.ends_at is None or now < a.ends_at.timestamp())
        ]
        return gtfsrt.alerts(views, now)

    async def drained(self) -> None:
        """Until every offered fix has been processed (tests and benchmarks)."""
        await self.idle.wait()
