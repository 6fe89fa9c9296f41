"""Building layout files: a declarative YAML/JSON description checked by pydantic and upserted.

A layout names one site and its buildings -> floors -> zones -> desks and rooms.
`load_layout` refuses a bad file with every problem at once, each prefixed by
its path in the file (`buildings[0].floors[1].zones[0].desks[3].id: ...`).
`apply_layout` upserts everything by id, so applying the same file twice (or
an edited one) is safe; nothing is deleted, because bookings and events keep
referring to desks that left the plan.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cloud.db.models import Building, Desk, Floor, Node, Person, Room, Site, Zone
from cloud.ingest import bindings
from ruang.site_defaults import DEFAULT_TIMEZONE

DeskMode = Literal["reservable", "drop_in", "assigned", "unavailable"]
Feature = Literal["monitor", "standing", "accessible", "dual_monitor"]
SAMPLE_LAYOUT = Path(__file__).resolve().parent / "sample_layout" / "ikn-shared-office.yaml"


class LayoutError(ValueError):
    """The layout file is unusable; `problems` lists each one with its path."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(f"{source}: invalid layout:\n  " + "\n  ".join(self.problems))


class _Strict(BaseModel):
    # A misspelt key (e.g. `feature:`) silently ignored is worse than an error.
    model_config = ConfigDict(extra="forbid")


class DeskSpec(_Strict):
    id: str = Field(min_length=1, max_length=64)
    label: str | None = None
    mode: DeskMode = "reservable"
    features: list[Feature] = Field(default_factory=list)
    x: float | None = None
    y: float | None = None
    w: float = 1.6
    h: float = 0.8
    node: str | None = Field(default=None, description="edge node; defaults to the floor's")
    unit: str | None = None
    assigned_person: str | None = None


class RoomSpec(_Strict):
    id: str = Field(min_length=1, max_length=64)
    name: str
    capacity: int = Field(ge=1)
    features: list[str] = Field(default_factory=list)
    node: str | None = None
    sensor: str | None = None
    # Where the room is drawn on the floor plan (optional; same units as desks).
    x: float | None = None
    y: float | None = None
    w: float | None = None
    h: float | None = None


class ZoneSpec(_Strict):
    id: str = Field(min_length=1, max_length=64)
    name: str
    reserved_for_agency: str | None = None
    desks: list[DeskSpec] = Field(default_factory=list)
    rooms: list[RoomSpec] = Field(default_factory=list)


class FloorSpec(_Strict):
    id: str = Field(min_length=1, max_length=64)
    level: int
    name: str
    node: str | None = Field(default=None, description="edge node serving this floor's desks")
    geometry: dict[str, Any] | None = None
    zones: list[ZoneSpec] = Field(default_factory=list)


class BuildingSpec(_Strict):
    id: str = Field(min_length=1, max_length=64)
    name: str
    floors: list[FloorSpec] = Field(default_factory=list)


class SiteSpec(_Strict):
    id: str = Field(min_length=1, max_length=64)
    name: str
    timezone: str = DEFAULT_TIMEZONE
    max_booking_hours: int = Field(default=10, ge=1, le=24)
    max_days_ahead: int = Field(default=14, ge=0, le=366)
    one_desk_per_person_per_slot: bool = True
    checkin_grace_min: int = Field(default=15, ge=0)
    away_release_min: int = Field(default=30, ge=0)
    # Room panels show other agencies' meeting titles only where the site says so.
    room_panel_titles: bool = False

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class Layout(_Strict):
    site: SiteSpec
    buildings: list[BuildingSpec] = Field(min_length=1)
    # Where it was read from, so errors found when applying it can name the file.
    _source: str = PrivateAttr(default="<layout>")

    def desks(self) -> Iterable[tuple[FloorSpec, ZoneSpec, DeskSpec]]:
        for building in self.buildings:
            for floor in building.floors:
                for zone in floor.zones:
                    for desk in zone.desks:
                        yield floor, zone, desk

    def desk_paths(self) -> Iterable[tuple[str, DeskSpec]]:
        """Each desk with its path in the file, as error messages give it."""
        for b, building in enumerate(self.buildings):
            for f, floor in enumerate(building.floors):
                for z, zone in enumerate(floor.zones):
                    for d, desk in enumerate(zone.desks):
                        yield f"buildings[{b}].floors[{f}].zones[{z}].desks[{d}]", desk


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _semantic_problems(layout: Layout) -> list[str]:
    """Checks pydantic cannot express field by field: unique ids, a node for every desk."""
    problems: list[str] = []
    seen: dict[str, dict[str, str]] = {k: {} for k in ("building", "floor", "zone", "desk", "room")}

    def unique(kind: str, ident: str, where: str) -> None:
        first = seen[kind].setdefault(ident, where)
        if first != where:
            problems.append(f"{where}.id: duplicate {kind} id {ident!r} (first at {first})")

    for b, building in enumerate(layout.buildings):
        bp = f"buildings[{b}]"
        unique("building", building.id, bp)
        for f, floor in enumerate(building.floors):
            fp = f"{bp}.floors[{f}]"
            unique("floor", floor.id, fp)
            for z, zone in enumerate(floor.zones):
                zp = f"{fp}.zones[{z}]"
                unique("zone", zone.id, zp)
                for d, desk in enumerate(zone.desks):
                    dp = f"{zp}.desks[{d}]"
                    unique("desk", desk.id, dp)
                    if desk.node is None and floor.node is None:
                        problems.append(f"{dp}.node: no edge node (set it or {fp}.node)")
                    if desk.mode == "assigned" and desk.assigned_person is None:
                        problems.append(f"{dp}.assigned_person: an assigned desk needs a person")
                for r, room in enumerate(zone.rooms):
                    unique("room", room.id, f"{zp}.rooms[{r}]")
    return problems


