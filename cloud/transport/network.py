"""The network as the maps draw it: routes with their colours, stops and the shapes the
day's trips follow, in one read.

The dispatcher's live map and the rider's "my shuttle" page draw this as SVG
(no map tiles: the building is air-gapped). A shape is listed once, under the
route of the trips that use it; a trip without a shape gets the line through its
stops, as cloud.transport.schedule does for its TripPlans.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import (
    TRANSPORT_ROUTES as ROUTES,
)
from cloud.db.tables import (
    TRANSPORT_SHAPES as SHAPES,
)
from cloud.db.tables import (
    TRANSPORT_STOP_TIMES as STOP_TIMES,
)
from cloud.db.tables import (
    TRANSPORT_STOPS as STOPS,
)
from cloud.db.tables import (
    TRANSPORT_TRIPS as TRIPS,
)
from cloud.transport.schemas_network import Network, NetworkRoute, NetworkShape, NetworkStop


async def network(conn: AsyncConnection) -> Network:
    """Routes, boarding stops and one line per distinct shape (or stop sequence)."""
    routes = [
        NetworkRoute(
            id=r.route_id,
            short_name=r.short_name or r.route_id,
            long_name=r.long_name or "",
            color=r.color,
            text_color=r.text_color,
        )
        for r in await conn.execute(select(ROUTES).order_by(ROUTES.c.sort_order, ROUTES.c.route_id))
    ]
    stops = {
        s.stop_id: NetworkStop(id=s.stop_id, name=s.name, lat=s.lat, lon=s.lon)
        for s in await conn.execute(
            select(STOPS).where(STOPS.c.location_type == 0).order_by(STOPS.c.stop_id)
        )
    }
    # Which route each shape belongs to: the first trip (by id) that uses it.
    route_of: dict[str, str] = {}
    shapeless: dict[str, str] = {}  # route -> a trip of it without a shape
    for trip in await conn.execute(
        select(TRIPS.c.trip_id, TRIPS.c.route_id, TRIPS.c.shape_id).order_by(TRIPS.c.trip_id)
    ):
        if trip.shape_id:
            route_of.setdefault(trip.shape_id, trip.route_id)
        else:
            shapeless.setdefault(trip.route_id, trip.trip_id)
    points: dict[str, list[tuple[float, float]]] = defaultdict(list)
    if route_of:
        for v in await conn.execute(
            select(SHAPES.c.shape_id, SHAPES.c.lat, SHAPES.c.lon)
            .where(SHAPES.c.shape_id.in_(sorted(route_of)))
            .order_by(SHAPES.c.shape_id, SHAPES.c.sequence)
        ):
            points[v.shape_id].append((v.lat, v.lon))
    shapes = [
        NetworkShape(id=shape, route_id=route, points=points[shape])
        for shape, route in sorted(route_of.items())
        if points[shape]
    ]
    for route, trip_id in sorted(shapeless.items()):
        calls = await conn.execute(
            select(STOP_TIMES.c.stop_id)
            .where(STOP_TIMES.c.trip_id == trip_id)
            .order_by(STOP_TIMES.c.stop_sequence)
        )
        line = [(stops[c.stop_id].lat, stops[c.stop_id].lon) for c in calls if c.stop_id in stops]
        if line:
            shapes.append(NetworkShape(id=f"stops:{trip_id}", route_id=route, points=line))
    return Network(routes=routes, stops=list(stops.values()), shapes=shapes)
