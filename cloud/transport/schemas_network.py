"""Schemas of the network read the maps draw (cloud/transport/network.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class NetworkRoute(BaseModel):
    id: str
    short_name: str
    long_name: str
    color: str | None = Field(description="GTFS route_color, six hex digits without '#'")
    text_color: str | None


class NetworkStop(BaseModel):
    id: str
    name: str
    lat: float
    lon: float


class NetworkShape(BaseModel):
    id: str = Field(description="GTFS shape_id, or stops:<trip_id> for a trip without a shape")
    route_id: str
    points: list[tuple[float, float]] = Field(description="[lat, lon] in order along the shape")


class Network(BaseModel):
    routes: list[NetworkRoute]
    stops: list[NetworkStop]
    shapes: list[NetworkShape]
