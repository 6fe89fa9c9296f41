"""Who may see and change what: the one place the API's role and site rules live.

Roles (docs/security.md, "Users by role and site"):

- admin: everything, every site;
- facility_manager: people, badges, bookings, desks, maps and analytics of the
  sites listed in their token (`Principal.sites`);
- technician: nodes, enrolment, node config, desks and maps of their sites,
  without people's names or badge UIDs;
- security: door rights (doors, access groups, grants, holidays) and the access
  log of the sites in their token (cloud/api/access_rights.py, docs/access-control.md);
- asn / guest: only their own bookings (the token's subject is their person id).

Every site-bound resource maps to one site: a desk by floor -> building -> site,
a floor by its building, a node by the desks and rooms it serves (or the vehicle
it rides in), a person (and their badges) by their home site, a vehicle by its
home site. A resource with no site (an unplaced node, a
person without a home site) belongs to admins only.

The rule for refusals: a role that may never do something gets 403; a resource
named in the path or the query that lies outside the caller's sites gets the
same 404 as one that does not exist, so other sites' ids are not revealed.
Listings are filtered to the caller's sites instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, select, union
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.models import Badge, Building, Desk, Floor, Node, Person, Room, Zone
from cloud.db.models_fleet import EnrolmentToken, NodeCredential
from cloud.db.models_transport import Vehicle
from cloud.errors import Forbidden, NotFound
from cloud.people.auth import Principal

T = TypeVar("T")

# The roles whose reach is limited to the sites in their token.
OPERATOR_ROLES = ("technician", "facility_manager")
MANAGER_ROLES = ("facility_manager",)
TECHNICIAN_ROLES = ("technician",)

Scope = frozenset[str] | None  # None: every site (admins)

_DESK_SITE = (
    select(Desk.id, Building.site_id)
    .join(Floor, Floor.id == Desk.floor_id)
    .join(Building, Building.id == Floor.building_id)
)
_NODE_SITE = union(
    select(Desk.node_id.label("node"), Building.site_id.label("site"))
    .join(Floor, Floor.id == Desk.floor_id)
    .join(Building, Building.id == Floor.building_id),
    select(Room.node_id.label("node"), Building.site_id.label("site"))
    .join(Zone, Zone.id == Room.zone_id)
    .join(Floor, Floor.id == Zone.floor_id)
    .join(Building, Building.id == Floor.building_id)
    .where(Room.node_id.is_not(None)),
    # A vehicle's node belongs to the vehicle's home site.
    select(Vehicle.node_id.label("node"), Vehicle.site_id.label("site")).where(
        Vehicle.node_id.is_not(None)
    ),
).subquery()


# --- scope of a caller ----------------------------------------------------------------------


def site_scope(user: Principal, roles: Sequence[str] = OPERATOR_ROLES) -> Scope:
    """The sites `user` reaches through one of `roles`: None for admins (all sites)."""
    if user.is_admin:
        return None
    return user.sites if user.has(*roles) else frozenset()


def in_scope(scope: Scope, sites: Iterable[str | None]) -> bool:
    """Whether a resource placed in `sites` is reachable; unplaced ones only for admins."""
    return scope is None or any(s in scope for s in sites if s is not None)


def manages(user: Principal, site: str | None) -> bool:
    """Admins manage every site; a facility manager the sites in their token."""
    return in_scope(site_scope(user, MANAGER_ROLES), [site])


# --- where resources are --------------------------------------------------------------------


async def _pairs(conn: AsyncConnection, stmt: Select[Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for key, site in await conn.execute(stmt):
        if site is not None:
            out.setdefault(key, set()).add(site)
    return out


async def desk_sites(conn: AsyncConnection, desk_ids: Iterable[str]) -> dict[str, str]:
    """{desk id: site id} for desks placed in the building layout."""
    ids = sorted(set(desk_ids))
    if not ids:
        return {}
    rows = await conn.execute(_DESK_SITE.where(Desk.id.in_(ids)))
    return {desk: site for desk, site in rows}


async def node_sites(conn: AsyncConnection, node_ids: Iterable[str]) -> dict[str, set[str]]:
    """{node id: sites of the desks and rooms it serves}; unplaced nodes are absent."""
    ids = sorted(set(node_ids))
    if not ids:
        return {}
    return await _pairs(
        conn, select(_NODE_SITE.c.node, _NODE_SITE.c.site).where(_NODE_SITE.c.node.in_(ids))
    )


async def site_nodes(conn: AsyncConnection, site_ids: Iterable[str]) -> dict[str, set[str]]:
    """{site id: the nodes serving its desks, rooms and vehicles}; sites without any absent."""
    ids = sorted(set(site_ids))
    if not ids:
        return {}
    return await _pairs(
        conn, select(_NODE_SITE.c.site, _NODE_SITE.c.node).where(_NODE_SITE.c.site.in_(ids))
    )


async def site_vehicles(conn: AsyncConnection, site_ids: Iterable[str]) -> dict[str, set[str]]:
    """{site id: the vehicles whose home it is}."""
    ids = sorted(set(site_ids))
    if not ids:
        return {}
    rows = await conn.execute(select(Vehicle.site_id, Vehicle.id).where(Vehicle.site_id.in_(ids)))
    out: dict[str, set[str]] = {}
    for site, vehicle in rows:
        if site is not None:
            out.setdefault(site, set()).add(vehicle)
    return out


async def person_sites(conn: AsyncConnection, person_ids: Iterable[str]) -> dict[str, str]:
    """{person id: home site} for people who have one."""
    ids = sorted(set(person_ids))
    if not ids:
        return {}
    rows = await conn.execute(select(Person.id, Person.site_id).where(Person.id.in_(ids)))
    return {p: s for p, s in rows if s is not None}


async def vehicle_sites(conn: AsyncConnection, vehicle_ids: Iterable[str]) -> dict[str, str]:
    """{vehicle id: home site} for vehicles that have one."""
    ids = sorted(set(vehicle_ids))
    if not ids:
        return {}
    rows = await conn.execute(select(Vehicle.id, Vehicle.site_id).where(Vehicle.id.in_(ids)))
    return {v: s for v, s in rows if s is not None}


async def _vehicle_sites_of(conn: AsyncConnection, vehicle_id: str) -> set[str]:
    site = (await vehicle_sites(conn, [vehicle_id])).get(vehicle_id)
    return {site} if site else set()


async def _floor_sites(conn: AsyncConnection, floor_id: str) -> set[str]:
    site = await conn.scalar(
        select(Building.site_id)
        .join(Floor, Floor.building_id == Building.id)
        .where(Floor.id == floor_id)
    )
    return {site} if site else set()


async def _building_sites(conn: AsyncConnection, building_id: str) -> set[str]:
    site = await conn.scalar(select(Building.site_id).where(Building.id == building_id))
    return {site} if site else set()


async def _badge_sites(conn: AsyncConnection, badge_id: str) -> set[str]:
    if not badge_id.isdigit():
        return set()  # not an id at all: the route's own validation answers
    site = await conn.scalar(
        select(Person.site_id)
        .join(Badge, Badge.person_id == Person.id)
        .where(Badge.id == int(badge_id))
    )
    return {site} if site else set()


async def _node_sites_of(conn: AsyncConnection, node_id: str) -> set[str]:
    return (await node_sites(conn, [node_id])).get(node_id, set())


async def _desk_sites_of(conn: AsyncConnection, desk_id: str) -> set[str]:
    site = (await desk_sites(conn, [desk_id])).get(desk_id)
    return {site} if site else set()


async def _person_sites_of(conn: AsyncConnection, person_id: str) -> set[str]:
    site = (await person_sites(conn, [person_id])).get(person_id)
    return {site} if site else set()


async def _site_itself(conn: AsyncConnection, site_id: str) -> set[str]:
    return {site_id}


# What an out-of-scope id answers: the same 404 as an unknown one.
_Lookup = Callable[[AsyncConnection, str], Any]
NAMED_PARAMS: dict[str, tuple[_Lookup, str, str]] = {
    # request parameter: (its sites, problem title, what it is)
    "desk_id": (_desk_sites_of, "Desk not found", "desk"),
    "floor_id": (_floor_sites, "Floor not found", "floor"),
    "node_id": (_node_sites_of, "Unknown node", "node"),
    "node": (_node_sites_of, "Node not found", "node"),
    "badge_id": (_badge_sites, "Badge not found", "badge"),
    "person_id": (_person_sites_of, "Person not found", "person"),
    "building": (_building_sites, "Building not found", "building"),
    "site": (_site_itself, "Site not found", "site"),
    "vehicle_id": (_vehicle_sites_of, "Vehicle not found", "vehicle"),
}


def not_found(param: str, value: str) -> NotFound:
    _, title, what = NAMED_PARAMS[param]
    return NotFound(f"{what} {value!r} is unknown", title=title)


async def ensure_in_scope(
    conn: AsyncConnection, user: Principal, roles: Sequence[str], param: str, value: str
) -> None:
    """404 unless the resource `param`=`value` lies in a site `user` reaches via `roles`."""
    scope = site_scope(user, roles)
    if scope is None:
        return
    lookup = NAMED_PARAMS[param][0]
    if not in_scope(scope, await lookup(conn, value)):
        raise not_found(param, value)


# --- filtering listings ---------------------------------------------------------------------


async def _only(
    conn: AsyncConnection,
    user: Principal,
    rows: list[T],
    key: Callable[[T], str],
    sites_of: Callable[[AsyncConnection, list[str]], Awaitable[Mapping[str, Any]]],
    roles: Sequence[str],
) -> list[T]:
    """The rows whose resource (named by `key`) lies in the caller's sites.

    `sites_of` maps resource ids to one site id or a collection of them (a node serves
    several sites); a resource with none is admins' only.
    """
    scope = site_scope(user, roles)
    if scope is None:
        return rows
    found = await sites_of(conn, [key(r) for r in rows])

    def sites(row: T) -> Iterable[str | None]:
        value = found.get(key(row))
        return [value] if value is None or isinstance(value, str) else value

    return [r for r in rows if in_scope(scope, sites(r))]


async def only_desks(
    conn: AsyncConnection,
    user: Principal,
    rows: list[T],
    desk: Callable[[T], str],
    roles: Sequence[str] = OPERATOR_ROLES,
) -> list[T]:
    """The rows whose desk lies in the caller's sites."""
    return await _only(conn, user, rows, desk, desk_sites, roles)


