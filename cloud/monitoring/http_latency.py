"""ASGI middleware timing every HTTP request, labelled by route template and status class.

Labels are bounded on purpose: the route *template* (`/api/v1/desks/{desk_id}`),
never the raw path, which would carry desk, booking or person ids and grow
without limit; the status as a class (`2xx`); the method from a fixed list.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Histogram
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"
DYNAMIC = "<dynamic>"


def route_template(scope: Scope) -> str:
    """The template of the route that served `scope`, from what the router left in it."""
    # Inside a mount the router's root_path holds the mount's prefix (the app's own
    # root path, if any, is left out so the label is the same behind any proxy).
    root = str(scope.get("root_path", ""))
    app_root = str(scope.get("app_root_path", ""))
    prefix = root[len(app_root) :] if root.startswith(app_root) else root
    route = scope.get("route")
    path = getattr(route, "path", None)
    # FastAPI keeps included routers nested: the route's own path lacks their prefixes,
    # and the effective route it matched carries the whole template.
    effective = getattr(scope.get("fastapi"), "get", lambda _key: None)("effective_route_context")
    full = getattr(effective, "path", None)
    if isinstance(full, str) and isinstance(path, str) and full.endswith(path):
        path = full
    if isinstance(route, Mount) or (route is None and prefix and "endpoint" in scope):
        # A mounted app (static files) served it: its prefix is already in root_path.
        return f"{prefix}/{{path}}"
    if isinstance(path, str):
        return prefix + path
    if "endpoint" not in scope:
        return UNMATCHED
    # A plain Starlette route under FastAPI's router, which names no route in the
    # scope: the path is the template once each parameter's segment is put back.
    return _template_of(str(scope.get("path", "")), scope.get("path_params") or {})


def _template_of(path: str, params: dict[str, object]) -> str:
    segments = path.split("/")
    for name, value in params.items():
        try:
            at = len(segments) - 1 - segments[::-1].index(str(value))
        except ValueError:
            return DYNAMIC  # a value spanning segments: no template to show
        segments[at] = f"{{{name}}}"
    return "/".join(segments)


class HttpLatency:
    """Observes each HTTP request's duration into `histogram` (method, route, status)."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # A request that raises before answering is a server error.
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            method = scope.get("method", "")
            key = (method if method in METHODS else "other", route_template(scope), status // 100)
            child = self._children.get(key)
            if child is None:
                # Looked up once per label set: `labels()` checks and converts the
                # values and takes the metric's lock on every call.
                child = self._children[key] = self.histogram.labels(key[0], key[1], f"{key[2]}xx")
            child.observe(time.perf_counter() - started)
