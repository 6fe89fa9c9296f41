"""GTFS-Realtime feeds (VehiclePositions, TripUpdates, ServiceAlerts) from plain views of
the live state, as protobuf bytes or JSON.

Each feed is a full snapshot (incrementality FULL_DATASET) with a header timestamp never
older than any entity's. Entity ids are stable across builds so consumers can diff:
`vehicle:<vehicle>`, `trip:<trip_id>:<service_date>`, `alert:<id>`. Trip descriptors carry
the GTFS service day and the first departure in GTFS local time (hours may pass 24).
Pure and database-free; `cloud.transport.live` builds the views.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from google.protobuf import json_format
from google.transit import gtfs_realtime_pb2 as rt

from cloud.transport.eta import StopEta
from cloud.transport.plan import TripPlan

GTFS_RT_VERSION = "2.0"
AGENCY_TZ = "Asia/Makassar"  # WITA, the GTFS agency_timezone of the IKN shuttles

StopStatus = Literal["INCOMING_AT", "STOPPED_AT", "IN_TRANSIT_TO"]

_SCHEDULED_STOP = rt.TripUpdate.StopTimeUpdate.SCHEDULED
CAUSES = tuple(rt.Alert.Cause.keys())
EFFECTS = tuple(rt.Alert.Effect.keys())


@dataclass(frozen=True, slots=True)
class VehicleView:
    vehicle_id: str
    label: str
    lat: float
    lon: float
    ts: float
    speed_kmh: float | None = None
    bearing_deg: float | None = None
    trip: TripPlan | None = None
    stop_index: int | None = None  # the stop `status` refers to
    status: StopStatus = "IN_TRANSIT_TO"
    occupancy_pct: int | None = None


@dataclass(frozen=True, slots=True)
class TripUpdateView:
    plan: TripPlan
    ts: float
    etas: Sequence[StopEta] = ()
    vehicle_id: str | None = None
    canceled: bool = False


@dataclass(frozen=True, slots=True)
class AlertView:
    alert_id: str
    header: Mapping[str, str]  # language -> text ("id" first, then "en")
    description: Mapping[str, str] = field(default_factory=dict)
    cause: str = "UNKNOWN_CAUSE"
    effect: str = "UNKNOWN_EFFECT"
    start: float | None = None
    end: float | None = None
    route_ids: Sequence[str] = ()
    stop_ids: Sequence[str] = ()
    trip_ids: Sequence[str] = ()
    agency_id: str | None = None


@functools.lru_cache(maxsize=64)
def _service_day_base(service_date: str, tz: str) -> float:
    """Noon minus 12 h of the service day in the agency's zone, the origin of GTFS times."""
    day = dt.date(int(service_date[:4]), int(service_date[4:6]), int(service_date[6:]))
    noon = dt.datetime.combine(day, dt.time(12), ZoneInfo(tz))
    return (noon - dt.timedelta(hours=12)).timestamp()


def local_start_time(plan: TripPlan, tz: str = AGENCY_TZ) -> str:
    """The trip's first departure as GTFS HH:MM:SS from noon minus 12 h of its service day."""
    secs = round(plan.start - _service_day_base(plan.service_date, tz))
    return f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"


def _header(msg: rt.FeedMessage, now: float) -> None:
    msg.header.gtfs_realtime_version = GTFS_RT_VERSION
    msg.header.incrementality = rt.FeedHeader.FULL_DATASET
    msg.header.timestamp = int(now)


def _trip(plan: TripPlan, tz: str) -> rt.TripDescriptor:
    return rt.TripDescriptor(
        trip_id=plan.trip_id,
        route_id=plan.route_id,
        direction_id=plan.direction_id,
        start_date=plan.service_date,
        start_time=local_start_time(plan, tz),
        # Said explicitly (best practice), though SCHEDULED is the default.
        schedule_relationship=rt.TripDescriptor.SCHEDULED,
    )


_STATUS = {
    name: rt.VehiclePosition.VehicleStopStatus.Value(name)
    for name in ("INCOMING_AT", "STOPPED_AT", "IN_TRANSIT_TO")
}


