"""The technician's fleet view: each edge node's health, devices and a verdict, from SQL.

Ingestion (cloud/ingest/apply.py) keeps the latest NodeHealth on the `nodes` row, the
latest DeviceHealth per device in `device_status`, and a thinned history in
`node_health_samples` (pruned by cloud/ingest/sweep.py); this module reads them back for
the API and turns them into one state per node ("ok" < "warning" < "alarm" < "offline") with the
reasons behind it. The thresholds are documented in docs/fleet.md.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping, case, func, select, union
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.models import Building, Floor, Room, Zone
from cloud.db.tables import (
    ACCESS_CHAINS,
    CAR_BOOKINGS,
    DEAD_LETTERS,
    DESKS,
    DEVICE_STATUS,
    NODE_CONFIGS,
    NODES,
)
from cloud.db.tables import NODE_HEALTH_SAMPLES as HEALTH_SAMPLES
from cloud.db.tables import TRANSPORT_VEHICLES as VEHICLES
from cloud.fleet.schemas import (
    DeskUnitStatusPublic,
    DeviceStatusPublic,
    FleetCounts,
    FleetNodeDetailPublic,
    FleetNodePublic,
    FleetReason,
    FleetState,
    HealthSamplePublic,
    NodeHealthPublic,
)

# Beyond these a node is flagged "warning" (docs/fleet.md explains each).
CLOCK_OFFSET_WARN_S = 5.0
OUTBOX_DEPTH_WARN = 1000
DISK_FREE_WARN_BYTES = 500 * 1000 * 1000  # 500 MB
MAX_HISTORY_HOURS = 48.0
# A pool car still out past its booking's end: "overdue" (warning) on the node riding
# in it; this long after the end, "unreturned" (alarm). docs/transport.md, "Pool cars".
POOLCAR_UNRETURNED_AFTER = timedelta(hours=2)

_SEVERITY: dict[FleetState, int] = {"ok": 0, "warning": 1, "alarm": 2, "offline": 3}

_DEVICES = (
    select(
        DEVICE_STATUS.c.node_id,
        func.count().label("total"),
        func.sum(case((DEVICE_STATUS.c.online.is_(True), 1), else_=0)).label("online"),
    )
    .group_by(DEVICE_STATUS.c.node_id)
    .subquery("device_counts")
)
_UNITS = (
    select(
        DESKS.c.node_id,
        func.count().label("total"),
        func.sum(case((DESKS.c.unit_online.is_(True), 1), else_=0)).label("online"),
        func.sum(case((DESKS.c.unit_online.is_(False), 1), else_=0)).label("offline"),
    )
    .group_by(DESKS.c.node_id)
    .subquery("unit_counts")
)
_DEAD = (
    select(DEAD_LETTERS.c.node, func.count().label("total"))
    .where(DEAD_LETTERS.c.node.is_not(None))
    .group_by(DEAD_LETTERS.c.node)
    .subquery("dead_letter_counts")
)
_NODE_ROWS = (
    select(
        NODES,
        func.coalesce(_DEVICES.c.total, 0).label("dev_total"),
        func.coalesce(_DEVICES.c.online, 0).label("dev_online"),
        func.coalesce(_UNITS.c.total, 0).label("unit_total"),
        func.coalesce(_UNITS.c.online, 0).label("unit_online"),
        func.coalesce(_UNITS.c.offline, 0).label("unit_offline"),
        NODE_CONFIGS.c.version.label("desired_config_version"),
        func.coalesce(_DEAD.c.total, 0).label("dead_letters"),
        ACCESS_CHAINS.c.broken_seq.label("audit_broken_seq"),
        ACCESS_CHAINS.c.problem.label("audit_problem"),
        ACCESS_CHAINS.c.gap_since.label("audit_gap_since"),
        ACCESS_CHAINS.c.verified_seq.label("audit_verified_seq"),
    )
    .outerjoin(_DEVICES, _DEVICES.c.node_id == NODES.c.id)
    .outerjoin(_DEAD, _DEAD.c.node == NODES.c.id)
    .outerjoin(_UNITS, _UNITS.c.node_id == NODES.c.id)
    .outerjoin(NODE_CONFIGS, NODE_CONFIGS.c.node_id == NODES.c.id)
    .outerjoin(ACCESS_CHAINS, ACCESS_CHAINS.c.node == NODES.c.id)
    .order_by(NODES.c.id)
)
# Nodes are not placed in the layout themselves; the desks and rooms they serve are.
_PLACEMENT = union(
    select(DESKS.c.node_id.label("node"), Floor.id.label("floor"), Building.site_id.label("site"))
    .join(Floor, Floor.id == DESKS.c.floor_id)
    .join(Building, Building.id == Floor.building_id),
    select(Room.node_id.label("node"), Floor.id.label("floor"), Building.site_id.label("site"))
    .join(Zone, Zone.id == Room.zone_id)
    .join(Floor, Floor.id == Zone.floor_id)
    .join(Building, Building.id == Floor.building_id)
    .where(Room.node_id.is_not(None)),
).subquery("placement")


def assess(
    *,
    online: bool,
    alarms: Sequence[str],
    clock_offset_s: float | None,
    outbox_depth: int | None,
    disk_free_bytes: int | None,
    devices_offline: int,
    desk_units_offline: int,
    config_version: int | None,
    desired_config_version: int | None,
    dead_letters: int = 0,
    clock_skew: bool = False,
    audit_broken: str | None = None,
    audit_gap_after: int | None = None,
) -> tuple[FleetState, list[FleetReason]]:
    """The node's state (the worst of its reasons) and every reason, worst first."""
    reasons: list[FleetReason] = []
    if not online:
        reasons.append(FleetReason(code="offline", level="offline", detail="node offline"))
    reasons += [FleetReason(code="alarm", level="alarm", detail=a) for a in alarms]
    if clock_skew:
        # Its messages are refused (cloud/ingest/pipeline.py): nothing it says is applied.
        reasons.append(
            FleetReason(
                code="clock_skew",
                level="alarm",
                detail="edge clock outside the accepted window: its messages are refused",
            )
        )
    if audit_broken is not None:
        # Door decisions that do not chain (cloud/access/chain.py): stored and flagged.
        reasons.append(FleetReason(code="access_chain_broken", level="alarm", detail=audit_broken))
    if audit_gap_after is not None:
        reasons.append(
            FleetReason(
                code="access_chain_gap",
                level="alarm",
                detail=f"door decision {audit_gap_after + 1} missing from the audit chain",
            )
        )
    if dead_letters:
        reasons.append(
            FleetReason(
                code="dead_letters",
                level="alarm",
                detail=f"{dead_letters} message(s) could not be applied (dead letters)",
            )
        )
    if clock_offset_s is not None and abs(clock_offset_s) > CLOCK_OFFSET_WARN_S:
        side = "ahead of" if clock_offset_s > 0 else "behind"
        reasons.append(
            FleetReason(
                code="clock_offset",
                level="warning",
                detail=f"edge clock {abs(clock_offset_s):.1f} s {side} the cloud",
            )
        )
    if outbox_depth is not None and outbox_depth > OUTBOX_DEPTH_WARN:
        reasons.append(
            FleetReason(
                code="outbox_depth",
                level="warning",
                detail=f"{outbox_depth} messages waiting to upload",
            )
        )
    if devices_offline:
        reasons.append(
            FleetReason(
                code="devices_offline",
                level="warning",
                detail=f"{devices_offline} device(s) offline",
            )
        )
    if desk_units_offline:
        reasons.append(
            FleetReason(
                code="desk_units_offline",
                level="warning",
                detail=f"{desk_units_offline} desk unit(s) offline",
            )
        )
    if disk_free_bytes is not None and disk_free_bytes < DISK_FREE_WARN_BYTES:
        reasons.append(
            FleetReason(
                code="disk_free",
                level="warning",
                detail=f"{disk_free_bytes / 1e6:.0f} MB disk free",
            )
        )
    if desired_config_version is not None and config_version != desired_config_version:
        runs = "file config only" if config_version is None else f"config {config_version}"
        reasons.append(
            FleetReason(
                code="config_pending",
                level="warning",
                detail=f"runs {runs}, desired {desired_config_version}",
            )
        )
    state: FleetState = "ok"
    for reason in reasons:
        if _SEVERITY[reason.level] > _SEVERITY[state]:
            state = reason.level
    return state, reasons


