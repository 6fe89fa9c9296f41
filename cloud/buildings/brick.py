"""A site's building model as Brick Schema (1.3) RDF/Turtle, for building analytics tools.

Built from the layout tables (site, buildings, floors, zones, rooms, desks), the
door and vehicle tables and the nodes' desired configs (radars, BLE scanners):

- places: brick:Site > brick:Building > brick:Floor > brick:Open_Office (a Ruang zone)
  > brick:Conference_Room (a meeting room) and ruang:Desk (a brick:Space), linked by
  brick:hasPart / brick:isPartOf;
- equipment: the edge node (brick:Gateway), desk units and radars
  (brick:Occupancy_Sensor_Equipment), BLE scanners (brick:Sensor_Equipment), door
  readers (brick:Access_Reader), a vehicle (ruang:Vehicle) and its GPS receiver,
  placed with brick:hasLocation / brick:isLocationOf and feeding (brick:feeds) the
  node that publishes their data;
- points (brick:hasPoint / brick:isPointOf), each with a ref:TimeseriesReference whose
  ref:hasTimeseriesId is the time-series store's series as the telemetry sink writes it
  (cloud/telemetry/lineprotocol.py): `measurement,tag=value,... field`, the head of the
  line-protocol line up to its field key (tags that identify the thing only: the node
  tag is left out, a desk keeps its series when it moves to another node).

Nothing personal goes out: no names of people, no badge ids, no assigned persons.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.buildings.turtle import Document, Entity, literal
from cloud.db.tables import (
    ACCESS_DOORS,
    BUILDINGS,
    DESKS,
    FLOORS,
    NODE_CONFIGS,
    ROOMS,
    SITES,
    TRANSPORT_VEHICLES,
    ZONES,
)
from cloud.errors import NotFound
from cloud.telemetry.lineprotocol import escape_tag

BRICK_VERSION = "1.3"
MEDIA_TYPE = "text/turtle"
# Classes Brick 1.3 has no word for, declared in the export as subclasses of Brick's.
_RUANG_CLASSES = (
    ("ruang:Desk", "brick:Space", "Desk", "One desk people book or walk up to."),
    ("ruang:Vehicle", "brick:Equipment", "Vehicle", "A shuttle or pool car with an edge node."),
)
# The Brick 1.3 class of each place, with the REC class Brick 1.4 moved it to (readers of
# either version find it without a reasoner).
SITE = ["brick:Site", "rec:Site"]
BUILDING = ["brick:Building", "rec:Building"]
FLOOR = ["brick:Floor", "rec:Level"]
ZONE = ["brick:Open_Office", "rec:OfficeLandscape"]
ROOM = ["brick:Conference_Room", "rec:ConferenceRoom"]
DESK = ["ruang:Desk", "brick:Space", "rec:Space"]
OCCUPANCY_EQUIPMENT = ["brick:Occupancy_Sensor_Equipment"]
# Inverse of every relationship the export writes, written too so that a reader
# without a reasoner can walk the model both ways.
_INVERSE = {
    "brick:hasPart": "brick:isPartOf",
    "brick:hasLocation": "brick:isLocationOf",
    "brick:hasPoint": "brick:isPointOf",
    "brick:feeds": "brick:isFedBy",
}


def series_id(measurement: str, field: str, **tags: str) -> str:
    """The time-series id of one field: `measurement,tag=value,... field` (tags escaped
    as in line protocol, in the order given)."""
    head = ",".join([measurement, *(f"{k}={escape_tag(v)}" for k, v in tags.items())])
    return f"{head} {field}"


class _Model:
    """The document being built plus the site's places by id.

    Keys are `word.id`, the id last and the word (`desk`, `deskunit-presence`...) without a
    dot, so no two things get one key whatever dots their ids hold.
    """

    def __init__(self, site_id: str, stored_at: str) -> None:
        self.doc = Document(f"urn:ruang:{quote(site_id, safe='-._')}/")
        self.stored_at = stored_at
        self.nodes: set[str] = set()
        self.doc.header = [
            f"{cls} a owl:Class ;\n    rdfs:subClassOf {parent} ;\n"
            f"    rdfs:label {literal(label)} ;\n    skos:definition {literal(text)} .\n"
            for cls, parent, label, text in _RUANG_CLASSES
        ]

    def relate(self, subject: Entity, predicate: str, target: Entity) -> None:
        subject.link(predicate, target.key)
        target.link(_INVERSE[predicate], subject.key)

    def point(self, owner: Entity, key: str, cls: str, label: str, ts: str) -> Entity:
        point = self.doc.add(key, [cls], label)
        if not point.extra:
            point.extra.append(
                (
                    "ref:hasExternalReference",
                    "[ a ref:TimeseriesReference ;\n"
                    f"        ref:hasTimeseriesId {literal(ts)} ;\n"
                    f"        ref:storedAt {literal(self.stored_at)} ]",
                )
            )
        self.relate(owner, "brick:hasPoint", point)
        return point

    def node(self, node_id: str) -> Entity:
        key = f"node.{node_id}"
        if key in self.doc:
            return self.doc.entities[key]
        self.nodes.add(node_id)
        node = self.doc.add(key, ["brick:Gateway"], f"Edge node {node_id}")
        self.point(
            node, f"node-online.{node_id}", "brick:On_Off_Status", f"Node {node_id} online",
            series_id("node_state", "online", node=node_id),
        )  # fmt: skip
        self.point(
            node, f"node-uptime.{node_id}", "brick:Run_Time_Sensor", f"Node {node_id} uptime",
            series_id("node_health", "uptime_s", node=node_id),
        )  # fmt: skip
        return node


def _rows(result: Any) -> list[Mapping[str, Any]]:
    return [row._mapping for row in result]


async def _select(conn: AsyncConnection, table: Any, column: Any, values: Iterable[Any]) -> Any:
    wanted = list(values)
    if not wanted:
        return []
    return _rows(
        await conn.execute(
            select(table).where(column.in_(wanted)).order_by(*table.primary_key.columns)
        )
    )


def _entries(config: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """A list of dict entries of a node's desired config, whatever else the key holds."""
    value = config.get(key)
    if key == "ble":
        value = value.get("scanners") if isinstance(value, Mapping) else None
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [entry for entry in value if isinstance(entry, Mapping)]


