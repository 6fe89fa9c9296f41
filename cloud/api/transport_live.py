"""Live transport routes: the dispatcher's live vehicles and their SSE stream, trip
assignments, cancellations and service alerts; the public departures boards and the
GTFS-Realtime feeds (protobuf, or `?format=json`).

The logic is in cloud/transport/live.py, departures.py and dispatch.py; the JSON is
described in docs/transport.md. Public routes carry no personal data.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import StreamingResponse
from google.transit import gtfs_realtime_pb2 as rt

from cloud.api.scoping import scoped
from cloud.api_types import Problem
from cloud.deps import DbDep, EngineDep, SettingsDep, TransportLiveDep
from cloud.transport import departures, dispatch, gtfsrt
from cloud.transport.live import LiveService
from cloud.transport.schemas_live import (
    AlertCreate,
    AlertPublic,
    AssignmentCreate,
    AssignmentPublic,
    CancellationCreate,
    CancellationPublic,
    Departures,
    GtfsId,
    LiveVehicle,
    LiveVehicles,
    ServiceDate,
)
from cloud.transport.seat_facts import capacity_rule

# Office transport is one service for every agency and site: dispatchers and facility
# managers run it (admins too, through `scoped`).
DISPATCHERS = [scoped("facility_manager", "dispatcher")]
router = APIRouter(prefix="/transport", tags=["transport live"])
public = APIRouter(prefix="/transport", tags=["transport live (public)"])

_404: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "not found"}}
COALESCE_S = 0.2
KEEPALIVE_S = 15.0
PROTOBUF = "application/x-protobuf"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@router.get("/live", response_model=LiveVehicles, dependencies=DISPATCHERS)
async def live_vehicles(live: TransportLiveDep) -> LiveVehicles:
    return LiveVehicles(
        vehicles=live.live(time.time()),
        generated_at=_now(),
        processed=live.processed,
        rejected=dict(sorted(live.rejects.items())),
    )


async def _stream(live: LiveService) -> AsyncIterator[str]:
    with live.hub.subscribe(None, ()) as subscription:
        yield ": subscribed\n\n"
        while True:
            batch = await subscription.next(coalesce_s=COALESCE_S, idle_s=KEEPALIVE_S)
            if batch is None:
                return
            if batch.idle:
                yield ": keep-alive\n\n"
                continue
            if batch.resync:
                yield "event: resync\ndata: {}\n\n"
                continue
            now = time.time()
            rows = [
                live.live_vehicle(live.vehicles[v], now)
                for v in sorted(batch.desks)
                if v in live.vehicles
            ]
            if rows:
                body = LiveVehicles(vehicles=rows, generated_at=_now())
                yield f"event: vehicles\ndata: {body.model_dump_json()}\n\n"


@router.get(
    "/live/stream",
    dependencies=DISPATCHERS,
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-sent events: `event: vehicles` with data = LiveVehicles "
            "JSON (the vehicles that moved), `event: resync` (reload /transport/live), and "
            "`: keep-alive` comments every 15 s.",
            "content": {"text/event-stream": {"schema": LiveVehicle.model_json_schema()}},
        }
    },
)
async def live_stream(live: TransportLiveDep) -> StreamingResponse:
    return StreamingResponse(
        _stream(live),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# --- dispatcher: assignments, cancellations, alerts ---------------------------------------


@router.get("/assignments", response_model=list[AssignmentPublic], dependencies=DISPATCHERS)
async def list_assignments(
    conn: DbDep, service_date: Annotated[ServiceDate | None, Query()] = None
) -> list[AssignmentPublic]:
    return await dispatch.assignments(conn, service_date)


@router.post(
    "/assignments",
    response_model=AssignmentPublic,
    status_code=201,
    dependencies=DISPATCHERS,
    responses=_404,
)
async def create_assignment(
    body: AssignmentCreate, engine: EngineDep, live: TransportLiveDep, settings: SettingsDep
) -> AssignmentPublic:
    async with engine.begin() as conn:
        out = await dispatch.assign(conn, body, capacity_rule(settings))
    await live.refresh()
    tracker = live.trackers.get(body.vehicle)
    if tracker is not None and tracker.trip is not None:
        if (tracker.trip.trip_id, tracker.trip.service_date) != (body.trip_id, body.service_date):
            tracker.set_trip(None)  # the dispatcher knows better than the matcher
    return out


@router.delete(
    "/assignments/{trip_id}/{service_date}",
    status_code=204,
    dependencies=DISPATCHERS,
    responses=_404,
)
async def delete_assignment(
    trip_id: GtfsId,
    service_date: ServiceDate,
    engine: EngineDep,
    live: TransportLiveDep,
    settings: SettingsDep,
) -> Response:
    async with engine.begin() as conn:
        await dispatch.unassign(conn, trip_id, service_date, capacity_rule(settings))
    await live.refresh()
    return Response(status_code=204)


@router.get("/cancellations", response_model=list[CancellationPublic], dependencies=DISPATCHERS)
async def list_cancellations(conn: DbDep) -> list[CancellationPublic]:
    return await dispatch.cancellations(conn)


@router.post(
    "/cancellations",
    response_model=CancellationPublic,
    status_code=201,
    dependencies=DISPATCHERS,
    responses=_404,
)
async def create_cancellation(
    body: CancellationCreate, engine: EngineDep, live: TransportLiveDep
) -> CancellationPublic:
    async with engine.begin() as conn:
        out = await dispatch.cancel(conn, body)
    await live.refresh()
    return out


@router.delete(
    "/cancellations/{trip_id}/{service_date}",
    status_code=204,
    dependencies=DISPATCHERS,
    responses=_404,
)
async def delete_cancellation(
    trip_id: GtfsId, service_date: ServiceDate, engine: EngineDep, live: TransportLiveDep
) -> Response:
    async with engine.begin() as conn:
        await dispatch.uncancel(conn, trip_id, service_date)
    await live.refresh()
    return Response(status_code=204)


@router.get("/alerts", response_model=list[AlertPublic], dependencies=DISPATCHERS)
async def list_alerts(conn: DbDep) -> list[AlertPublic]:
    return await dispatch.alerts(conn)


@router.post(
    "/alerts",
    response_model=AlertPublic,
    status_code=201,
    dependencies=DISPATCHERS,
    responses={422: {"model": Problem, "description": "ends_at not after starts_at"}},
)
async def create_alert(body: AlertCreate, engine: EngineDep, live: TransportLiveDep) -> AlertPublic:
    async with engine.begin() as conn:
        out = await dispatch.create_alert(conn, body)
    await live.refresh()
    return out


@router.delete("/alerts/{alert_id}", status_code=204, dependencies=DISPATCHERS, responses=_404)
async def delete_alert(
    alert_id: Annotated[str, Path(max_length=36)],
    engine: EngineDep,
    live: TransportLiveDep,
) -> Response:
    async with engine.begin() as conn:
        await dispatch.delete_alert(conn, alert_id)
    await live.refresh()
    return Response(status_code=204)


# --- public: departures and GTFS-Realtime ---------------------------------------------------


@public.get("/departures", response_model=Departures, responses=_404)
async def stop_departures(
    conn: DbDep,
    live: TransportLiveDep,
    stop: Annotated[GtfsId, Query(description="GTFS stop_id")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Departures:
    return await departures.board(conn, live, stop, limit, time.time())


Format = Annotated[Literal["protobuf", "json"], Query(description="json for debugging")]


def _feed(msg: rt.FeedMessage, fmt: str) -> Response:
    if fmt == "json":
        return Response(
            content=_json(msg), media_type="application/json", headers={"Cache-Control": "no-cache"}
        )
    return Response(
        content=msg.SerializeToString(), media_type=PROTOBUF, headers={"Cache-Control": "no-cache"}
    )


def _json(msg: rt.FeedMessage) -> bytes:
    return orjson.dumps(gtfsrt.to_json(msg))


_FEED_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A GTFS-Realtime FeedMessage (FULL_DATASET), protobuf or JSON.",
        "content": {PROTOBUF: {}, "application/json": {}},
    }
}


@public.get("/gtfs-rt/vehicle-positions", response_class=Response, responses=_FEED_RESPONSES)
async def gtfs_rt_vehicle_positions(
    live: TransportLiveDep, format: Format = "protobuf"
) -> Response:
    return _feed(live.vehicle_positions(time.time()), format)


@public.get("/gtfs-rt/trip-updates", response_class=Response, responses=_FEED_RESPONSES)
async def gtfs_rt_trip_updates(live: TransportLiveDep, format: Format = "protobuf") -> Response:
    return _feed(live.trip_updates(time.time()), format)


@public.get("/gtfs-rt/alerts", response_class=Response, responses=_FEED_RESPONSES)
async def gtfs_rt_alerts(live: TransportLiveDep, format: Format = "protobuf") -> Response:
    return _feed(live.alerts_feed(time.time()), format)
