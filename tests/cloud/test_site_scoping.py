"""Every API operation x every role: the site scoping matrix, generated from the OpenAPI.

Site A (ids `xa-...`) holds one set of resources per role (desk, node, person with
a badge, booking, webhook), so each call meets fresh state whatever the calls
before it did. Callers: admin, facility manager and technician of site A and of
site B (`xb-...`), an ASN and a guest of site A, and no token at all.

Outcomes: a status code; `ok` = let through (not 401/403/404, no 5xx, a domain
409/422 is fine); `A` = ok and the answer shows site A's ids; `-` = ok and it
shows none. On every answer, site A's raw badge UIDs appear only for admins and
site A's facility manager. An operation missing from EXPECTED fails the test:
a new endpoint needs a scope decision here (and in docs/security.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from cloud.bookings.qrcheckin import CheckinKeys
from cloud.buildings.layout import apply_layout, parse_layout
from cloud.db.engine import make_engine
from cloud.db.models import Desk
from cloud.db.models_fleet import NodeCredential
from cloud.db.tables import ACCESS_CHAINS
from cloud.ingest import dead_letters
from cloud.rooms.panel import panel_key
from cloud.settings import CloudSettings
from cloud.transport.gtfs_export import sample_zip
from cloud.transport.poolcars import record_pickup, record_return
from tests.cloud.transport.seat_helpers import TripRef, add_vehicle, future_trip, reservation
from tests.helpers import auth_headers

from .conftest import serving

ROLES = ("anonymous", "guest", "asn", "tech_b", "fm_b", "tech_a", "fm_a", "admin")
# (subject, token roles, token sites); subjects are people of their own site.
TOKENS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "guest": ("xa-me-guest", ("guest",), ()),
    "asn": ("xa-me-asn", ("asn",), ()),
    "tech_b": ("xb-me-tech", ("technician",), ("xb-site",)),
    "fm_b": ("xb-me-fm", ("facility_manager",), ("xb-site",)),
    "tech_a": ("xa-me-tech", ("technician",), ("xa-site",)),
    "fm_a": ("xa-me-fm", ("facility_manager",), ("xa-site",)),
    "admin": ("dev-admin", ("admin",), ()),
}
HOLIDAY = "2030-01-01"
ATTENDANCE_RANGE = {"agency": "xa-agency-keep", "from": "2026-03-02", "to": "2026-03-04"}
ACCESS_GRANT = {"group_id": "xa-group-keep", "door_id": "xa-door-keep",
                "schedule": [{"days": ["mon"], "start": "07:00", "end": "19:00"}]}  # fmt: skip
BADGE_UID_A = "04AA00000000"  # + two hex digits per role: site A's badge UIDs
MAY_SEE_BADGES = {"admin", "fm_a"}
SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SCIM_RUANG_GROUP = "urn:ruang:params:scim:schemas:extension:2.0:Group"
SCIM_SEARCH = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
               "filter": 'id sw "xa-" or displayName sw "xa-"'}  # fmt: skip
SCIM_PATCH = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "path": "displayName", "value": "xa-renamed"}],
}


def row(*outcomes: str) -> dict[str, str]:
    assert len(outcomes) == len(ROLES)
    return dict(zip(ROLES, outcomes, strict=True))


U = "401"
PUBLIC = row(*["ok"] * 8)
SIGNED_IN = row(U, *["ok"] * 7)
ADMIN_ONLY = row(U, "403", "403", "403", "403", "403", "403", "ok")
#                         anon guest  asn    tech_b fm_b   tech_a fm_a  admin
OPERATOR_ONE = row(U, "403", "403", "404", "404", "ok", "ok", "ok")
OPERATOR_LIST = row(U, "403", "403", "-", "-", "A", "A", "A")
MANAGER_ONE = row(U, "403", "403", "403", "404", "403", "ok", "ok")
MANAGER_LIST = row(U, "403", "403", "403", "-", "403", "A", "A")
TECHNICIAN_ONE = row(U, "403", "403", "404", "403", "ok", "403", "ok")
BOOKING_WRITE = row(U, "403", "403", "403", "403", "403", "ok", "ok")
BOOKING_LIST = row(U, "-", "-", "-", "-", "-", "A", "A")
TRANSPORT_OPERATORS = row(U, "403", "403", "403", "ok", "403", "ok", "ok")
SCIM_LIST = row(U, *["403"] * 6, "A")

# Office transport is one service across sites: any facility manager (and dispatchers,
# a role of the transport UI) runs it; DELETEs of a trip/alert that does not exist are 404.
DISPATCH = row(U, "403", "403", "403", "ok", "403", "ok", "ok")
DISPATCH_GONE = row(U, "403", "403", "403", "404", "403", "404", "404")

EXPECTED: dict[str, dict[str, str]] = {
    "GET /api/v1/transport/live": DISPATCH,
    "GET /api/v1/transport/live/stream": DISPATCH,
    "GET /api/v1/transport/assignments": DISPATCH,
    "POST /api/v1/transport/assignments": DISPATCH,
    "DELETE /api/v1/transport/assignments/{trip_id}/{service_date}": DISPATCH_GONE,
    "GET /api/v1/transport/cancellations": DISPATCH,
    "POST /api/v1/transport/cancellations": DISPATCH,
    "DELETE /api/v1/transport/cancellations/{trip_id}/{service_date}": DISPATCH_GONE,
    "GET /api/v1/transport/alerts": DISPATCH,
    "POST /api/v1/transport/alerts": DISPATCH,
    "DELETE /api/v1/transport/alerts/{alert_id}": DISPATCH_GONE,
    # Public, nothing personal: departures boards and the GTFS-Realtime feeds.
    "GET /api/v1/transport/departures": PUBLIC,
    "GET /api/v1/transport/gtfs-rt/vehicle-positions": PUBLIC,
    "GET /api/v1/transport/gtfs-rt/trip-updates": PUBLIC,
    "GET /api/v1/transport/gtfs-rt/alerts": PUBLIC,
    "GET /healthz": PUBLIC,
    "GET /role": PUBLIC,
    "GET /readyz": PUBLIC,
    "GET /api/v1/snapshot-key": PUBLIC,
    "GET /api/v1/snapshot-keys": PUBLIC,
    "GET /api/v1/public/availability": row(*["A"] * 8),
    "POST /api/v1/enroll": row(*["401"] * 8),  # the enrolment token is the credential
    "GET /api/v1/me": row(U, "A", "A", "ok", "ok", "A", "A", "404"),  # admin: not a person
    "GET /api/v1/availability": row(U, *["A"] * 7),  # bookers may sit in any site
    "GET /api/v1/sites/tree": row(U, *["A"] * 7),  # layout names only, as on the kiosk
    # A QR key proves presence at the desk; only people check in.
    "POST /api/v1/desks/{desk_id}/checkin": row(U, *["ok"] * 6, "403"),
    "GET /api/v1/desks": OPERATOR_LIST,
    "GET /api/v1/desks/{desk_id}": OPERATOR_ONE,
    "POST /api/v1/desks/{desk_id}/led": OPERATOR_ONE,
    "GET /api/v1/desks/{desk_id}/timeline": OPERATOR_ONE,
    "GET /api/v1/desks/{desk_id}/qr.svg": MANAGER_ONE,
    "GET /api/v1/floors/{floor_id}/map": OPERATOR_ONE,
    "GET /api/v1/floors/{floor_id}/stream": OPERATOR_ONE,
    # The building model in Brick Schema: places and sensors, nothing personal.
    "GET /api/v1/sites/{site_id}/brick.ttl": OPERATOR_ONE,
    "GET /api/v1/nodes": OPERATOR_LIST,
    "PUT /api/v1/nodes/{node_id}/config": OPERATOR_ONE,
    "GET /api/v1/nodes/{node_id}/config": OPERATOR_ONE,
    "GET /api/v1/fleet/nodes": OPERATOR_LIST,
    "GET /api/v1/fleet/nodes/{node_id}": OPERATOR_ONE,
    "GET /api/v1/fleet/nodes/{node_id}/health": OPERATOR_ONE,
    "POST /api/v1/enrolment-tokens": TECHNICIAN_ONE,
    "DELETE /api/v1/nodes/{node_id}/credentials": TECHNICIAN_ONE,
    # Tokens of the technician's sites' nodes (and the ones they created); never the token.
    "GET /api/v1/enrolment-tokens": row(U, "403", "403", "-", "403", "A", "403", "A"),
    "DELETE /api/v1/enrolment-tokens/{ref}": TECHNICIAN_ONE,
    "POST /api/v1/nodes/{node_id}/config/check": OPERATOR_ONE,
    "GET /api/v1/ingest/stats": ADMIN_ONLY,
    "GET /api/v1/people/{person_id}/private": ADMIN_ONLY,
    # Sessions (docs/identity.md): one's own for every person, anyone's for admins.
    "POST /api/v1/me/sign-out-everywhere": row(U, *["ok"] * 6, "404"),  # admin: not a person
    "POST /api/v1/people/{person_id}/sign-out-everywhere": ADMIN_ONLY,
    "POST /api/v1/people/{person_id}/deactivate": ADMIN_ONLY,
    "POST /api/v1/people/{person_id}/activate": ADMIN_ONLY,
    # Data-subject rights (docs/privacy.md): one's own export (admin: not a person); erasure
    # by admins only (of a person of its own, see _request); the access audit: dpo and admins.
    "GET /api/v1/me/export": row(U, "A", "A", "ok", "ok", "A", "A", "404"),
    "POST /api/v1/people/{person_id}/erase": ADMIN_ONLY,
    "GET /api/v1/privacy/access-log": ADMIN_ONLY,
    # Site B's manager may not overwrite site A's people: the rows are refused.
    "POST /api/v1/people/import": row(U, "403", "403", "403", "422", "403", "ok", "ok"),
    # The preview answers 200 with the rows' errors (fm_b: not their site).
    "POST /api/v1/people/import/preview": row(U, "403", "403", "403", "ok", "403", "ok", "ok"),
    "GET /api/v1/people": MANAGER_LIST,
    "GET /api/v1/badges": MANAGER_LIST,
    "POST /api/v1/badges": MANAGER_ONE,
    "POST /api/v1/badges/{badge_id}/revoke": MANAGER_ONE,
    "POST /api/v1/badges/{badge_id}/lost": MANAGER_ONE,
    "POST /api/v1/badges/{badge_id}/replace": MANAGER_ONE,
    "GET /api/v1/badges/allowlist": MANAGER_ONE,
    "GET /api/v1/analytics/utilisation": MANAGER_LIST,
    # These three name site A's building: out of scope is a 404.
    "GET /api/v1/analytics/releases": MANAGER_ONE,
    "GET /api/v1/analytics/booking-sensor-matrix": MANAGER_ONE,
    "GET /api/v1/analytics/heatmap": MANAGER_ONE,
    "POST /api/v1/bookings": BOOKING_WRITE,
    "POST /api/v1/bookings/recurring": BOOKING_WRITE,
    "GET /api/v1/bookings": BOOKING_LIST,
    "GET /api/v1/bookings/export.csv": BOOKING_LIST,
    "GET /api/v1/bookings/export.ics": BOOKING_LIST,
    "POST /api/v1/bookings/import": ADMIN_ONLY,
    "POST /api/v1/bookings/{booking_id}/cancel": BOOKING_WRITE,
    "POST /api/v1/bookings/{booking_id}/extend": BOOKING_WRITE,
    "GET /api/v1/webhooks": ADMIN_ONLY,
    # One's own notifications; someone else's id answers 404 as if it did not exist.
    "GET /api/v1/me/notifications": SIGNED_IN,
    "GET /api/v1/me/notifications/unread-count": SIGNED_IN,
    "POST /api/v1/me/notifications/read-all": SIGNED_IN,
    "POST /api/v1/me/notifications/{notification_id}/read": row(U, *["404"] * 7),
    "GET /api/v1/me/notification-preferences": SIGNED_IN,
    "PUT /api/v1/me/notification-preferences": row(U, *["ok"] * 6, "404"),  # admin: not a person
    "GET /api/v1/notifications/deliveries": ADMIN_ONLY,
    "GET /api/v1/dead-letters": ADMIN_ONLY,
    "GET /api/v1/dead-letters/{letter_id}": ADMIN_ONLY,
    "POST /api/v1/dead-letters/{letter_id}/replay": ADMIN_ONLY,
    "DELETE /api/v1/dead-letters/{letter_id}": ADMIN_ONLY,
    "POST /api/v1/webhooks": ADMIN_ONLY,
    "DELETE /api/v1/webhooks/{webhook_id}": ADMIN_ONLY,
    "GET /api/v1/webhooks/{webhook_id}/deliveries": ADMIN_ONLY,
    # The GTFS schedule is public timetable data for every signed-in user; replacing it is
    # the operator's (admins). Vehicles belong to their home site's operators.
    "POST /api/v1/transport/gtfs": ADMIN_ONLY,
    # The transport views (cloud/api/transport_network.py): the network's geometry, the
    # rider's trip search (seat counts, no names) and the pool cars free for a time.
    "GET /api/v1/transport/network": SIGNED_IN,
    "GET /api/v1/transport/trip-finder": SIGNED_IN,
    "GET /api/v1/transport/pool-cars/free": row(U, *["A"] * 7),
    # Transport analytics: one shared service, so every facility manager (and dispatchers).
    "GET /api/v1/analytics/transport/ridership": TRANSPORT_OPERATORS,
    "GET /api/v1/analytics/transport/routes": TRANSPORT_OPERATORS,
    "GET /api/v1/analytics/transport/pool-cars": TRANSPORT_OPERATORS,
    "GET /api/v1/transport/gtfs": SIGNED_IN,
    "GET /api/v1/transport/stops": SIGNED_IN,
    "GET /api/v1/transport/routes": SIGNED_IN,
    "GET /api/v1/transport/shapes": SIGNED_IN,
    "GET /api/v1/transport/trips": SIGNED_IN,
    "GET /api/v1/transport/trips/{trip_id}": SIGNED_IN,
    "GET /api/v1/transport/sites/{site}/stops": SIGNED_IN,
    "PUT /api/v1/transport/sites/{site}/stops": MANAGER_ONE,
    "GET /api/v1/transport/vehicles": OPERATOR_LIST,
    "POST /api/v1/transport/vehicles": MANAGER_ONE,
    "GET /api/v1/transport/vehicles/{vehicle_id}": OPERATOR_ONE,
    "PATCH /api/v1/transport/vehicles/{vehicle_id}": MANAGER_ONE,
    # Seats and pool cars (cloud/transport/seat_access.py): people act for themselves,
    # a facility manager for the people and pool cars of their sites; seat counts
    # carry no names; only an approver of the booker's agency (or an admin) decides.
    "POST /api/v1/transport/reservations": BOOKING_WRITE,
    "DELETE /api/v1/transport/reservations/{reservation_id}": BOOKING_WRITE,
    "GET /api/v1/me/transport/reservations": SIGNED_IN,
    "GET /api/v1/transport/trips/{trip_id}/{service_date}/seats": SIGNED_IN,
    "POST /api/v1/transport/car-bookings": BOOKING_WRITE,
    "GET /api/v1/transport/car-bookings": BOOKING_LIST,
    "POST /api/v1/transport/car-bookings/{car_booking_id}/approve": ADMIN_ONLY,
    "POST /api/v1/transport/car-bookings/{car_booking_id}/reject": ADMIN_ONLY,
    "POST /api/v1/transport/car-bookings/{car_booking_id}/cancel": BOOKING_WRITE,
    "GET /api/v1/transport/car-trips": BOOKING_LIST,
    # Door rights and the access log are the security role's (of the door's site), which none
    # of these callers holds: admins only here; tests/cloud/access/test_api.py covers the
    # security role by site.
    "GET /api/v1/access/doors": ADMIN_ONLY,
    "PUT /api/v1/access/doors/{door}": ADMIN_ONLY,
    "DELETE /api/v1/access/doors/{door}": ADMIN_ONLY,
    "GET /api/v1/access/groups": ADMIN_ONLY,
    "PUT /api/v1/access/groups/{group}": ADMIN_ONLY,
    "DELETE /api/v1/access/groups/{group}": ADMIN_ONLY,
    "GET /api/v1/access/grants": ADMIN_ONLY,
    "PUT /api/v1/access/grants": ADMIN_ONLY,
    "DELETE /api/v1/access/grants/{grant}": ADMIN_ONLY,
    "GET /api/v1/access/holidays": ADMIN_ONLY,
    "PUT /api/v1/access/holidays": ADMIN_ONLY,
    "DELETE /api/v1/access/holidays/{site_id}/{day}": ADMIN_ONLY,
    "GET /api/v1/access/changes": ADMIN_ONLY,
    "GET /api/v1/access-log": ADMIN_ONLY,
    # The admin audit log: admins, and the security role of a site (tests/cloud/admin).
    "GET /api/v1/audit": ADMIN_ONLY,
    "GET /api/v1/access-log/chains": ADMIN_ONLY,
    # The attendance export: admins and the dpo role (not in this matrix), for agencies an
    # admin opted in (tests/cloud/attendance).
    "GET /api/v1/attendance": ADMIN_ONLY,
    "GET /api/v1/attendance/agencies": ADMIN_ONLY,
    "PUT /api/v1/attendance/agencies/{agency}": ADMIN_ONLY,
    "DELETE /api/v1/attendance/agencies/{agency}": ADMIN_ONLY,
    "POST /api/v1/access-log/chains/{chain_node}/clear": ADMIN_ONLY,
    # Visitors: a host's own visits (site A's belong to xa-p-* hosts, never to the caller: 404);
    # today's list and check-in/out are the reception role's of the site, which none of these
    # callers holds. tests/cloud/visitors/test_visits_api.py covers hosts and reception.
    "GET /api/v1/visits": row(U, *["-"] * 7),
    "POST /api/v1/visits": row(U, "403", *["ok"] * 6),
    "GET /api/v1/reception/visits": row(U, *["403"] * 6, "A"),
    "GET /api/v1/visits/{visit_id}": row(U, *["404"] * 6, "ok"),
    "PUT /api/v1/visits/{visit_id}": row(U, *["404"] * 6, "ok"),
    "GET /api/v1/visits/{visit_id}/pass.svg": row(U, *["404"] * 6, "ok"),
    "POST /api/v1/visits/{visit_id}/cancel": row(U, *["404"] * 6, "ok"),
    "POST /api/v1/reception/checkin": row(U, *["403"] * 6, "ok"),
    "POST /api/v1/reception/visits/{visit_id}/checkout": row(U, *["403"] * 6, "ok"),
    # Meeting rooms (cloud/api/rooms.py): room states and free rooms carry no names, so
    # every signed-in person sees every site's (as desk availability); bookings follow
    # the desks' rules (cloud/rooms/access.py).
    "GET /api/v1/rooms": row(U, *["A"] * 7),
    "GET /api/v1/rooms/availability": row(U, *["A"] * 7),
    "POST /api/v1/room-bookings": BOOKING_WRITE,
    "POST /api/v1/room-bookings/recurring": BOOKING_WRITE,
    "GET /api/v1/room-bookings": BOOKING_LIST,
    "POST /api/v1/room-bookings/{room_booking_id}/cancel": BOOKING_WRITE,
    "POST /api/v1/room-bookings/{room_booking_id}/end": BOOKING_WRITE,
    "POST /api/v1/room-bookings/{room_booking_id}/extend": BOOKING_WRITE,
    # The room's QR key proves presence at the room; anyone signed in may check in there.
    "POST /api/v1/rooms/{room_id}/checkin": SIGNED_IN,
    # The door panel: its room key is the credential (no names in what it shows).
    "GET /api/v1/panel/{room_id}": PUBLIC,
    "POST /api/v1/panel/{room_id}/book-now": PUBLIC,
    "POST /api/v1/panel/{room_id}/checkin": PUBLIC,
    # The calendar feed: its secret token is the credential; an unknown one is a 404.
    "GET /api/v1/calendar/{token}.ics": row(*["404"] * 8),
    "POST /api/v1/me/calendar-token": row(U, *["ok"] * 6, "404"),  # admin: not a person
    "DELETE /api/v1/me/calendar-token": SIGNED_IN,
    "GET /api/v1/analytics/rooms": MANAGER_LIST,
    "GET /api/v1/rooms/{room_id}/panel-url": MANAGER_ONE,
    # SCIM provisioning (cloud/api/scim.py): the `scim` role of the sites in its token, which
    # none of these callers holds, and admins; refusals are SCIM errors. tests/cloud/scim
    # covers the scim role by site.
    "GET /scim/v2/ServiceProviderConfig": ADMIN_ONLY,
    "GET /scim/v2/ResourceTypes": ADMIN_ONLY,
    "GET /scim/v2/ResourceTypes/{resource_type}": ADMIN_ONLY,
    "GET /scim/v2/Schemas": ADMIN_ONLY,
    "GET /scim/v2/Schemas/{schema_id}": ADMIN_ONLY,
    "POST /scim/v2/.search": SCIM_LIST,
    "GET /scim/v2/Users": SCIM_LIST,
    "POST /scim/v2/Users": ADMIN_ONLY,
    "POST /scim/v2/Users/.search": SCIM_LIST,
    "GET /scim/v2/Users/{user_id}": SCIM_LIST,
    "PUT /scim/v2/Users/{user_id}": SCIM_LIST,
    "PATCH /scim/v2/Users/{user_id}": SCIM_LIST,
    "DELETE /scim/v2/Users/{user_id}": ADMIN_ONLY,
    "GET /scim/v2/Groups": SCIM_LIST,
    "POST /scim/v2/Groups": ADMIN_ONLY,
    "POST /scim/v2/Groups/.search": SCIM_LIST,
    "GET /scim/v2/Groups/{group_id}": SCIM_LIST,
    "PUT /scim/v2/Groups/{group_id}": SCIM_LIST,
    "PATCH /scim/v2/Groups/{group_id}": SCIM_LIST,
    "DELETE /scim/v2/Groups/{group_id}": ADMIN_ONLY,
}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    # The matrix is about the API's rules, not the backend: SQLite is enough.
    return f"sqlite+aiosqlite:///{tmp_path}/scoping.sqlite3"


def _layout(tag: str, slugs: list[str]) -> dict[str, Any]:
    return {
        "site": {"id": f"{tag}-site", "name": f"Site {tag}"},
        "buildings": [
            {
                "id": f"{tag}-bld",
                "name": "Gedung",
                "floors": [
                    {
                        "id": f"{tag}-floor",
                        "level": 1,
                        "name": "Lantai 1",
                        "zones": [
                            {
                                "id": f"{tag}-zone",
                                "name": "Zona",
                                "desks": [
                                    {"id": f"{tag}-desk-{s}", "node": f"{tag}-node-{s}"}
                                    for s in slugs
                                ],
                                "rooms": [
                                    {"id": f"{tag}-room-{s}", "name": "Ruang", "capacity": 6}
                                    for s in slugs
                                ],
                            }
                        ],
                    }
                ],
            }
        ],
    }


@dataclass
class World:
    """Ids of site A's resources, one set per role."""

    badges: dict[str, int]
    bookings: dict[str, int]
    webhooks: dict[str, int]
    letters: dict[str, int]
    replay_letters: dict[str, int]  # apart from `letters`: a DELETE may run first
    keys: CheckinKeys
    # Per role: reservation_id, car_booking_id, and the trip instance (trip_id, service_date).
    transport: dict[str, dict[str, str]] = field(default_factory=dict)
    grant: int = 0
    visits: dict[str, int] = field(default_factory=dict)
    # Per role: the ref of an open enrolment token for the role's node.
    tokens: dict[str, str] = field(default_factory=dict)
    room_bookings: dict[str, int] = field(default_factory=dict)
    # Per role: a SCIM group of site A holding the role's person.
    scim_groups: dict[str, str] = field(default_factory=dict)

    def path_params(self, role: str) -> dict[str, str]:
        return {
            **self.transport.get(role, {}),
            "desk_id": f"xa-desk-{role}",
            "node_id": f"xa-node-{role}",
            "floor_id": "xa-floor",
            "person_id": f"xa-p-{role}",
            "badge_id": str(self.badges[role]),
            "booking_id": str(self.bookings[role]),
            "webhook_id": str(self.webhooks[role]),
            # Site A's booking confirmations belong to xa-p-* people, never to the caller.
            "notification_id": "1",
            "letter_id": str(self.letters[role]),
            "vehicle_id": f"xa-car-{role}",
            "site": "xa-site",
            "trip_id": "K1-0-0600",
            "service_date": "20261207",
            "alert_id": "xa-no-alert",
            "door": f"xa-door-{role}",
            "group": f"xa-group-{role}",
            "grant": str(self.grant),
            "site_id": "xa-site",
            "day": HOLIDAY,
            "chain_node": f"xa-node-{role}",
            "agency": f"xa-agency-{role}",
            "ref": self.tokens.get(role, "0" * 16),
            "visit_id": str(self.visits[role]),
            "room_id": f"xa-room-{role}",
            "room_booking_id": str(self.room_bookings[role]),
            "token": "x" * 43,
            "user_id": f"xa-p-{role}",
            "group_id": self.scim_groups.get(role, "none"),
            "resource_type": "User",
            "schema_id": SCIM_USER,
        }