def _text(entry: Mapping[str, Any], key: str) -> str | None:
    value = entry.get(key)
    return value if isinstance(value, str) and value else None


async def site_brick(conn: AsyncConnection, site_id: str, *, bucket: str) -> str:
    """The site's building model as Turtle; NotFound for an unknown site.

    `bucket` is the time-series store's bucket (RUANG_INFLUX_BUCKET), named in every
    reference's ref:storedAt.
    """
    site_row = (await conn.execute(select(SITES).where(SITES.c.id == site_id))).first()
    if site_row is None:
        raise NotFound(f"site {site_id!r} is unknown", title="Site not found")
    m = _Model(site_id, f"influxdb bucket {bucket}")
    doc = m.doc
    site = doc.add(f"site.{site_id}", SITE, site_row.name)

    buildings = _rows(
        await conn.execute(
            select(BUILDINGS).where(BUILDINGS.c.site_id == site_id).order_by(BUILDINGS.c.id)
        )
    )
    floors = await _select(conn, FLOORS, FLOORS.c.building_id, [b["id"] for b in buildings])
    zones = await _select(conn, ZONES, ZONES.c.floor_id, [f["id"] for f in floors])
    rooms = await _select(conn, ROOMS, ROOMS.c.zone_id, [z["id"] for z in zones])
    desks = await _select(conn, DESKS, DESKS.c.floor_id, [f["id"] for f in floors])

    for b in buildings:
        m.relate(site, "brick:hasPart", doc.add(f"building.{b['id']}", BUILDING, b["name"]))
    for f in floors:
        floor = doc.add(f"floor.{f['id']}", FLOOR, f["name"])
        m.relate(doc.entities[f"building.{f['building_id']}"], "brick:hasPart", floor)
    for z in zones:
        zone = doc.add(f"zone.{z['id']}", ZONE, z["name"])
        m.relate(doc.entities[f"floor.{z['floor_id']}"], "brick:hasPart", zone)
    zone_floor = {z["id"]: z["floor_id"] for z in zones}
    node_floors: dict[str, set[str]] = defaultdict(set)

    for r in rooms:
        room = doc.add(f"room.{r['id']}", ROOM, r["name"])
        m.relate(doc.entities[f"zone.{r['zone_id']}"], "brick:hasPart", room)
        if r["node_id"]:
            node_floors[r["node_id"]].add(zone_floor[r["zone_id"]])
            if r["sensor_id"]:  # else a radar in the node's config may name the room
                _room_radar(m, room, r["id"], r["sensor_id"], r["node_id"])
    for d in desks:
        label = d["label"] or f"Desk {d['id']}"
        desk = doc.add(f"desk.{d['id']}", DESK, label)
        parent = f"zone.{d['zone_id']}" if d["zone_id"] else f"floor.{d['floor_id']}"
        m.relate(doc.entities[parent], "brick:hasPart", desk)
        node_floors[d["node_id"]].add(d["floor_id"])
        unit = doc.add(f"deskunit.{d['id']}", OCCUPANCY_EQUIPMENT, f"Desk unit of {d['id']}")
        m.relate(unit, "brick:hasLocation", desk)
        m.relate(unit, "brick:feeds", m.node(d["node_id"]))
        m.point(
            unit, f"deskunit-presence.{d['id']}", "brick:Occupancy_Sensor",
            f"Presence at desk {d['id']} (desk unit)",
            series_id("presence", "present", desk=d["id"], source="deskunit"),
        )  # fmt: skip
        m.point(
            unit, f"deskunit-uptime.{d['id']}", "brick:Run_Time_Sensor",
            f"Desk unit uptime at desk {d['id']}", series_id("heartbeat", "uptime_s", desk=d["id"]),
        )  # fmt: skip

    doors = _rows(
        await conn.execute(
            select(ACCESS_DOORS)
            .where(ACCESS_DOORS.c.site_id == site_id)
            .order_by(ACCESS_DOORS.c.id)
        )
    )
    for row in doors:
        door = doc.add(f"door.{row['id']}", ["brick:Access_Reader"], row["name"])
        place = f"floor.{row['floor_id']}" if row["floor_id"] in {f["id"] for f in floors} else None
        m.relate(door, "brick:hasLocation", doc.entities[place or site.key])
        if row["node_id"]:
            m.relate(door, "brick:feeds", m.node(row["node_id"]))
            if place:
                node_floors[row["node_id"]].add(row["floor_id"])
        m.point(
            door, f"door-online.{row['id']}", "brick:On_Off_Status", f"Door {row['id']} online",
            series_id("device_health", "online", device=row["id"], kind="door"),
        )  # fmt: skip

    vehicles = _rows(
        await conn.execute(
            select(TRANSPORT_VEHICLES)
            .where(TRANSPORT_VEHICLES.c.site_id == site_id)
            .order_by(TRANSPORT_VEHICLES.c.id)
        )
    )
    for v in vehicles:
        _vehicle(m, site, v)

    await _configured_devices(m, conn, node_floors, zone_floor)
    for node_id, floor_ids in node_floors.items():
        for floor_id in sorted(floor_ids):
            m.relate(m.node(node_id), "brick:hasLocation", doc.entities[f"floor.{floor_id}"])
    return doc.render()


