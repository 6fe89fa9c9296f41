"""Live transport figures: ETA error against a timetable-only baseline, GTFS-Realtime feed
build time for 500 vehicles, tracker throughput, and (with servers) the end-to-end delay
from a fix on a vehicle's serial line to the GTFS-RT feed.

`run()` returns figures, each beside its target and a verdict:

* `eta_mae_5min_s` / `eta_mae_15min_s`: a morning of trips on the sample route
  (simulators.shuttle) with seeded traffic per segment (a congestion pattern for the
  morning, each trip within +-10 % of it). Every 30 s of each trip, every upcoming stop
  is predicted; the absolute error against the simulator's ground truth is binned by
  horizon (actual arrival - now) in 4-6 min and 13-17 min. The `_baseline_` figures are
  the same instants predicted by the timetable alone. Target: below the baseline.
* `gtfsrt_<feed>_500_ms_p50/_p99`: VehiclePositions and TripUpdates (10 stops each) for
  500 vehicles, each built and serialised. Target < 50 ms per feed (median).
* `tracker_positions_per_s`: fixes through `VehicleTracker.feed` for 200 vehicles.
* `fix_to_gtfsrt_ms_p50/_p99` (see bench/transport_e2e.py): shuttle simulator on a pty ->
  edge GPS driver -> Mosquitto -> cloud ingestion -> tracker -> GTFS-RT. Target p99 < 1 s.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from typing import Any

from cloud.transport import gtfsrt
from cloud.transport.eta import SegmentTimes, StopEta, predict_for, timetable_etas
from cloud.transport.gtfsrt import TripUpdateView, VehicleView
from cloud.transport.tracking import Fix, VehicleTracker
from simulators.shuttle import ShuttleRun, sample_plan, seeded_traffic

START = 1_724_032_800.0  # 2024-08-19 10:00 WITA
BUILD_TARGET_MS = 50.0
POSITIONS_TARGET = 5_000.0  # 500 vehicles at one fix per 5 s is 100/s: fifty times over
HORIZONS = {"5min": (240.0, 360.0), "15min": (780.0, 1020.0)}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def eta_errors(trips: int = 10, seed: int = 2024, headway_s: float = 900.0) -> dict[str, Any]:
    """MAE of the learned predictor and of the timetable at each horizon (seconds)."""
    rng = random.Random(seed)
    probe = sample_plan(START, stop_every=1, speed_kmh=25)
    base = seeded_traffic(seed, len(probe.stops) - 1)
    times = SegmentTimes()
    errs: dict[str, list[float]] = {h: [] for h in HORIZONS}
    base_errs: dict[str, list[float]] = {h: [] for h in HORIZONS}
    for k in range(trips):
        plan = sample_plan(START + k * headway_s, trip_id=f"T{k}", stop_every=1, speed_kmh=25)
        traffic = [f * rng.uniform(0.9, 1.1) for f in base]
        run = ShuttleRun(plan, traffic=traffic, dwell_s=rng.uniform(15, 30))
        truth = {t.stop_sequence: t.arrival for t in run.truth}
        timetable = {e.stop_sequence: e for e in timetable_etas(plan)}
        tracker = VehicleTracker(f"bus-{k % 3}")
        tracker.set_trip(plan)
        t, next_probe = run.t0, run.t0
        while tracker.trip is not None and t <= run.end + 60:
            s = run.sample(t)
            tracker.feed(Fix(t, s.lat, s.lon, s.speed_kmh, 0.9, 1))
            times.learn(tracker.stop_events())
            if t >= next_probe and tracker.trip is not None:
                next_probe += 30.0
                etas: list[StopEta] = predict_for(tracker, times, t)
                for e in etas:
                    horizon = truth[e.stop_sequence] - t
                    for name, (lo, hi) in HORIZONS.items():
                        if lo <= horizon <= hi:
                            errs[name].append(abs(e.arrival - truth[e.stop_sequence]))
                            sched = timetable[e.stop_sequence].arrival
                            base_errs[name].append(abs(sched - truth[e.stop_sequence]))
            t += 5.0
    out: dict[str, Any] = {}
    for name in HORIZONS:
        mae, base_mae = statistics.mean(errs[name]), statistics.mean(base_errs[name])
        out[f"eta_mae_{name}_s"] = round(mae, 1)
        out[f"eta_mae_{name}_baseline_timetable_s"] = round(base_mae, 1)
        out[f"eta_mae_{name}_samples"] = len(errs[name])
        out[f"eta_mae_{name}_target"] = "< baseline"
        out[f"eta_mae_{name}_verdict"] = "PASS" if mae < base_mae else "FAIL"
    return out


def _fleet(n: int, now: float) -> tuple[list[VehicleView], list[TripUpdateView]]:
    vehicles, updates = [], []
    for i in range(n):
        plan = sample_plan(now - 300, trip_id=f"T{i}", route_id=f"R{i % 3}", stop_every=1)
        stop = plan.stops[i % 3]
        vid = f"bus-{i:03d}"
        vehicles.append(
            VehicleView(vid, f"KT {i:04d}", stop.lat, stop.lon, now - 3, 20.0, 90.0, plan, i % 3)
        )
        etas = [
            StopEta(
                s.stop_id, s.stop_sequence, s.arrival + 60, s.departure + 60, s.arrival, s.departure
            )
            for s in plan.stops[-10:]
        ]
        updates.append(TripUpdateView(plan, now - 3, etas, vid))
    return vehicles, updates


def feed_build(vehicles: int = 500, rounds: int = 40) -> dict[str, Any]:
    """Each feed built and serialised `rounds` times; p50 and p99 per feed."""
    now = START + 1200
    vs, us = _fleet(vehicles, now)
    builds = {
        "vehicle_positions": lambda: gtfsrt.to_bytes(gtfsrt.vehicle_positions(vs, now)),
        "trip_updates": lambda: gtfsrt.to_bytes(gtfsrt.trip_updates(us, now)),
    }
    out: dict[str, Any] = {"gtfsrt_vehicles": vehicles}
    ok = True
    for name, build in builds.items():
        samples = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            size = len(build())
            samples.append((time.perf_counter() - t0) * 1000)
        p50, p99 = statistics.median(samples), _pct(samples, 0.99)
        # The verdict is on the median: p99 on this shared 2-core box mostly measures
        # the other processes; it is printed beside it for the record.
        ok = ok and p50 < BUILD_TARGET_MS
        out[f"gtfsrt_{name}_bytes"] = size
        out[f"gtfsrt_{name}_500_ms_p50"] = round(p50, 2)
        out[f"gtfsrt_{name}_500_ms_p99"] = round(p99, 2)
    out["gtfsrt_build_target"] = f"p50 < {BUILD_TARGET_MS:.0f} ms per feed"
    out["gtfsrt_build_verdict"] = "PASS" if ok else "FAIL"
    return out


def tracker_rate(vehicles: int = 200, every_s: float = 5.0) -> dict[str, Any]:
    fixes: list[tuple[VehicleTracker, Fix]] = []
    for i in range(vehicles):
        plan = sample_plan(START + 60 * (i % 20), trip_id=f"T{i}")
        run = ShuttleRun(plan, traffic=seeded_traffic(i, len(plan.stops) - 1))
        tracker = VehicleTracker(f"bus-{i}")
        tracker.set_trip(plan)
        t = run.t0
        while t <= run.end:
            s = run.sample(t)
            fixes.append((tracker, Fix(t, s.lat, s.lon, s.speed_kmh, 0.9, 1)))
            t += every_s
    fixes.sort(key=lambda p: p[1].ts)  # interleaved as they would arrive
    t0 = time.perf_counter()
    for tracker, fix in fixes:
        tracker.feed(fix)
    rate = len(fixes) / (time.perf_counter() - t0)
    return {
        "tracker_positions": len(fixes),
        "tracker_positions_per_s": round(rate),
        "tracker_positions_target": f">= {POSITIONS_TARGET:,.0f}/s",
        "tracker_positions_verdict": "PASS" if rate >= POSITIONS_TARGET else "FAIL",
    }


def run(with_servers: bool = True) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    figures.update(eta_errors())
    figures.update(feed_build())
    figures.update(tracker_rate())
    if with_servers:
        from bench import transport_e2e

        figures.update(transport_e2e.run())
    verdicts = [v for k, v in figures.items() if k.endswith("verdict")]
    figures["verdict"] = "PASS" if all(v == "PASS" for v in verdicts) else "FAIL"
    return figures


if __name__ == "__main__":
    result = run(with_servers="--no-servers" not in sys.argv)
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["verdict"] == "PASS" else 1)