def vehicle_positions(
    vehicles: Iterable[VehicleView], now: float, tz: str = AGENCY_TZ
) -> rt.FeedMessage:
    msg = rt.FeedMessage()
    newest = now
    add = msg.entity.add
    for v in sorted(vehicles, key=lambda v: v.vehicle_id):
        pos = rt.Position(latitude=v.lat, longitude=v.lon)
        if v.bearing_deg is not None:
            pos.bearing = v.bearing_deg
        if v.speed_kmh is not None:
            pos.speed = v.speed_kmh / 3.6
        vp = rt.VehiclePosition(
            vehicle=rt.VehicleDescriptor(id=v.vehicle_id, label=v.label),
            position=pos,
            timestamp=int(v.ts),
        )
        newest = max(newest, v.ts)
        if v.trip is not None:
            vp.trip.CopyFrom(_trip(v.trip, tz))
            if v.stop_index is not None and 0 <= v.stop_index < len(v.trip.stops):
                stop = v.trip.stops[v.stop_index]
                vp.current_stop_sequence = stop.stop_sequence
                vp.stop_id = stop.stop_id
                vp.current_status = _STATUS[v.status]
        if v.occupancy_pct is not None:
            vp.occupancy_percentage = max(0, v.occupancy_pct)
        add(id=f"vehicle:{v.vehicle_id}", vehicle=vp)
    _header(msg, newest)
    return msg


def trip_updates(
    updates: Iterable[TripUpdateView], now: float, tz: str = AGENCY_TZ
) -> rt.FeedMessage:
    msg = rt.FeedMessage()
    newest = now
    for u in sorted(updates, key=lambda u: (u.plan.trip_id, u.plan.service_date)):
        if not u.canceled and not u.etas:
            continue  # a trip update must say something about a stop, or cancel the trip
        ent = msg.entity.add(
            id=f"trip:{u.plan.trip_id}:{u.plan.service_date}",
            trip_update=rt.TripUpdate(trip=_trip(u.plan, tz), timestamp=int(u.ts)),
        )
        tu = ent.trip_update
        newest = max(newest, u.ts)
        if u.vehicle_id:
            tu.vehicle.id = u.vehicle_id
        if u.canceled:
            tu.trip.schedule_relationship = rt.TripDescriptor.CANCELED
            continue
        floor = 0  # predicted times never go back along the trip
        add = tu.stop_time_update.add
        for e in u.etas:
            arr = max(floor, round(e.arrival))
            dep = max(arr, round(e.departure))
            stu = add(
                stop_sequence=e.stop_sequence,
                stop_id=e.stop_id,
                schedule_relationship=_SCHEDULED_STOP,
            )
            ev = stu.arrival
            ev.time, ev.delay = arr, arr - round(e.scheduled_arrival)
            ev = stu.departure
            ev.time, ev.delay = dep, dep - round(e.scheduled_departure)
            floor = dep
        tu.delay = tu.stop_time_update[0].arrival.delay
    _header(msg, newest)
    return msg


def alerts(items: Iterable[AlertView], now: float) -> rt.FeedMessage:
    msg = rt.FeedMessage()
    for a in sorted(items, key=lambda a: a.alert_id):
        ent = msg.entity.add()
        ent.id = f"alert:{a.alert_id}"
        al = ent.alert
        if a.start is not None or a.end is not None:
            period = al.active_period.add()
            # Unsigned POSIX seconds: a time before 1970 cannot be said, so it is not.
            if a.start is not None and a.start > 0:
                period.start = int(a.start)
            if a.end is not None and a.end > 0:
                period.end = int(a.end)
        for route in a.route_ids:
            al.informed_entity.add().route_id = route
        for stop in a.stop_ids:
            al.informed_entity.add().stop_id = stop
        for trip in a.trip_ids:
            al.informed_entity.add().trip.trip_id = trip
        if not len(al.informed_entity) and a.agency_id:
            al.informed_entity.add().agency_id = a.agency_id
        al.cause = rt.Alert.Cause.Value(a.cause)
        al.effect = rt.Alert.Effect.Value(a.effect)
        for lang, text in a.header.items():
            tr = al.header_text.translation.add()
            tr.text, tr.language = text, lang
        for lang, text in a.description.items():
            tr = al.description_text.translation.add()
            tr.text, tr.language = text, lang
    _header(msg, now)
    return msg


def to_bytes(msg: rt.FeedMessage) -> bytes:
    data: bytes = msg.SerializeToString()
    return data


def to_json(msg: rt.FeedMessage) -> dict[str, Any]:
    """The same feed as JSON for debugging (proto field names, 64-bit numbers as strings)."""
    out: dict[str, Any] = json_format.MessageToDict(msg, preserving_proto_field_name=True)
    return out