def _day(days: int, hour: int) -> datetime:
    local = datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Makassar"))
    return local.replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=days)


def _roster() -> str:
    lines = ["id,kind,name,role,site_id,host_person_id,badge_uid"]
    for i, role in enumerate(ROLES):
        lines.append(f"xa-p-{role},asn,Orang {role},asn,xa-site,,{BADGE_UID_A}{i:02X}")
    for role, (subject, roles, _) in TOKENS.items():
        if role == "admin":
            continue
        kind, host = ("guest", "xa-me-asn") if role == "guest" else ("asn", "")
        site = subject[:2] + "-site"
        lines.append(f"{subject},{kind},Pengguna {role},{roles[0]},{site},{host},")
    lines.append(f"xa-erase-admin,asn,Orang dihapus,asn,xa-site,,{BADGE_UID_A}{len(ROLES):02X}")
    lines.sort(key=lambda line: ",guest," in line)  # hosts first
    return "\n".join(lines) + "\n"


async def _seed(http: httpx.AsyncClient, settings: CloudSettings) -> World:
    engine = make_engine(settings.database_url)
    try:
        await apply_layout(engine, parse_layout(_layout("xa", list(ROLES))))
        await apply_layout(engine, parse_layout(_layout("xb", ["one"])))
        r = await http.post(
            "/api/v1/people/import", content=_roster(), headers={"content-type": "text/csv"}
        )
        assert r.status_code == 200, r.text
        badges = {
            b["person_id"][len("xa-p-") :]: b["id"]
            for b in (await http.get("/api/v1/badges")).json()
        }
        r = await http.post(
            "/api/v1/transport/gtfs",
            content=sample_zip(),
            headers={"content-type": "application/zip"},
        )
        assert r.status_code == 200, r.text
        start, end = _day(1, 9), _day(1, 12)
        bookings, webhooks = {}, {}
        for i, role in enumerate(ROLES):
            r = await http.post(
                "/api/v1/bookings",
                json={
                    "desk_id": f"xa-desk-{role}",
                    "person_id": f"xa-p-{role}",
                    "starts_at": start.isoformat(),
                    "ends_at": end.isoformat(),
                },
            )
            assert r.status_code == 201, r.text
            bookings[role] = r.json()["id"]
            r = await http.post("/api/v1/webhooks", json={"url": f"http://127.0.0.1:9/{role}"})
            webhooks[role] = r.json()["id"]
            r = await http.post("/api/v1/transport/vehicles", json=_car(f"xa-car-{role}", n=i))
            assert r.status_code == 201, r.text
            async with engine.begin() as conn:
                # Someone sits at each desk now: live occupancy carries their badge UID.
                await conn.execute(
                    update(Desk)
                    .where(Desk.id == f"xa-desk-{role}")
                    .values(
                        state="occupied",
                        occupant_badge=f"{BADGE_UID_A}{i:02X}",
                        checked_in_at=datetime.now(UTC),
                    )
                )
                await conn.execute(
                    NodeCredential.__table__.insert().values(
                        node_id=f"xa-node-{role}", password_hash="x", created_at=datetime.now(UTC)
                    )
                )
                # A dead letter from each role's node (admins only: raw payloads).
                await dead_letters.park(
                    conn,
                    [
                        dead_letters.Parked(
                            f"xa-{kind}-{role}",
                            f"xa-node-{role}",
                            f"ruang/v1/nodes/xa-node-{role}/events/checkin",
                            b"{}",
                            "test",
                            time.time(),
                        )
                        for kind in ("letter", "replay")
                    ],
                )
        async with engine.connect() as conn:
            parked = (await dead_letters.list_letters(conn, node=None, limit=100, offset=0))[1]
            letters, replay_letters = (
                {
                    row["message_id"].split("-", 2)[2]: row["id"]
                    for row in parked
                    if row["message_id"].startswith(f"xa-{kind}-")
                }
                for kind in ("letter", "replay")
            )
        grant = await _seed_access(http, engine)
        visits = {}
        for role in ROLES:
            r = await http.post("/api/v1/visits", json=_visit(host=f"xa-p-{role}"))
            assert r.status_code == 201, r.text
            visits[role] = r.json()["id"]
    finally:
        await engine.dispose()
    keys = CheckinKeys.from_settings(settings)
    transport = await _seed_transport(http, settings)
    tokens = await _seed_tokens(http)
    room_bookings = {}
    for role in ROLES:
        r = await http.post(
            "/api/v1/room-bookings",
            json={
                "room_id": f"xa-room-{role}",
                "person_id": f"xa-p-{role}",
                "starts_at": start.isoformat(),
                "ends_at": end.isoformat(),
            },
        )
        assert r.status_code == 201, r.text
        room_bookings[role] = r.json()["id"]
    scim_groups = {}
    for role in ROLES:
        group = {
            "schemas": [SCIM_GROUP],
            "displayName": f"xa-team-{role}",
            "members": [{"value": f"xa-p-{role}"}],
            SCIM_RUANG_GROUP: {"site": "xa-site"},
        }
        r = await http.post("/scim/v2/Groups", json=group)
        assert r.status_code == 201, r.text
        scim_groups[role] = r.json()["id"]
    return World(
        badges,
        bookings,
        webhooks,
        letters,
        replay_letters,
        keys,
        transport,
        grant,
        visits=visits,
        tokens=tokens,
        room_bookings=room_bookings,
        scim_groups=scim_groups,
    )