async def _placements(
    conn: AsyncConnection, node_ids: Sequence[str] | None = None
) -> dict[str, tuple[set[str], set[str]]]:
    """{node: (floors, sites)} for nodes serving desks or rooms placed in the layout."""
    stmt = select(_PLACEMENT)
    if node_ids is not None:
        stmt = stmt.where(_PLACEMENT.c.node.in_(node_ids))
    out: dict[str, tuple[set[str], set[str]]] = {}
    for node, floor, site in await conn.execute(stmt):
        floors, sites = out.setdefault(node, (set(), set()))
        floors.add(floor)
        sites.add(site)
    return out


def _clock_skewed(row: RowMapping) -> bool:
    """A message was refused for the node's clock, and no health report was accepted since."""
    skew_at, health_at = row["clock_skew_at"], row["last_health_at"]
    return skew_at is not None and (health_at is None or skew_at >= health_at)


async def _car_reasons(
    conn: AsyncConnection, unreturned_after: timedelta, node_ids: Sequence[str] | None = None
) -> dict[str, list[FleetReason]]:
    """{node: reasons} for the nodes riding in pool cars that are out past their booking."""
    now = datetime.now(UTC)
    stmt = (
        select(
            VEHICLES.c.node_id, CAR_BOOKINGS.c.id, CAR_BOOKINGS.c.vehicle_id, CAR_BOOKINGS.c.ends_at
        )
        .join(VEHICLES, VEHICLES.c.id == CAR_BOOKINGS.c.vehicle_id)
        .where(
            CAR_BOOKINGS.c.status == "picked_up",
            CAR_BOOKINGS.c.ends_at < now,
            VEHICLES.c.node_id.is_not(None),
        )
    )
    if node_ids is not None:
        stmt = stmt.where(VEHICLES.c.node_id.in_(node_ids))
    out: dict[str, list[FleetReason]] = {}
    for node, booking, vehicle, ends_at in await conn.execute(stmt):
        late = now - ends_at
        unreturned = late > unreturned_after
        out.setdefault(node, []).append(
            FleetReason(
                code="poolcar_unreturned" if unreturned else "poolcar_overdue",
                level="alarm" if unreturned else "warning",
                detail=f"pool car {vehicle} (booking {booking}) not returned, "
                f"{late.total_seconds() / 60:.0f} min past its end",
            )
        )
    return out


