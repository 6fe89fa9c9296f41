"""Notification routes: a person's in-app list and preferences, and the admins' delivery log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from cloud.api.params import RowId
from cloud.api_types import Problem
from cloud.deps import DbDep, EngineDep
from cloud.notifications import inbox, preferences
from cloud.notifications.schemas import (
    DeliveryPublic,
    MarkedRead,
    NotificationList,
    PreferencesPublic,
    PreferencesUpdate,
    UnreadCount,
)
from cloud.people.auth import CurrentUser, require_roles

router = APIRouter(tags=["notifications"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such notification of yours"}
}


@router.get("/me/notifications", response_model=NotificationList)
async def my_notifications(
    conn: DbDep,
    user: CurrentUser,
    unread: Annotated[bool, Query(description="only the unread ones")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    lang: Annotated[
        Literal["id", "en"] | None,
        Query(description="render in this language (the page's) instead of the preferred one"),
    ] = None,
) -> NotificationList:
    """The caller's notifications, newest first, in their preferred language."""
    items = await inbox.list_mine(
        conn, user.subject, unread_only=unread, limit=limit, language=lang
    )
    return NotificationList(items=items, unread=await inbox.unread_count(conn, user.subject))


@router.get("/me/notifications/unread-count", response_model=UnreadCount)
async def my_unread_count(conn: DbDep, user: CurrentUser) -> UnreadCount:
    """How many of the caller's notifications are unread (the dashboards' bell)."""
    return UnreadCount(unread=await inbox.unread_count(conn, user.subject))


@router.post(
    "/me/notifications/{notification_id}/read", response_model=UnreadCount, responses=_NOT_FOUND
)
async def mark_read(notification_id: RowId, engine: EngineDep, user: CurrentUser) -> UnreadCount:
    """Marks one notification read; answers the unread count left."""
    async with engine.begin() as conn:
        await inbox.mark_read(conn, user.subject, notification_id)
        return UnreadCount(unread=await inbox.unread_count(conn, user.subject))


@router.post("/me/notifications/read-all", response_model=MarkedRead)
async def mark_all_read(engine: EngineDep, user: CurrentUser) -> MarkedRead:
    """Marks every notification of the caller read."""
    async with engine.begin() as conn:
        return MarkedRead(marked=await inbox.mark_all_read(conn, user.subject))


@router.get("/me/notification-preferences", response_model=PreferencesPublic)
async def my_preferences(conn: DbDep, user: CurrentUser) -> PreferencesPublic:
    """The caller's language and email choices (in-app notifications are always on)."""
    return preferences.public(await preferences.preferences_of(conn, user.subject))


@router.put(
    "/me/notification-preferences",
    response_model=PreferencesPublic,
    responses={
        404: {"model": Problem, "description": "the token's subject is not in the roster"},
        422: {"model": Problem, "description": "unknown kind or language"},
    },
)
async def save_preferences(
    body: PreferencesUpdate, engine: EngineDep, user: CurrentUser
) -> PreferencesPublic:
    """Replaces the caller's preferences."""
    async with engine.begin() as conn:
        saved = await preferences.save(conn, user.subject, body)
    return preferences.public(saved)


@router.get(
    "/notifications/deliveries",
    response_model=list[DeliveryPublic],
    dependencies=[require_roles("admin")],
)
async def delivery_log(
    conn: DbDep,
    status: Annotated[
        Literal["pending", "sent", "skipped", "gave_up"] | None, Query(description="filter")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryPublic]:
    """The delivery log, newest first: each notification's channel, status, attempts, error.

    No bodies; a guest's address is masked except its domain.
    """
    return await inbox.deliveries(conn, status=status, limit=limit)
