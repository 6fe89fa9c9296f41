"""Browser security headers on every response: CSP, no framing, no referrer, no sniffing.

The dashboards are plain ES modules and stylesheets from this origin (no CDN, no
inline script or style attribute; their JSON data blocks are not scripts), so
the policy allows 'self' only. Nothing embeds Ruang's pages, the kiosk included
(it runs full-screen), so framing is refused. No Referer is sent: a check-in
URL carries the desk's QR key in its query string.

FastAPI's /docs and /redoc pages load their viewer from a CDN with an inline
bootstrap script; they get a policy of their own that allows exactly that.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",  # the QR code preview is a data: URL
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
_DOCS_CDN = "https://cdn.jsdelivr.net"
DOCS_CSP = "; ".join(
    (
        "default-src 'self'",
        f"script-src 'self' 'unsafe-inline' {_DOCS_CDN}",
        f"style-src 'self' {_DOCS_CDN}",
        "img-src 'self' data: https://fastapi.tiangolo.com",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
COMMON = (
    ("X-Frame-Options", "DENY"),  # frame-ancestors for browsers without CSP 2
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


def _raw(policy: str) -> tuple[tuple[bytes, bytes], ...]:
    pairs = (("Content-Security-Policy", policy), *COMMON)
    return tuple((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in pairs)


_RAW = _raw(CSP)
_DOCS_RAW = _raw(DOCS_CSP)


class SecurityHeaders:
    """ASGI middleware (not BaseHTTPMiddleware, which would buffer the SSE streams)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = _DOCS_RAW if scope["path"] in DOCS_PATHS else _RAW

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Raw pairs appended where the response has no header of that name (a
                # route's own policy wins): one pass over its headers, no re-encoding
                # per header, as this runs for every response.
                raw = list(message.get("headers", ()))
                present = {name.lower() for name, _ in raw}
                raw.extend(pair for pair in added if pair[0] not in present)
                message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, send_with_headers)