async def _seed_tokens(http: httpx.AsyncClient) -> dict[str, str]:
    """Per role an open enrolment token for the role's node (site A), by its ref."""
    for role in ROLES:
        r = await http.post("/api/v1/enrolment-tokens", json={"node_id": f"xa-node-{role}"})
        assert r.status_code == 201, r.text
    listed = (await http.get("/api/v1/enrolment-tokens")).json()
    refs: dict[str, str] = {}
    for token in listed:  # newest first: the ones just made win
        role = token["node_id"].removeprefix("xa-node-")
        if role in ROLES and token["state"] == "open":
            refs.setdefault(role, token["ref"])
    return refs


def _visit(host: str | None = None) -> dict[str, Any]:
    """A visit of today, now on (so reception may check it in)."""
    start = datetime.now(UTC) - timedelta(minutes=5)
    body = {
        "guest_name": "Tamu Uji",
        "guest_email": "tamu@mitra.example",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
    }
    return body | ({"host_person_id": host} if host else {})  # fmt: skip


async def _seed_transport(http: httpx.AsyncClient, settings: CloudSettings) -> dict[str, Any]:
    """Per role a seat and a car booking of site A's person on site A's pool car; one
    returned car trip (so trip logs list site A)."""
    engine = make_engine(settings.database_url)
    try:
        # The schedule and the pool cars xa-car-{role} are _seed's; one more car for a trip log.
        trip = await future_trip(engine)
        await add_vehicle(engine, "xa-car-trips", "poolcar", 5, site="xa-site")
        out: dict[str, Any] = {}
        for role in ROLES:
            r = await http.post(
                "/api/v1/transport/reservations", json=reservation(trip, f"xa-p-{role}")
            )
            assert r.status_code == 201, r.text
            car = _car_booking(f"xa-p-{role}", f"xa-car-{role}", 1)
            c = await http.post("/api/v1/transport/car-bookings", json=car)
            assert c.status_code == 201, c.text
            out[role] = {
                "reservation_id": str(r.json()["id"]),
                "car_booking_id": str(c.json()["id"]),
                "trip_id": trip.trip_id,
                "service_date": trip.service_date,
                "from_stop": trip.stops[0],
            }
        c = await http.post(
            "/api/v1/transport/car-bookings", json=_car_booking("xa-p-admin", "xa-car-trips", 0)
        )
        await http.post(f"/api/v1/transport/car-bookings/{c.json()['id']}/approve")
        async with engine.begin() as conn:
            now = datetime.now(UTC)
            assert await record_pickup(conn, c.json()["id"], "xa-car-trips", now) == "picked_up"
            assert await record_return(conn, c.json()["id"], "xa-car-trips", now) == "returned"
    finally:
        await engine.dispose()
    return out


