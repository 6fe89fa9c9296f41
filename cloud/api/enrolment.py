"""Enrolment routes: issue a one-time token, enrol a node with it, revoke a node.

`POST /enrolment-tokens` and `DELETE /nodes/{id}/credentials` must be limited to
administrators and technicians once API authentication exists: both live in
`admin_router` so one dependency on it protects them. `POST /enroll` is called
by the node itself and is authorised by the token alone.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from cloud.api.scoping import scoped
from cloud.api_types import Problem
from cloud.deps import DbDep, SettingsDep
from cloud.fleet import enrolment
from cloud.fleet.broker_credentials import BrokerFiles
from cloud.fleet.schemas import EnrolRequest, EnrolResponse, TokenCreate, TokenIssued
from cloud.people import access
from cloud.people.auth import CurrentUser
from cloud.problems import ProblemError


async def get_broker_files(request: Request, settings: SettingsDep) -> BrokerFiles:
    # One per app, made on first use, so its lock spans every request of this process.
    files: BrokerFiles | None = getattr(request.app.state, "broker_files", None)
    if files is None:
        files = request.app.state.broker_files = BrokerFiles(settings)
    return files


BrokerFilesDep = Annotated[BrokerFiles, Depends(get_broker_files)]


admin_router = APIRouter(tags=["enrolment"])
node_router = APIRouter(tags=["enrolment"])


@admin_router.post(
    "/enrolment-tokens",
    response_model=TokenIssued,
    status_code=status.HTTP_201_CREATED,
    responses={422: {"model": Problem}},
)
async def create_enrolment_token(
    body: TokenCreate, conn: DbDep, user: CurrentUser, settings: SettingsDep
) -> TokenIssued:
    await access.ensure_node_enrolable(conn, user, body.node_id)
    await conn.rollback()  # the check's read transaction; the issue needs its own
    async with conn.begin():
        issued = await enrolment.create_token(
            conn, settings, node_id=body.node_id, ttl_s=body.ttl_s, config=body.config
        )
    return TokenIssued(token=issued.token, node_id=issued.node_id, expires_at=issued.expires_at)


@node_router.post(
    "/enroll",
    response_model=EnrolResponse,
    responses={
        401: {"model": Problem, "description": "unknown token"},
        410: {"model": Problem, "description": "token used or expired"},
        503: {"model": Problem, "description": "broker files not written"},
    },
)
async def enroll(
    body: EnrolRequest, conn: DbDep, settings: SettingsDep, files: BrokerFilesDep
) -> EnrolResponse:
    async with files.lock:
        try:
            async with conn.begin():
                issued = await enrolment.enrol(
                    conn, settings, token=body.token, hardware_id=body.hardware_id
                )
                # Inside the transaction: if the broker cannot be told, nothing
                # is committed and the token can be used again.
                await files.write(conn)
        except OSError as exc:
            raise ProblemError(
                503,
                f"could not write the broker's auth files: {exc}",
                title="Broker credentials not written",
            ) from exc
        files.reload()
    return EnrolResponse(**issued.__dict__)


@admin_router.delete(
    "/nodes/{node_id}/credentials",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": Problem}},
)
async def revoke_node_credentials(node_id: str, conn: DbDep, files: BrokerFilesDep) -> Response:
    async with files.lock:
        try:
            async with conn.begin():
                await enrolment.revoke(conn, node_id)
                await files.write(conn)
        except OSError as exc:
            raise ProblemError(
                503,
                f"could not write the broker's auth files: {exc}",
                title="Broker credentials not written",
            ) from exc
        # From the reload on, the revoked password no longer logs in.
        files.reload()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


router = APIRouter()
router.include_router(admin_router, dependencies=[scoped("technician")])
router.include_router(node_router)
