"""Node routes: the edge nodes and whether they are online."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.buildings import queries
from cloud.deps import DbDep
from cloud.fleet.schemas import NodePublic
from cloud.people import access
from cloud.people.auth import CurrentUser

router = APIRouter(tags=["nodes"])


@router.get("/nodes", response_model=list[NodePublic])
async def list_nodes(conn: DbDep, user: CurrentUser) -> list[NodePublic]:
    return await access.only_nodes(conn, user, await queries.list_nodes(conn), lambda n: n.id)