def _car_booking(person: str | None, car: str, days: int) -> dict[str, Any]:
    start = _day(days, 23) if days else datetime.now(UTC) + timedelta(minutes=1)
    body = {
        "vehicle_id": car,
        "purpose": "Dinas",
        "destination": "Balikpapan",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(minutes=30)).isoformat(),
    }
    return body if person is None else {**body, "person_id": person}


async def _seed_access(http: httpx.AsyncClient, engine: AsyncEngine) -> int:
    """Site A's doors, groups, a grant, a holiday and a node's audit chain, for admins' calls."""
    for door in ("xa-door-admin", "xa-door-keep"):
        r = await http.put(f"/api/v1/access/doors/{door}", json={"site_id": "xa-site", "name": "D"})
        assert r.status_code == 200, r.text
    for group in ("xa-group-admin", "xa-group-keep"):
        r = await http.put(
            f"/api/v1/access/groups/{group}",
            json={"site_id": "xa-site", "name": "G", "rule": "role", "value": "asn"},
        )
        assert r.status_code == 200, r.text  # fmt: skip
    r = await http.put("/api/v1/access/grants", json=ACCESS_GRANT)
    assert r.status_code == 200, r.text
    grant = int(r.json()["id"])
    r = await http.put(
        "/api/v1/access/holidays", json={"site_id": "xa-site", "day": HOLIDAY, "name": "Libur"}
    )
    assert r.status_code == 200, r.text  # fmt: skip
    r = await http.put("/api/v1/attendance/agencies/xa-agency-keep", json={"receiver": "e-K"})
    assert r.status_code == 200, r.text
    async with engine.begin() as conn:
        await conn.execute(
            ACCESS_CHAINS.insert().values(
                node="xa-node-admin", verified_seq=0, verified_hash="0" * 64
            )
        )
    return grant


