"""Webhook routes: subscribe, list, deactivate, and read a subscription's delivery log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from fastapi.responses import Response

from cloud.admin import audit
from cloud.api.params import RowId
from cloud.api_types import Problem
from cloud.deps import DbDep, EngineDep, SettingsDep
from cloud.integrations import webhooks
from cloud.integrations.schemas import (
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryPublic,
    WebhookPublic,
)
from cloud.people.auth import CurrentUser
from cloud.problems import ProblemError

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such subscription"}
}


@router.post(
    "",
    response_model=WebhookCreated,
    status_code=status.HTTP_201_CREATED,
    responses={
        422: {
            "model": Problem,
            "description": "bad URL, secret or kind; or the "
            "URL's host is not a public address (and not allow-listed)",
        }
    },
)
async def subscribe(
    body: WebhookCreate, engine: EngineDep, settings: SettingsDep, user: CurrentUser
) -> WebhookCreated:
    """Subscribes an endpoint to integration events from now on."""
    await webhooks.ensure_target_allowed(settings, body.url)
    secret = body.secret or webhooks.new_secret()
    async with engine.begin() as conn:
        row = await webhooks.create_subscription(
            conn,
            url=body.url,
            secret=secret,
            kinds=webhooks.valid_kinds(body.kinds),
            now=datetime.now(UTC),
        )
        # The URL may carry a token in its query: only scheme, host and path are kept.
        await audit.record(
            conn,
            actor=user,
            action="webhook.create",
            target=f"webhook:{row.id}",
            detail={"url": audit.safe_url(row.url), "kinds": row.kinds},
        )
    return WebhookCreated(
        id=row.id,
        url=row.url,
        kinds=row.kinds,
        active=row.active,
        created_at=row.created_at,
        secret=secret if body.secret is None else None,
    )


@router.get("", response_model=list[WebhookPublic])
async def list_webhooks(conn: DbDep) -> list[WebhookPublic]:
    """Every subscription, active or not; secrets are never shown."""
    return [
        WebhookPublic.model_validate(r._mapping) for r in await webhooks.list_subscriptions(conn)
    ]


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=_NOT_FOUND,
)
async def unsubscribe(webhook_id: RowId, engine: EngineDep, user: CurrentUser) -> Response:
    """Deactivates a subscription; its delivery log is kept."""
    async with engine.begin() as conn:
        if not await webhooks.deactivate(conn, webhook_id):
            raise ProblemError(404, f"webhook {webhook_id} is unknown", title="Webhook not found")
        await audit.record(
            conn, actor=user, action="webhook.deactivate", target=f"webhook:{webhook_id}", detail={}
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{webhook_id}/deliveries", response_model=list[WebhookDeliveryPublic], responses=_NOT_FOUND
)
async def delivery_log(
    webhook_id: RowId,
    conn: DbDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[WebhookDeliveryPublic]:
    """The delivery log, newest first: one row per event, updated on every attempt."""
    if not await webhooks.subscription_exists(conn, webhook_id):
        raise ProblemError(404, f"webhook {webhook_id} is unknown", title="Webhook not found")
    return [
        WebhookDeliveryPublic.model_validate(r._mapping)
        for r in await webhooks.deliveries(conn, webhook_id, limit)
    ]
