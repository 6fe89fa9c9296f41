"""HTTP routes of the cloud API, one module per resource; `router` gathers them."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.api import (
    access_rights,
    analytics,
    analytics_transport,
    attendance,
    audit,
    booking_import,
    bookings,
    brick,
    checkin,
    dead_letters,
    desks,
    enrolment,
    fleet,
    floors,
    health,
    identity,
    ingest,
    kiosk,
    me,
    metrics,
    node_config,
    nodes,
    notifications,
    people,
    privacy,
    rooms,
    scim,
    scim_groups,
    snapshots,
    transport,
    transport_live,
    transport_network,
    transport_seats,
    visitors,
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
# Prometheus scrapes: no token, answered to RUANG_METRICS_ALLOW_FROM only (see the route).
router.include_router(metrics.router)
# SCIM 2.0 provisioning by the ministries' identity systems (role `scim`, their sites) and
# admins; the routes check the role themselves so refusals answer as SCIM errors. Early in
# the list: a request is matched route by route, and a sync sends thousands of them.
router.include_router(scim.router)
router.include_router(scim_groups.router)
router.include_router(scim.fallback)  # after both: SCIM 404/405 for any other SCIM path
# Desk and node state carry occupants' badge ids: operators only (the dashboards
# show people the per-role floor map instead).
router.include_router(desks.router, prefix="/api/v1", dependencies=OPERATORS)
router.include_router(nodes.router, prefix="/api/v1", dependencies=OPERATORS)
# Counters of the whole ingestion, every site at once: admins only.
router.include_router(ingest.router, prefix="/api/v1", dependencies=ADMINS)
router.include_router(me.router, prefix="/api/v1")
router.include_router(identity.router, prefix="/api/v1")
router.include_router(people.router, prefix="/api/v1", dependencies=MANAGERS)
# Data-subject rights (own export; erasure by admins) and the access audit (dpo, admins).
router.include_router(privacy.router, prefix="/api/v1")
# Migrating finished bookings from a previous system: admins only.
router.include_router(booking_import.router, prefix="/api/v1", dependencies=ADMINS)
router.include_router(bookings.router, prefix="/api/v1")
router.include_router(enrolment.router, prefix="/api/v1")
router.include_router(node_config.router, prefix="/api/v1", dependencies=OPERATORS)
router.include_router(fleet.router, prefix="/api/v1", dependencies=OPERATORS)
router.include_router(analytics.router, prefix="/api/v1", dependencies=MANAGERS)
# Office transport is one service for every agency and site: its figures are not
# site-bound, so any facility manager and the dispatchers read them.
TRANSPORT_OPERATORS = [scoped("facility_manager", "dispatcher")]
router.include_router(
    analytics_transport.router, prefix="/api/v1", dependencies=TRANSPORT_OPERATORS
)
router.include_router(transport_network.router, prefix="/api/v1")
router.include_router(webhooks.router, prefix="/api/v1", dependencies=ADMINS)
# Dead letters hold raw payloads (badge ids among them): admins only.
router.include_router(dead_letters.router, prefix="/api/v1", dependencies=ADMINS)
# The caller's own notifications and preferences; the delivery log checks admin per route.
router.include_router(notifications.router, prefix="/api/v1")
router.include_router(snapshots.router, prefix="/api/v1")
# Door rights and the access log (who opened which door): the security role of the site.
router.include_router(access_rights.router, prefix="/api/v1", dependencies=[scoped("security")])
# The audit log of admin actions: admins, and the security role for its sites.
router.include_router(audit.router, prefix="/api/v1", dependencies=[scoped("security")])
router.include_router(floors.router, prefix="/api/v1")
# The building model in Brick Schema (open data, nothing personal): the site's operators.
router.include_router(brick.router, prefix="/api/v1")
router.include_router(checkin.router, prefix="/api/v1")
# Meeting rooms: bookings for signed-in people; the door panel by its room key and the
# calendar feed by its secret token (no sign-in); room analytics for managers.
router.include_router(rooms.router, prefix="/api/v1")
router.include_router(rooms.panel_router, prefix="/api/v1")
router.include_router(rooms.managers_router, prefix="/api/v1", dependencies=MANAGERS)
# The schedule for every signed-in user; vehicles per site, imports for admins (per route).
router.include_router(transport.router, prefix="/api/v1")
# Hosts' own visits; reception of a site for today's list and check-in/out (per route).
router.include_router(visitors.router, prefix="/api/v1")
# No authentication: the lobby kiosk's counts (no personal data, see cloud/buildings/kiosk.py).
router.include_router(kiosk.router, prefix="/api/v1")
# Live transport: the dispatcher's routes (roles in cloud/api/transport_live.py) and the
# public departures boards and GTFS-Realtime feeds (no personal data, no sign-in).
router.include_router(transport_live.router, prefix="/api/v1")
router.include_router(transport_live.public, prefix="/api/v1")
# Seats and pool cars: every signed-in person for themselves; who sees and decides what
# else is cloud/transport/seat_access.py.
router.include_router(transport_seats.router, prefix="/api/v1")
# Attendance export to agencies' performance systems: opt-in per agency; admins and the
# dpo role export, admins opt agencies in and out (roles per route).
router.include_router(attendance.router, prefix="/api/v1")