def _car(vehicle_id: str, n: int) -> dict[str, Any]:
    return {
        "id": vehicle_id,
        "kind": "poolcar",
        "label": "Mobil dinas",
        "seats": 4,
        "plate": f"KT {1000 + n} XA",
        "site_id": "xa-site",
    }


def _weekday(days: int) -> str:
    """A weekday `days` or more ahead (the sample schedule runs Monday to Friday)."""
    day = _day(days, 12).date()
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day.isoformat()


def _request(op: str, role: str, world: World) -> dict[str, Any]:
    """method, url, params and body for `op` as `role`, aimed at site A's resources."""
    method, path = op.split(" ", 1)
    n = ROLES.index(role)
    params = world.path_params(role)
    if op.endswith("/replay"):
        params["letter_id"] = str(world.replay_letters[role])
    if op.endswith("/erase"):
        # A person of its own: erasing xa-p-<role> would leave later operations without it.
        params["person_id"] = f"xa-erase-{role}"
    url = path.format(**params)
    start, end = _day(2, 9), _day(2, 12)
    week = (_day(3, 0).date().isoformat(), _day(9, 0).date().isoformat())
    frame = {"from": _day(-7, 0).isoformat(), "to": _day(0, 0).isoformat()}
    params: dict[str, Any] = {
        "GET /api/v1/badges/allowlist": {"node": f"xa-node-{role}"},
        "GET /api/v1/availability": {"start": start.isoformat(), "end": end.isoformat()},
        "GET /api/v1/analytics/utilisation": frame,
        "GET /api/v1/analytics/releases": {**frame, "building": "xa-bld"},
        "GET /api/v1/analytics/booking-sensor-matrix": {**frame, "building": "xa-bld"},
        "GET /api/v1/analytics/heatmap": {**frame, "building": "xa-bld"},
        "GET /api/v1/transport/trips/{trip_id}": {"date": _weekday(1)},
        "GET /api/v1/transport/trip-finder": {"from_stop": "HA-BLOK-A", "date": _weekday(1)},
        "GET /api/v1/transport/pool-cars/free": {"from": start.isoformat(), "to": end.isoformat()},
        "GET /api/v1/analytics/transport/ridership": frame,
        "GET /api/v1/analytics/transport/routes": frame,
        "GET /api/v1/analytics/transport/pool-cars": frame,
        "GET /api/v1/access/holidays": {"site_id": "xa-site"},
        "GET /api/v1/attendance": ATTENDANCE_RANGE,
        "GET /api/v1/rooms/availability": {"start": start.isoformat(), "end": end.isoformat()},
        "GET /api/v1/analytics/rooms": frame,
        "GET /api/v1/panel/{room_id}": {"k": panel_key(world.keys, f"xa-room-{role}")},
        "POST /api/v1/panel/{room_id}/book-now": {"k": panel_key(world.keys, f"xa-room-{role}")},
        "POST /api/v1/panel/{room_id}/checkin": {"k": panel_key(world.keys, f"xa-room-{role}")},
    }.get(op, {})
    booking = {"desk_id": f"xa-desk-{role}", "person_id": f"xa-p-{role}"}
    body: Any = {
        "POST /api/v1/desks/{desk_id}/led": {"r": 0, "g": 255, "b": 0},
        "POST /api/v1/desks/{desk_id}/checkin": {"key": world.keys.key(f"xa-desk-{role}")},
        "PUT /api/v1/nodes/{node_id}/config": {"config": {"health_interval_s": 30}},
        "POST /api/v1/enrolment-tokens": {"node_id": f"xa-node-{role}"},
        "POST /api/v1/nodes/{node_id}/config/check": {"text": '{"away_s": 60}'},
        "POST /api/v1/enroll": {"token": "not-a-token"},
        "POST /api/v1/badges": {
            "kind": "nfc",
            "uid": f"04AB000000{n:02X}",
            "person_id": f"xa-p-{role}",
        },
        "POST /api/v1/badges/{badge_id}/replace": {"kind": "nfc", "uid": f"04AC000000{n:02X}"},
        "POST /api/v1/bookings": {
            **booking,
            "starts_at": start.isoformat(),
            "ends_at": end.isoformat(),
        },
        "POST /api/v1/bookings/recurring": {
            **booking,
            "weekdays": ["mon", "tue", "wed", "thu", "fri"],
            "first_day": week[0],
            "last_day": week[1],
            "start_time": "13:00",
            "end_time": "15:00",
        },
        "POST /api/v1/bookings/import": {"rows": [{
            **booking,
            "starts_at": _day(-2, 9).isoformat(),
            "ends_at": _day(-2, 12).isoformat(),
            "outcome": "no_show",
        }]},
        "POST /api/v1/bookings/{booking_id}/extend": {"ends_at": _day(1, 13).isoformat()},
        "POST /api/v1/webhooks": {"url": f"http://127.0.0.1:9/new-{role}"},
        "PUT /api/v1/me/notification-preferences": {"language": "en"},
        "POST /api/v1/transport/vehicles": _car(f"xa-newcar-{role}", n=100 + n),
        "PATCH /api/v1/transport/vehicles/{vehicle_id}": {"state": "off_duty"},
        "PUT /api/v1/transport/sites/{site}/stops": [{"stop_id": "KIPP-TERM", "walk_m": 150}],
        "POST /api/v1/transport/reservations": {
            **reservation(_other_trip(world, role), f"xa-p-{role}"),
        },
        "POST /api/v1/transport/car-bookings": _car_booking(f"xa-p-{role}", f"xa-car-{role}", 2),
        "PUT /api/v1/access/doors/{door}": {"site_id": "xa-site", "name": "Pintu"},
        "PUT /api/v1/access/groups/{group}": {"site_id": "xa-site", "name": "G", "rule": "role",
                                              "value": "asn"},
        "PUT /api/v1/access/grants": ACCESS_GRANT,
        "PUT /api/v1/access/holidays": {"site_id": "xa-site", "day": "2030-01-02", "name": "L"},
        "PUT /api/v1/attendance/agencies/{agency}": {"receiver": "e-Kinerja"},
        "POST /api/v1/visits": _visit(),
        "PUT /api/v1/visits/{visit_id}": _visit(),
        "POST /api/v1/reception/checkin": {"visit_id": world.visits[role]},
        "POST /api/v1/room-bookings": {
            "room_id": f"xa-room-{role}",
            "person_id": f"xa-p-{role}",
            "starts_at": start.isoformat(),
            "ends_at": end.isoformat(),
        },
        "POST /api/v1/room-bookings/recurring": {
            "room_id": f"xa-room-{role}",
            "person_id": f"xa-p-{role}",
            "frequency": "weekly",
            "first_day": week[0],
            "until": week[1],
            "start_time": "13:00",
            "end_time": "15:00",
        },
        "POST /api/v1/room-bookings/{room_booking_id}/extend": {"ends_at": _day(1, 13).isoformat()},
        "POST /api/v1/rooms/{room_id}/checkin": {"key": world.keys.key(f"room:xa-room-{role}")},
        "POST /api/v1/panel/{room_id}/book-now": {"minutes": 15},
        "POST /scim/v2/.search": SCIM_SEARCH,
        "POST /scim/v2/Users/.search": {**SCIM_SEARCH, "filter": 'userName sw "xa-"'},
        "POST /scim/v2/Groups/.search": {**SCIM_SEARCH, "filter": 'displayName sw "xa-"'},
        "POST /scim/v2/Users": {"schemas": [SCIM_USER], "userName": f"xa-new-{role}",
                                "urn:ruang:params:scim:schemas:extension:2.0:User":
                                    {"site": "xa-site"}},
        "PUT /scim/v2/Users/{user_id}": {"schemas": [SCIM_USER], "userName": f"xa-p-{role}",
                                         "displayName": f"Orang {role}"},
        "PATCH /scim/v2/Users/{user_id}": SCIM_PATCH,
        "POST /scim/v2/Groups": {"schemas": [SCIM_GROUP], "displayName": f"xa-new-{role}"},
        "PUT /scim/v2/Groups/{group_id}": {"schemas": [SCIM_GROUP],
                                           "displayName": f"xa-team-{role}"},
        "PATCH /scim/v2/Groups/{group_id}": {**SCIM_PATCH, "Operations": [
            {"op": "replace", "path": "displayName", "value": f"xa-team-{role}-2"}]},
    }.get(op)  # fmt: skip
    request: dict[str, Any] = {"method": method, "url": url, "params": params}
    if op == "POST /api/v1/transport/gtfs":
        request["content"] = sample_zip()
        request["headers"] = {"content-type": "application/zip"}
    elif op in ("POST /api/v1/people/import", "POST /api/v1/people/import/preview"):
        request["content"] = f"id,kind,name,role,site_id\nxa-p-{role},asn,Nama Baru,asn,xa-site\n"
        request["headers"] = {"content-type": "text/csv"}
    elif body is not None:
        request["json"] = body
    return request