def _with(node: dict[str, Any], extra: list[FleetReason]) -> dict[str, Any]:
    """The node with more reasons, its state the worst of them all."""
    if not extra:
        return node
    reasons = sorted([*node["reasons"], *extra], key=lambda r: -_SEVERITY[r.level])
    state = max([node["state"], *(r.level for r in extra)], key=lambda s: _SEVERITY[s])
    return {**node, "reasons": reasons, "state": state}


def _node(row: RowMapping, placement: tuple[set[str], set[str]] | None) -> dict[str, Any]:
    floors, sites = placement or (set(), set())
    health = row["health"] or {}
    alarms = list(row["alarms"] or [])
    dev_total, dev_online = int(row["dev_total"]), int(row["dev_online"])
    unit_offline = int(row["unit_offline"])
    state, reasons = assess(
        online=bool(row["online"]),
        alarms=alarms,
        clock_offset_s=row["clock_offset_s"],
        outbox_depth=row["outbox_depth"],
        disk_free_bytes=health.get("disk_free_bytes"),
        devices_offline=dev_total - dev_online,
        desk_units_offline=unit_offline,
        config_version=row["config_version"],
        desired_config_version=row["desired_config_version"],
        dead_letters=int(row["dead_letters"]),
        clock_skew=_clock_skewed(row),
        audit_broken=(
            None
            if row["audit_broken_seq"] is None
            else f"door decision {row['audit_broken_seq']}: {row['audit_problem']}"
        ),
        audit_gap_after=(
            None if row["audit_gap_since"] is None else int(row["audit_verified_seq"])
        ),
    )
    return {
        "id": row["id"],
        "online": bool(row["online"]),
        "last_seen": row["last_seen"],
        "sw_version": row["sw_version"],
        "config_version": row["config_version"],
        "desired_config_version": row["desired_config_version"],
        "outbox_depth": row["outbox_depth"],
        "clock_offset_s": row["clock_offset_s"],
        "last_health_at": row["last_health_at"],
        "alarms": alarms,
        "device_counts": FleetCounts(
            total=dev_total, online=dev_online, offline=dev_total - dev_online
        ),
        "desk_unit_counts": FleetCounts(
            total=int(row["unit_total"]), online=int(row["unit_online"]), offline=unit_offline
        ),
        # A node normally serves one site; if its desks span several, the first by id.
        "site": min(sites) if sites else None,
        "floors": sorted(floors),
        "state": state,
        "reasons": reasons,
    }