async def only_nodes(
    conn: AsyncConnection,
    user: Principal,
    rows: list[T],
    node: Callable[[T], str],
    roles: Sequence[str] = OPERATOR_ROLES,
) -> list[T]:
    """The rows whose node serves one of the caller's sites."""
    return await _only(conn, user, rows, node, node_sites, roles)


async def only_people(
    conn: AsyncConnection,
    user: Principal,
    rows: list[T],
    person: Callable[[T], str],
    roles: Sequence[str] = MANAGER_ROLES,
) -> list[T]:
    """The rows about people whose home site the caller manages."""
    return await _only(conn, user, rows, person, person_sites, roles)


async def only_vehicles(
    conn: AsyncConnection,
    user: Principal,
    rows: list[T],
    vehicle: Callable[[T], str],
    roles: Sequence[str] = OPERATOR_ROLES,
) -> list[T]:
    """The rows about vehicles whose home site is one of the caller's."""
    return await _only(conn, user, rows, vehicle, vehicle_sites, roles)


async def ensure_node_enrolable(
    conn: AsyncConnection, user: Principal, node_id: str | None
) -> None:
    """A technician may enrol a new node id, or re-enrol a node of their sites; enrolling
    revokes the node's credentials, so a node known elsewhere reads as unknown (404)."""
    scope = site_scope(user, TECHNICIAN_ROLES)
    if scope is None or node_id is None:
        return
    if in_scope(scope, await _node_sites_of(conn, node_id)):
        return
    known: Any = union(
        select(Node.id).where(Node.id == node_id),
        select(NodeCredential.node_id).where(NodeCredential.node_id == node_id),
        select(EnrolmentToken.node_id).where(EnrolmentToken.node_id == node_id),
        select(Desk.node_id).where(Desk.node_id == node_id),
        select(Room.node_id).where(Room.node_id == node_id),
        select(Vehicle.node_id).where(Vehicle.node_id == node_id),
    )
    if (await conn.execute(known)).first() is not None:
        raise not_found("node", node_id)


# --- bookings -------------------------------------------------------------------------------


async def ensure_may_act_for(
    conn: AsyncConnection, user: Principal, person_id: str, desk_id: str
) -> None:
    """Raises 403 unless `user` may book or change a booking of `person_id` at `desk_id`."""
    if person_id == user.subject and user.has("asn", "guest", "facility_manager", "admin"):
        return
    if site_scope(user, MANAGER_ROLES) is None:
        return  # admins manage every site: no need to look the desk's up
    site = (await desk_sites(conn, [desk_id])).get(desk_id)
    if manages(user, site):
        return
    raise Forbidden(
        "You can only book and change your own bookings; facility managers can act for "
        "people in the sites they manage.",
        title="Not your booking",
    )


def person_filter(user: Principal, requested: str | None) -> str | None:
    """The person a booking listing is limited to: yourself unless you manage sites."""
    if user.is_admin or "facility_manager" in user.roles:
        return requested
    if requested is not None and requested != user.subject:
        raise Forbidden("You can only see your own bookings.", title="Not your bookings")
    return user.subject
