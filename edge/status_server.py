"""The agent's status port: `GET /metrics` (Prometheus) and `GET /healthz`, on loopback.

Off unless `status_port` is set. It binds `status_host` (127.0.0.1 by default):
the figures name no person, but a node's port is no place for a public
listener. A scraper on another host reaches it through an SSH tunnel or after
the operator sets `status_host` to the management interface.

A deliberately small HTTP/1.0 server on asyncio streams, so the Pi needs no web
framework: one request per connection, the request line and headers bounded in
size and time, anything else answered 400, 404 or 405 and closed. A client can
waste one connection's worth of memory for `READ_TIMEOUT_S`, nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .metrics import CONTENT_TYPE, EdgeMetrics

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 8192
READ_TIMEOUT_S = 5.0


def _response(status: str, body: bytes, content_type: str = "text/plain; charset=utf-8") -> bytes:
    head = (
        f"HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    """The request line and headers, or None when too long, too slow or cut short."""
    try:
        async with asyncio.timeout(READ_TIMEOUT_S):
            return await reader.readuntil(b"\r\n\r\n")
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None


class StatusServer:
    """Serves `metrics` on (host, port); `port` 0 picks a free one (see `.port`)."""

    def __init__(self, metrics: EdgeMetrics, host: str, port: int) -> None:
        self._metrics = metrics
        self._host, self._wanted = host, port
        self._server: asyncio.Server | None = None
        self.requests = 0
        self.refused = 0

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self._host, self._wanted, limit=MAX_HEAD_BYTES
        )
        log.info("status port: http://%s:%d/metrics", self._host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self._metrics.close()

    async def run(self) -> None:
        """Serves until cancelled (the agent's task group owns it).

        A port that cannot be opened is logged, not raised: monitoring must not
        stop the node deciding taps.
        """
        try:
            await self.start()
        except OSError as exc:
            log.error("status port %s:%d not opened: %s", self._host, self._wanted, exc)
            self._metrics.close()
            return
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await _read_head(reader)
            writer.write(self._answer(head))
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # the client left; nothing to tell it
        except Exception:  # one bad scrape must never reach the agent's task group
            log.exception("status port: request failed")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _answer(self, head: bytes | None) -> bytes:
        self.requests += 1
        parts = head.split(b"\r\n", 1)[0].split(b" ") if head else []
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            self.refused += 1
            return _response("400 Bad Request", b"bad request\n")
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            self.refused += 1
            return _response("405 Method Not Allowed", b"GET only\n")
        if target == b"/metrics":
            body = self._metrics.render()
            answer = _response("200 OK", body, CONTENT_TYPE)
        elif target == b"/healthz":
            answer = _response("200 OK", b"ok\n")
        else:
            self.refused += 1
            return _response("404 Not Found", b"not found\n")
        if method == b"HEAD":
            return answer[: answer.index(b"\r\n\r\n") + 4]
        return answer
