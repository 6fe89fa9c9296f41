"""GTFS-Realtime feeds: structure, stable ids, cancelled trips, JSON rendering, and an
independent validator (gtfs-rt-validator, MobilityData's rules) reporting no errors."""

from __future__ import annotations

from pathlib import Path

from google.transit import gtfs_realtime_pb2 as rt

from cloud.transport import gtfsrt
from cloud.transport.eta import SegmentTimes, predict_for
from cloud.transport.gtfsrt import AlertView, TripUpdateView, VehicleView
from cloud.transport.tracking import VehicleTracker
from simulators.shuttle import ShuttleRun, sample_plan, seeded_traffic
from tests.cloud.transport.rt_validation import validate_feeds, write_gtfs_zip
from tests.cloud.transport.tracking_helpers import START, fixes

PLAN = sample_plan(START)
RETURN = sample_plan(START + 2400, trip_id="T2", reverse=True)
CANCELED = sample_plan(START + 4800, trip_id="T3")


def live_views(now: float) -> tuple[list[VehicleView], list[TripUpdateView]]:
    run = ShuttleRun(PLAN, traffic=seeded_traffic(3, len(PLAN.stops) - 1))
    tracker = VehicleTracker("bus-1")
    tracker.set_trip(PLAN)
    for fix in fixes(run, until=now):
        tracker.feed(fix)
    assert tracker.last is not None and tracker.last.lat is not None
    assert tracker.last.lon is not None
    n = tracker.next_stop_index()
    vehicle = VehicleView(
        "bus-1",
        "KT 1234 AB",
        tracker.last.lat,
        tracker.last.lon,
        tracker.last.ts,
        tracker.last.speed_kmh,
        tracker.last.heading_deg,
        PLAN,
        n,
        "IN_TRANSIT_TO",
        40,
    )
    idle = VehicleView("car-7", "KT 77 RI", -0.9301, 116.6651, now - 20)
    etas = predict_for(tracker, SegmentTimes(), now)
    updates = [
        TripUpdateView(PLAN, tracker.last.ts, etas, "bus-1"),
        TripUpdateView(CANCELED, now - 300, canceled=True),
    ]
    return [vehicle, idle], updates


def test_feeds_have_a_full_dataset_header_and_stable_entity_ids() -> None:
    now = START + 600
    vehicles, updates = live_views(now)
    vp = gtfsrt.vehicle_positions(vehicles, now)
    tu = gtfsrt.trip_updates(updates, now)
    for msg in (vp, tu):
        assert msg.header.gtfs_realtime_version == "2.0"
        assert msg.header.incrementality == rt.FeedHeader.FULL_DATASET
        assert msg.header.timestamp == int(now)
    assert [e.id for e in vp.entity] == ["vehicle:bus-1", "vehicle:car-7"]
    assert [e.id for e in tu.entity] == ["trip:T1:20240819", "trip:T3:20240819"]
    bus = vp.entity[0].vehicle
    assert bus.trip.trip_id == "T1" and bus.trip.start_date == "20240819"
    assert bus.trip.start_time == "10:00:00"  # 02:00 UTC is 10:00 WITA
    assert bus.occupancy_percentage == 40
    assert not vp.entity[1].vehicle.HasField("trip")  # a pool car on no trip
    # The same state builds the same bytes.
    assert gtfsrt.to_bytes(vp) == gtfsrt.to_bytes(gtfsrt.vehicle_positions(vehicles, now))


def test_trip_update_times_increase_and_delays_match_the_schedule() -> None:
    now = START + 600
    _, updates = live_views(now)
    tu = gtfsrt.trip_updates(updates, now)
    live, canceled = tu.entity[0].trip_update, tu.entity[1].trip_update
    times = [t for u in live.stop_time_update for t in (u.arrival.time, u.departure.time)]
    assert times == sorted(times) and times
    by_seq = {s.stop_sequence: s for s in PLAN.stops}
    for u in live.stop_time_update:
        assert u.arrival.delay == u.arrival.time - round(by_seq[u.stop_sequence].arrival)
    assert canceled.trip.schedule_relationship == rt.TripDescriptor.CANCELED
    assert not canceled.stop_time_update


def test_json_rendering_is_the_same_feed() -> None:
    now = START + 600
    _, updates = live_views(now)
    tu = gtfsrt.trip_updates(updates, now)
    data = gtfsrt.to_json(tu)
    assert data["header"]["incrementality"] == "FULL_DATASET"
    assert [e["id"] for e in data["entity"]] == [e.id for e in tu.entity]
    first = data["entity"][0]["trip_update"]["stop_time_update"][0]
    assert (
        int(first["arrival"]["time"]) == tu.entity[0].trip_update.stop_time_update[0].arrival.time
    )


def test_independent_validator_reports_no_errors(tmp_path: Path) -> None:
    now = START + 600
    vehicles, updates = live_views(now)
    alert = AlertView(
        "A1",
        {"id": "Halte S4 ditutup sementara", "en": "Stop S4 temporarily closed"},
        {"id": "Gunakan halte S6.", "en": "Use stop S6."},
        cause="CONSTRUCTION",
        effect="STOP_MOVED",
        start=now - 600,
        end=now + 3600,
        stop_ids=["S4"],
    )
    gtfs_zip = write_gtfs_zip([PLAN, RETURN, CANCELED], tmp_path / "gtfs.zip")
    feeds = {
        "tu": gtfsrt.to_bytes(gtfsrt.trip_updates(updates, now)),
        "vp": gtfsrt.to_bytes(gtfsrt.vehicle_positions(vehicles, now)),
        "sa": gtfsrt.to_bytes(gtfsrt.alerts([alert], now)),
    }
    report = validate_feeds(gtfs_zip, feeds, tmp_path, at=now + 5)
    assert report["messages"] == 3
    assert len(report["rules_run"]) > 100
    assert report["errors"] == [], report["errors"]
    assert report["system_errors"].get("notices", []) == []


def test_the_validator_does_catch_a_broken_feed(tmp_path: Path) -> None:
    """Guards the check above: a trip unknown to the schedule and times going backwards
    must be reported, or a clean report would mean nothing."""
    now = START + 600
    _, updates = live_views(now)
    msg = gtfsrt.trip_updates(updates, now)
    stus = msg.entity[0].trip_update.stop_time_update
    stus[1].arrival.time = stus[0].arrival.time - 600
    msg.entity[1].trip_update.trip.trip_id = "NOPE"
    gtfs_zip = write_gtfs_zip([PLAN, RETURN, CANCELED], tmp_path / "gtfs.zip")
    report = validate_feeds(gtfs_zip, {"tu": gtfsrt.to_bytes(msg)}, tmp_path, at=now + 5)
    codes = {n["code"] for n in report["errors"]}
    assert {"E003", "E022"} <= codes, codes