def parse_layout(data: Any, source: str = "<layout>") -> Layout:
    try:
        layout = Layout.model_validate(data)
    except ValidationError as exc:
        raise LayoutError(
            source, [f"{_path(e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()]
        ) from None
    problems = _semantic_problems(layout)
    if problems:
        raise LayoutError(source, problems)
    layout._source = source
    return layout


def load_layout(path: str | Path) -> Layout:
    """Reads and checks a layout file (`.json`, else YAML)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        problem = f"(file): not valid {path.suffix or 'YAML'}: {exc}"
        raise LayoutError(str(path), [problem]) from None
    return parse_layout(data, str(path))


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


async def _upsert(
    conn: AsyncConnection,
    table: Table,
    rows: list[dict[str, Any]],
    keep: Sequence[str] = (),
    coalesce: Sequence[str] = (),
) -> None:
    """INSERT ... ON CONFLICT (id) DO UPDATE of every given column except `keep`."""
    if not rows:
        return
    insert: Callable[[Table], Any] = (
        postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    )
    stmt = insert(table)
    columns = [c for c in rows[0] if c != "id" and c not in keep]
    if columns:
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.id],
            set_={
                # A value the file leaves unset does not erase one already known.
                c: func.coalesce(stmt.excluded[c], table.c[c])
                if c in coalesce
                else stmt.excluded[c]
                for c in columns
            },
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=[table.c.id])
    await conn.execute(stmt, rows)


async def _reference_problems(conn: AsyncConnection, layout: Layout) -> list[str]:
    """References to rows the layout does not create itself (people), checked before any SQL
    write, so a typo is reported with its place in the file rather than as a driver error."""
    wanted = [
        (path, desk.assigned_person)
        for path, desk in layout.desk_paths()
        if desk.assigned_person is not None
    ]
    if not wanted:
        return []
    ids = sorted({person for _, person in wanted})
    known = set((await conn.execute(select(Person.id).where(Person.id.in_(ids)))).scalars())
    return [
        f"{path}.assigned_person: no person {person!r} (import the roster first)"
        for path, person in wanted
        if person not in known
    ]


async def apply_layout(engine: AsyncEngine, layout: Layout) -> None:
    """Upserts the layout in one transaction; live desk state (presence, check-in) is kept.

    Raises LayoutError (file, field path, reason) when the layout names a person
    the database does not know; nothing is written then.
    """
    site = layout.site
    nodes: dict[str, None] = {}
    desks: list[dict[str, Any]] = []
    for floor, zone, desk in layout.desks():
        node = desk.node or floor.node
        assert node is not None  # parse_layout refused desks without a node
        nodes[node] = None
        desks.append(
            {
                "id": desk.id,
                "node_id": node,
                "state": "free",
                "unit": desk.unit,
                "floor_id": floor.id,
                "zone_id": zone.id,
                "label": desk.label or desk.id,
                "mode": desk.mode,
                "features": list(desk.features),
                "x": desk.x,
                "y": desk.y,
                "w": desk.w,
                "h": desk.h,
                "assigned_person_id": desk.assigned_person,
            }
        )
    async with engine.begin() as conn:
        problems = await _reference_problems(conn, layout)
        if problems:
            raise LayoutError(layout._source, problems)
        await _upsert(conn, _table(Site), [site.model_dump()])
        await _upsert(
            conn,
            _table(Building),
            [{"id": b.id, "site_id": site.id, "name": b.name} for b in layout.buildings],
        )
        floors = [f for b in layout.buildings for f in b.floors]
        await _upsert(
            conn,
            _table(Floor),
            [
                {
                    "id": f.id,
                    "building_id": b.id,
                    "level": f.level,
                    "name": f.name,
                    "geometry": f.geometry,
                }
                for b in layout.buildings
                for f in b.floors
            ],
        )
        await _upsert(
            conn,
            _table(Zone),
            [
                {
                    "id": z.id,
                    "floor_id": f.id,
                    "name": z.name,
                    "reserved_for_agency": z.reserved_for_agency,
                }
                for f in floors
                for z in f.zones
            ],
        )
        # A room's sensor node defaults to its floor's, like a desk's.
        await _upsert(
            conn,
            _table(Room),
            [
                {
                    "id": r.id,
                    "zone_id": z.id,
                    "name": r.name,
                    "capacity": r.capacity,
                    "features": r.features,
                    "node_id": r.node or f.node,
                    "sensor_id": r.sensor,
                    "x": r.x,
                    "y": r.y,
                    "w": r.w,
                    "h": r.h,
                }
                for f in floors
                for z in f.zones
                for r in z.rooms
            ],
        )
        # Nodes a layout names may not have connected yet; they stay offline
        # until their birth, and an existing node's live state is untouched.
        await _upsert(
            conn, _table(Node), [{"id": n, "online": False} for n in nodes], keep=("online",)
        )
        # Ingestion owns the live columns: a re-applied layout must not free an
        # occupied desk, and an edge-reported unit serial wins over an unset one.
        await _upsert(conn, _table(Desk), desks, keep=("state",), coalesce=("unit",))
    # Ingestion checks every message against these bindings: read them again.
    bindings.changed()
