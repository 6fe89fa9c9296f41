"""HTTP routes of the cloud API, one module per resource; `router` gathers them."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.api import (
    analytics,
    bookings,
    checkin,
    dead_letters,
    desks,
    enrolment,
    fleet,
    floors,
    health,
    ingest,
    kiosk,
    me,
    node_config,
    nodes,
    notifications,
    people,
    rooms,
    snapshots,
    transport,
    webhooks,
)
from cloud.api.scoping import scoped
from cloud.people.auth import require_roles

# Role and site checks that hold for a whole resource (cloud/people/access.py): the role
# (403), and every desk/floor/node/badge/building/site the request names in its
# path or query lying in the token's sites (404). Listings filter in the routes.
MANAGERS = [scoped("facility_manager")]
OPERATORS = [scoped("technician", "facility_manager")]
ADMINS = [require_roles("admin")]

router = APIRouter()
router.include_router(health.router)
# Desk and node state carry occupants' badge ids: operators only (the dashboards
# show people the per-role floor map instead).
router.include_router(desks.router, prefix="/api/v1", dependencies=OPERATORS)
router.include_router(nodes.router, prefix="/api/v1", dependencies=OPERATORS)
# Counters of the whole ingestion, every site at once: admins only.
router.include_router(ingest.router, prefix="/api/v1", dependencies=ADMINS)
router.include_router(me.router, prefix="/api/v1")
router.include_router(people.router, prefix="/api/v1", dependencies=MANAGERS)
router.include_router(bookings.router, prefix="/api/v1")
router.include_router(enrolment.router, prefix="/api/v1")
router.include_router(node_config.router, prefix="/api/v1", dependencies=OPERATORS)
router.include_router(fleet.router, prefix="/api/v1", dependencies=OPERATORS)
router.include_router(analytics.router, prefix="/api/v1", dependencies=MANAGERS)
router.include_router(webhooks.router, prefix="/api/v1", dependencies=ADMINS)
# Dead letters hold raw payloads (badge ids among them): admins only.
router.include_router(dead_letters.router, prefix="/api/v1", dependencies=ADMINS)
# The caller's own notifications and preferences; the delivery log checks admin per route.
router.include_router(notifications.router, prefix="/api/v1")
router.include_router(snapshots.router, prefix="/api/v1")
router.include_router(floors.router, prefix="/api/v1")
router.include_router(checkin.router, prefix="/api/v1")
# Meeting rooms: bookings for signed-in people; the door panel by its room key and the
# calendar feed by its secret token (no sign-in); room analytics for managers.
router.include_router(rooms.router, prefix="/api/v1")
router.include_router(rooms.panel_router, prefix="/api/v1")
router.include_router(rooms.managers_router, prefix="/api/v1", dependencies=MANAGERS)
# The schedule for every signed-in user; vehicles per site, imports for admins (per route).
router.include_router(transport.router, prefix="/api/v1")
# No authentication: the lobby kiosk's counts (no personal data, see cloud/buildings/kiosk.py).
router.include_router(kiosk.router, prefix="/api/v1")
