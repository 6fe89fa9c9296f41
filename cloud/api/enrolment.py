"""Enrolment routes: issue a one-time token, enrol a node with it, revoke a node.

`POST /enrolment-tokens` and `DELETE /nodes/{id}/credentials` must be limited to
administrators and technicians once API authentication exists: both live in
`admin_router` so one dependency on it protects them. `POST /enroll` is called
by the node itself and is authorised by the token alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response, status

from cloud.admin import audit
from cloud.admin.schemas import TokenPublic
from cloud.api.scoping import scoped
from cloud.api_types import Problem
from cloud.deps import DbDep, SettingsDep
from cloud.fleet import enrolment
from cloud.fleet.broker_accounts import BrokerAccounts, make_broker_accounts
from cloud.fleet.schemas import EnrolRequest, EnrolResponse, TokenCreate, TokenIssued
from cloud.people import access
from cloud.people.auth import CurrentUser
from cloud.problems import ProblemError


async def get_broker_accounts(request: Request, settings: SettingsDep) -> BrokerAccounts:
    # One per app (start-up makes it), so its lock spans every request of this process.
    accounts: BrokerAccounts | None = getattr(request.app.state, "broker_accounts", None)
    if accounts is None:
        accounts = request.app.state.broker_accounts = make_broker_accounts(settings)
    return accounts


BrokerAccountsDep = Annotated[BrokerAccounts, Depends(get_broker_accounts)]


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
            conn,
            settings,
            node_id=body.node_id,
            ttl_s=body.ttl_s,
            config=body.config,
            created_by=user.subject,
        )
        await audit.record(
            conn,
            actor=user,
            action="enrolment_token.create",
            target=f"node:{issued.node_id}",
            detail={"expires_at": issued.expires_at, "settings": sorted(body.config)},
            site=await _node_site(conn, issued.node_id),
        )
    return TokenIssued(token=issued.token, node_id=issued.node_id, expires_at=issued.expires_at)


@node_router.post(
    "/enroll",
    response_model=EnrolResponse,
    responses={
        401: {"model": Problem, "description": "unknown token"},
        410: {"model": Problem, "description": "token used or expired"},
        503: {"model": Problem, "description": "the broker's accounts could not be updated"},
    },
)
async def enroll(
    body: EnrolRequest, conn: DbDep, settings: SettingsDep, accounts: BrokerAccountsDep
) -> EnrolResponse:
    async with accounts.lock:
        try:
            async with conn.begin():
                issued = await enrolment.enrol(
                    conn, settings, token=body.token, hardware_id=body.hardware_id
                )
                # Inside the transaction: if the broker cannot be told, nothing
                # is committed and the token can be used again.
                await accounts.node_enrolled(conn, issued.node_id, issued.mqtt_password)
        except OSError as exc:
            raise _not_updated(exc) from exc
        accounts.committed()
    return EnrolResponse(**issued.__dict__)


@admin_router.delete(
    "/nodes/{node_id}/credentials",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": Problem}, 503: {"model": Problem}},
)
async def revoke_node_credentials(
    node_id: str, conn: DbDep, user: CurrentUser, accounts: BrokerAccountsDep
) -> Response:
    async with accounts.lock:
        try:
            async with conn.begin():
                await enrolment.revoke(conn, node_id)
                await audit.record(
                    conn,
                    actor=user,
                    action="node_credential.revoke",
                    target=f"node:{node_id}",
                    detail={},
                    site=await _node_site(conn, node_id),
                )
                await accounts.node_revoked(conn, node_id)
        except OSError as exc:
            raise _not_updated(exc) from exc
        # From here on (files: the reload) the revoked password no longer logs in.
        accounts.committed()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _not_updated(exc: OSError) -> ProblemError:
    return ProblemError(
        503,
        f"could not update the broker's accounts: {exc}",
        title="Broker credentials not written",
    )


async def _node_site(conn: DbDep, node_id: str) -> str | None:
    sites = sorted((await access.node_sites(conn, [node_id])).get(node_id, set()))
    return sites[0] if sites else None


async def _visible(conn: DbDep, user: CurrentUser, rows: list[Any]) -> list[Any]:
    # A technician sees the tokens of their sites' nodes and the ones they created
    # (a new node has no site until its desks are placed).
    if user.is_admin:
        return rows
    mine = [r for r in rows if r.created_by == user.subject]
    theirs = await access.only_nodes(conn, user, rows, lambda r: r.node_id, access.TECHNICIAN_ROLES)
    keep = {r.token_hash for r in mine} | {r.token_hash for r in theirs}
    return [r for r in rows if r.token_hash in keep]


@admin_router.get("/enrolment-tokens", response_model=list[TokenPublic])
async def list_enrolment_tokens(conn: DbDep, user: CurrentUser) -> list[TokenPublic]:
    """The newest tokens (open, used, expired, withdrawn); the tokens themselves are never kept."""
    now = datetime.now(UTC)
    rows = await _visible(conn, user, await enrolment.list_tokens(conn))
    return [
        TokenPublic(
            ref=r.token_hash[: enrolment.REF_LENGTH],
            node_id=r.node_id,
            state=enrolment.token_state(r, now),
            created_at=r.created_at,
            expires_at=r.expires_at,
            used_at=r.used_at,
            revoked_at=r.revoked_at,
            created_by=r.created_by,
        )
        for r in rows
    ]


@admin_router.delete(
    "/enrolment-tokens/{ref}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={404: {"model": Problem}, 409: {"model": Problem}},
)
async def withdraw_enrolment_token(
    ref: Annotated[str, Path(max_length=64)], conn: DbDep, user: CurrentUser
) -> Response:
    """Withdraws an unused token: the node can no longer enrol with it."""
    row = await enrolment.token_by_ref(conn, ref)
    if not await _visible(conn, user, [row]):
        raise ProblemError(
            404, f"enrolment token {ref!r} is unknown", title="Enrolment token not found"
        )
    await conn.rollback()  # the lookup's read transaction; the change needs its own
    async with conn.begin():
        await enrolment.withdraw(conn, row.token_hash)
        await audit.record(
            conn,
            actor=user,
            action="enrolment_token.withdraw",
            target=f"node:{row.node_id}",
            detail={"ref": ref},
            site=await _node_site(conn, row.node_id),
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


router = APIRouter()
router.include_router(admin_router, dependencies=[scoped("technician")])
router.include_router(node_router)
