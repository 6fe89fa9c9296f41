"""Fleet routes for technicians: every edge node's health, its devices and a health graph.

The logic (state and reasons, placement, history) is in cloud/fleet/health.py; see
docs/fleet.md for the fields and thresholds.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from cloud.api_types import Problem
from cloud.deps import DbDep
from cloud.fleet import health as fleet
from cloud.fleet.schemas import FleetNodeDetailPublic, FleetNodePublic, HealthHistoryPublic
from cloud.people import access
from cloud.people.auth import CurrentUser
from cloud.problems import ProblemError

router = APIRouter(tags=["fleet"])
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such node"},
}


def _unknown(node_id: str) -> ProblemError:
    return ProblemError(404, f"no node {node_id!r} has ever reported", title="Unknown node")


@router.get("/fleet/nodes", response_model=list[FleetNodePublic])
async def list_fleet_nodes(
    conn: DbDep,
    user: CurrentUser,
    site: Annotated[str | None, Query(description="only nodes serving this site")] = None,
) -> list[FleetNodePublic]:
    return await access.only_nodes(conn, user, await fleet.list_nodes(conn, site), lambda n: n.id)


@router.get("/fleet/nodes/{node_id}", response_model=FleetNodeDetailPublic, responses=_NOT_FOUND)
async def get_fleet_node(conn: DbDep, node_id: str) -> FleetNodeDetailPublic:
    node = await fleet.get_node(conn, node_id)
    if node is None:
        raise _unknown(node_id)
    return node


@router.get(
    "/fleet/nodes/{node_id}/health", response_model=HealthHistoryPublic, responses=_NOT_FOUND
)
async def get_fleet_node_health(
    conn: DbDep,
    node_id: str,
    hours: Annotated[float, Query(gt=0, le=fleet.MAX_HISTORY_HOURS)] = 6,
) -> HealthHistoryPublic:
    if not await fleet.node_exists(conn, node_id):
        raise _unknown(node_id)
    samples = await fleet.health_history(conn, node_id, hours)
    return HealthHistoryPublic(node=node_id, hours=hours, samples=samples)
