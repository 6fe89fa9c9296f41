"""Desk routes: list, one desk, and an LED command to the desk's unit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from cloud.api_types import Problem
from cloud.buildings import queries
from cloud.buildings.schemas import DeskPublic, LedCommandCreate, LedCommandPublic
from cloud.deps import CommandsDep, DbDep
from cloud.mqtt.commands import NotConnected
from cloud.people.auth import CurrentUser
from cloud.problems import ProblemError
from ruang import contract

router = APIRouter(tags=["desks"])
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such desk"},
}


async def _desk_or_404(conn: DbDep, desk_id: str) -> DeskPublic:
    desk = await queries.get_desk(conn, desk_id)
    if desk is None:
        raise ProblemError(404, f"desk {desk_id!r} is unknown", title="Desk not found")
    return desk


@router.get("/desks", response_model=list[DeskPublic])
async def list_desks(conn: DbDep, user: CurrentUser) -> list[DeskPublic]:
    return await queries.desks_for(conn, user, await queries.list_desks(conn))


@router.get("/desks/{desk_id}", response_model=DeskPublic, responses=_NOT_FOUND)
async def get_desk(desk_id: str, conn: DbDep, user: CurrentUser) -> DeskPublic:
    return (await queries.desks_for(conn, user, [await _desk_or_404(conn, desk_id)]))[0]


@router.post(
    "/desks/{desk_id}/led",
    response_model=LedCommandPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses={**_NOT_FOUND, 503: {"model": Problem, "description": "MQTT broker unreachable"}},
)
async def set_led(
    desk_id: str, body: LedCommandCreate, conn: DbDep, commands: CommandsDep
) -> LedCommandPublic:
    desk = await _desk_or_404(conn, desk_id)
    command = contract.LedCommand(node=desk.node, desk=desk.id, **body.model_dump())
    try:
        topic = await commands.publish(command)
    except NotConnected as exc:
        raise ProblemError(503, f"command not sent: {exc}") from exc
    # 202: the broker has it; whether the edge applies it is reported separately.
    return LedCommandPublic(
        id=command.id, desk=desk.id, node=desk.node, topic=topic, **body.model_dump()
    )