async def list_nodes(
    conn: AsyncConnection,
    site: str | None = None,
    *,
    unreturned_after: timedelta = POOLCAR_UNRETURNED_AFTER,
) -> list[FleetNodePublic]:
    rows = (await conn.execute(_NODE_ROWS)).mappings().all()
    placements = await _placements(conn)
    cars = await _car_reasons(conn, unreturned_after)
    out = []
    for row in rows:
        placement = placements.get(row["id"])
        if site is not None and (placement is None or site not in placement[1]):
            continue
        out.append(FleetNodePublic(**_with(_node(row, placement), cars.get(row["id"], []))))
    return out


async def get_node(
    conn: AsyncConnection,
    node_id: str,
    *,
    unreturned_after: timedelta = POOLCAR_UNRETURNED_AFTER,
) -> FleetNodeDetailPublic | None:
    row = (await conn.execute(_NODE_ROWS.where(NODES.c.id == node_id))).mappings().first()
    if row is None:
        return None
    placement = (await _placements(conn, [node_id])).get(node_id)
    devices = await conn.execute(
        select(DEVICE_STATUS)
        .where(DEVICE_STATUS.c.node_id == node_id)
        .order_by(DEVICE_STATUS.c.device)
    )
    units = await conn.execute(
        select(
            DESKS.c.id.label("desk"),
            DESKS.c.unit,
            DESKS.c.unit_online.label("online"),
            DESKS.c.unit_firmware.label("firmware"),
            DESKS.c.last_change_at,
        )
        .where(DESKS.c.node_id == node_id)
        .order_by(DESKS.c.id)
    )
    health = None
    if row["health"] is not None and row["last_health_at"] is not None:
        health = NodeHealthPublic(received_at=row["last_health_at"], **row["health"])
    cars = await _car_reasons(conn, unreturned_after, [node_id])
    return FleetNodeDetailPublic(
        **_with(_node(row, placement), cars.get(node_id, [])),
        health=health,
        devices=[DeviceStatusPublic.model_validate(d) for d in devices.mappings()],
        desk_units=[DeskUnitStatusPublic.model_validate(u) for u in units.mappings()],
        devices_declared=list(row["devices_declared"] or []),
    )


async def node_exists(conn: AsyncConnection, node_id: str) -> bool:
    return await conn.scalar(select(NODES.c.id).where(NODES.c.id == node_id)) is not None


async def health_history(
    conn: AsyncConnection, node_id: str, hours: float, *, now: float | None = None
) -> list[HealthSamplePublic]:
    """The node's health samples of the last `hours` (at most 48), oldest first."""
    hours = min(hours, MAX_HISTORY_HOURS)
    since = datetime.fromtimestamp((now or time.time()) - hours * 3600, UTC)
    rows = await conn.execute(
        select(HEALTH_SAMPLES)
        .where(HEALTH_SAMPLES.c.node_id == node_id, HEALTH_SAMPLES.c.ts >= since)
        .order_by(HEALTH_SAMPLES.c.ts)
    )
    return [HealthSamplePublic.model_validate(r) for r in rows.mappings()]
