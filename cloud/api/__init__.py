"""HTTP routes of the cloud API, one module per resource; `router` gathers them."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.api import (
    analytics,
    bookings,
    desks,
    enrolment,
    health,
    ingest,
    node_config,
    nodes,
    people,
    snapshots,
    webhooks,
)

router = APIRouter()
router.include_router(health.router)
router.include_router(desks.router, prefix="/api/v1")
router.include_router(nodes.router, prefix="/api/v1")
router.include_router(ingest.router, prefix="/api/v1")
router.include_router(people.router, prefix="/api/v1")
router.include_router(bookings.router, prefix="/api/v1")
router.include_router(enrolment.router, prefix="/api/v1")
router.include_router(node_config.router, prefix="/api/v1")
router.include_router(analytics.router, prefix="/api/v1")
router.include_router(webhooks.router, prefix="/api/v1")
router.include_router(snapshots.router, prefix="/api/v1")