def _other_trip(world: World, role: str) -> TripRef:
    # The seeded trip again: who may ask is the matter here (then "one per person": a 409).
    seeded = world.transport[role]
    return TripRef(seeded["trip_id"], seeded["service_date"], (seeded["from_stop"],), ())


def _judge(expected: str, status: int, body: str, role: str) -> str | None:
    """Why the answer breaks the expectation, or None."""
    if role not in MAY_SEE_BADGES and BADGE_UID_A in body:
        return f"{status}: shows site A's badge UIDs"
    if status >= 500:
        return f"{status}: server error"
    if expected in ("ok", "A", "-"):
        if status in (401, 403, 404):
            return f"refused with {status}"
        if expected == "A" and "xa-" not in body:
            return f"{status}: site A's resources missing"
        if expected == "-" and "xa-" in body:
            return f"{status}: shows site A's resources"
        return None
    return None if str(status) == expected else f"got {status}"


async def _call(
    http: httpx.AsyncClient, request: dict[str, Any], streams: list[httpx.Response]
) -> tuple[int, str]:
    response = await http.send(http.build_request(**request), stream=True)
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        # An open stream: its status is the answer. Kept open until the server stops,
        # which ends it (see test_live); a closed one would idle until its keep-alive.
        streams.append(response)
        return response.status_code, ""
    try:
        return response.status_code, (await response.aread()).decode(errors="replace")
    finally:
        await response.aclose()