def _room_radar(m: _Model, room: Entity, room_id: str, device: str, node_id: str) -> None:
    radar = m.doc.add(f"radar.{device}", OCCUPANCY_EQUIPMENT, f"Presence radar {device}")
    m.relate(radar, "brick:hasLocation", room)
    m.relate(radar, "brick:feeds", m.node(node_id))
    m.point(
        radar, f"radar-presence.{device}", "brick:Occupancy_Sensor",
        f"Presence in room {room_id}", series_id("room_presence", "present", room=room_id),
    )  # fmt: skip


def _vehicle(m: _Model, site: Entity, v: Mapping[str, Any]) -> None:
    doc = m.doc
    vehicle = doc.add(f"vehicle.{v['id']}", ["ruang:Vehicle", "brick:Equipment"], v["label"])
    m.relate(vehicle, "brick:hasLocation", site)  # its home site or depot; it moves
    gps = doc.add(f"gps.{v['id']}", ["brick:Sensor_Equipment"], f"GPS receiver of {v['id']}")
    m.relate(vehicle, "brick:hasPart", gps)
    if v["node_id"]:
        node = m.node(v["node_id"])
        m.relate(vehicle, "brick:hasPart", node)
        m.relate(gps, "brick:feeds", node)
    for field, cls, what in (
        ("lat", "brick:Sensor", "latitude"),
        ("lon", "brick:Sensor", "longitude"),
        ("speed_kmh", "brick:Speed_Sensor", "speed"),
    ):
        m.point(
            gps, f"gps-{field}.{v['id']}", cls, f"Vehicle {v['id']} {what}",
            series_id("position", field, vehicle=v["id"]),
        )  # fmt: skip


