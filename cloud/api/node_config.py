"""Remote config routes: set a node's desired config, and compare it with what the node reports.

`PUT /nodes/{id}/config` stores the next version and publishes it retained on
the node's `commands/config`; the node validates and applies it and answers with
a `config_status` event. `GET /nodes/{id}/config` shows both sides.
"""

from __future__ import annotations

from fastapi import APIRouter, status

from cloud.admin import audit, config_text
from cloud.admin.schemas import ConfigCheck, ConfigChecked
from cloud.api.params import NodeIdPath
from cloud.api.snapshots import PublisherDep
from cloud.api_types import Problem
from cloud.deps import CommandsDep, DbDep
from cloud.fleet import node_config
from cloud.fleet.schemas import DesiredConfig, NodeConfigPut, NodeConfigView, ReportedConfig
from cloud.mqtt.commands import NotConnected
from cloud.people import access
from cloud.people.auth import CurrentUser
from cloud.problems import ProblemError
from ruang import contract

router = APIRouter(tags=["nodes"])


def _node_id(node_id: str) -> str:
    try:
        contract.state_topic(node_id)
    except contract.ContractError as exc:
        raise ProblemError(422, exc.reason) from None
    return node_id


async def _view(conn: DbDep, node: str) -> NodeConfigView:
    want = await node_config.desired(conn, node)
    got = await node_config.reported(conn, node)
    reported = ReportedConfig.model_validate(got) if got else None
    return NodeConfigView(
        node=node,
        desired=DesiredConfig(version=want.version, config=want.config,
                              updated_at=want.updated_at) if want else None,
        reported=reported,
        in_sync=bool(want and reported and reported.active_version == want.version),
    )  # fmt: skip


@router.put(
    "/nodes/{node_id}/config",
    response_model=NodeConfigView,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        409: {"model": Problem, "description": "version not newer than the stored one"},
        422: {"model": Problem, "description": "a key that cannot be set remotely"},
        503: {"model": Problem, "description": "MQTT broker unreachable; nothing stored"},
    },
)
async def put_config(
    node_id: NodeIdPath,
    body: NodeConfigPut,
    conn: DbDep,
    user: CurrentUser,
    commands: CommandsDep,
    snapshots: PublisherDep,
) -> NodeConfigView:
    node = _node_id(node_id)
    try:
        want = await node_config.store(conn, node, body.config, body.version)
    except node_config.ConfigConflict as exc:
        await conn.rollback()
        raise ProblemError(409, str(exc)) from None
    except ValueError as exc:
        await conn.rollback()
        raise ProblemError(422, str(exc)) from None
    sites = sorted((await access.node_sites(conn, [node])).get(node, set()))
    await audit.record(
        conn,
        actor=user,
        action="node_config.push",
        target=f"node:{node}",
        detail={"version": want.version, "settings": sorted(want.config)},
        site=sites[0] if sites else None,
    )
    try:
        # Retained: a node that is offline now gets it the moment it connects.
        await commands.publish(node_config.push_for(want), retain=True)
    except NotConnected as exc:
        # Not stored either, so desired never shows a version no node can receive.
        await conn.rollback()
        raise ProblemError(503, f"config not sent: {exc}") from exc
    await conn.commit()
    snapshots.mark_dirty(node)  # the doors it controls (and so its door rights) may have changed
    # 202: the broker has it; the node reports applied/refused with config_status.
    return await _view(conn, node)


@router.get("/nodes/{node_id}/config", response_model=NodeConfigView)
async def get_config(node_id: NodeIdPath, conn: DbDep) -> NodeConfigView:
    return await _view(conn, _node_id(node_id))


@router.post("/nodes/{node_id}/config/check", response_model=ConfigChecked)
async def check_config(node_id: NodeIdPath, body: ConfigCheck, conn: DbDep) -> ConfigChecked:
    """Parses a hand-written config (JSON or YAML) and lists every problem with its line;
    nothing is stored or sent."""
    config, problems = await config_text.check(conn, _node_id(node_id), body.text, body.format)
    return ConfigChecked(ok=config is not None, config=config, errors=problems)