def _operations(spec: dict[str, Any]) -> list[str]:
    return [f"{method.upper()} {path}" for path, ops in spec["paths"].items() for method in ops]


async def test_every_operation_has_a_scope_decision_for_every_role(
    settings: CloudSettings,
) -> None:
    failures: list[str] = []
    streams: list[httpx.Response] = []
    # The webhooks the matrix subscribes point at a closed loopback port.
    settings = settings.model_copy(update={"webhook_allowed_hosts": ["127.0.0.1"]})
    async with (
        serving(settings) as (base_url, task),
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        spec = (await http.get("/openapi.json")).json()
        operations = _operations(spec)
        undecided = sorted(set(operations) - set(EXPECTED))
        assert not undecided, f"no site/role decision in EXPECTED for: {undecided}"
        assert not set(EXPECTED) - set(operations), "EXPECTED names operations that are gone"
        admin = auth_headers(settings)
        async with httpx.AsyncClient(base_url=base_url, headers=admin, timeout=30) as as_admin:
            world = await _seed(as_admin, settings)
        headers = {role: auth_headers(settings, *token) for role, token in TOKENS.items()}
        for op in operations:
            for role in ROLES:
                request = _request(op, role, world)
                if role != "anonymous":
                    request["headers"] = {**request.get("headers", {}), **headers[role]}
                status, body = await _call(http, request, streams)
                why = _judge(EXPECTED[op][role], status, body, role)
                if op == "POST /api/v1/me/sign-out-everywhere" and role in TOKENS:
                    # That ended the role's token: the rest of the matrix needs a new one.
                    headers[role] = auth_headers(settings, *TOKENS[role])
                if why:
                    failures.append(
                        f"{op} as {role}: expected {EXPECTED[op][role]}, {why} {body[:160]!r}"
                    )
        task.cancel()  # with the streams still open: stopping the server ends them
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for stream in streams:
            await stream.aclose()
    assert not failures, "\n".join(failures)