async def _configured_devices(
    m: _Model,
    conn: AsyncConnection,
    node_floors: dict[str, set[str]],
    zone_floor: Mapping[str, str],
) -> None:
    """Radars and BLE scanners named in the site's nodes' desired configs."""
    doc = m.doc
    configs = await _select(conn, NODE_CONFIGS, NODE_CONFIGS.c.node_id, sorted(m.nodes))
    for row in sorted(configs, key=lambda r: r["node_id"]):
        node_id, config = row["node_id"], row["config"]
        if not isinstance(config, Mapping):
            continue
        for radar in _entries(config, "radars"):
            device, desk, room = _text(radar, "device"), _text(radar, "desk"), _text(radar, "room")
            if device is None:
                continue
            if room and f"room.{room}" in doc:
                _room_radar(m, doc.entities[f"room.{room}"], room, device, node_id)
            elif desk and f"desk.{desk}" in doc:
                equipment = doc.add(
                    f"radar.{device}", OCCUPANCY_EQUIPMENT,
                    f"Presence radar {device}",
                )  # fmt: skip
                m.relate(equipment, "brick:hasLocation", doc.entities[f"desk.{desk}"])
                m.relate(equipment, "brick:feeds", m.node(node_id))
                m.point(
                    equipment, f"radar-presence.{device}", "brick:Occupancy_Sensor",
                    f"Presence at desk {desk} (radar)",
                    series_id("presence", "present", desk=desk, source="radar"),
                )  # fmt: skip
        for scanner in _entries(config, "ble"):
            _ble_scanner(m, scanner, node_id, node_floors, zone_floor)


def _ble_scanner(
    m: _Model,
    scanner: Mapping[str, Any],
    node_id: str,
    node_floors: Mapping[str, set[str]],
    zone_floor: Mapping[str, str],
) -> None:
    doc = m.doc
    scanner_id, zone, desk = _text(scanner, "id"), _text(scanner, "zone"), _text(scanner, "desk")
    if scanner_id is None or zone is None:
        return
    if desk and f"desk.{desk}" in doc:
        place: str | None = f"desk.{desk}"
    elif zone in zone_floor:
        place = f"zone.{zone}"
    else:
        floors = sorted(node_floors.get(node_id, ()))
        place = f"floor.{floors[0]}" if floors else None
    equipment = doc.add(
        f"ble.{scanner_id}", ["brick:Sensor_Equipment"], f"BLE scanner {scanner_id}"
    )
    if place:
        m.relate(equipment, "brick:hasLocation", doc.entities[place])
    m.relate(equipment, "brick:feeds", m.node(node_id))
    tags = {"zone": zone, **({"desk": desk} if desk else {})}
    m.point(
        equipment, f"ble-presence.{scanner_id}", "brick:Occupancy_Sensor",
        f"BLE badge presence in {zone}", series_id("badge_presence", "present", **tags),
    )  # fmt: skip
