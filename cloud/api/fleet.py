"""Fleet routes for technicians: every edge node's health, its devices and a health graph.

The logic (state and reasons, placement, history) is in cloud/fleet/health.py; see
docs/fleet.md for the fields and thresholds.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from cloud.api_types import Problem
from cloud.deps import DbDep, PseudonymsDep, SettingsDep
from cloud.fleet import health as fleet
from cloud.fleet.schemas import FleetNodeDetailPublic, FleetNodePublic, HealthHistoryPublic
from cloud.people import access
from cloud.people.auth import CurrentUser
from cloud.problems import ProblemError
from cloud.settings import CloudSettings

router = APIRouter(tags=["fleet"])
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such node"},
}


def _unreturned(settings: CloudSettings) -> timedelta:
    return timedelta(hours=settings.poolcar_unreturned_after_h)


def _unknown(node_id: str) -> ProblemError:
    return ProblemError(404, f"no node {node_id!r} has ever reported", title="Unknown node")


@router.get("/fleet/nodes", response_model=list[FleetNodePublic])
async def list_fleet_nodes(
    conn: DbDep,
    user: CurrentUser,
    settings: SettingsDep,
    site: Annotated[str | None, Query(description="only nodes serving this site")] = None,
) -> list[FleetNodePublic]:
    nodes = await fleet.list_nodes(conn, site, unreturned_after=_unreturned(settings))
    return await access.only_nodes(conn, user, nodes, lambda n: n.id)


@router.get("/fleet/nodes/{node_id}", response_model=FleetNodeDetailPublic, responses=_NOT_FOUND)
async def get_fleet_node(
    conn: DbDep,
    node_id: str,
    settings: SettingsDep,
    user: CurrentUser,
    pseudonyms: PseudonymsDep,
) -> FleetNodeDetailPublic:
    node = await fleet.get_node(conn, node_id, unreturned_after=_unreturned(settings))
    if node is None:
        raise _unknown(node_id)
    if not user.is_admin:
        # A BLE badge reports under its badge id; technicians and managers need its battery,
        # not which card it is (docs/privacy.md): they see the time series' pseudonym.
        for device in node.devices:
            if device.kind == "ble_badge":
                device.device = pseudonyms.badge(f"ble:{device.device}")
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
