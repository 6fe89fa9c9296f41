"""Webhook test fixtures: a real HTTP receiver on loopback that checks every signature itself.

It can be told to fail a number of requests (or all of them).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cloud.settings import CloudSettings
from tests.cloud.conftest import RunningCloud

SECRET = "s3cret-for-tests-0123456789"


@dataclass
class Receiver:
    url: str
    fail_first: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["answered"] == 200]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            with state.lock:
                fail = len(state.requests) < state.fail_first
                answer = 500 if fail else 200
                state.requests.append(
                    {
                        "body": json.loads(body),
                        "answered": answer,
                        "signature_ok": hmac.compare_digest(
                            expected, self.headers["X-Ruang-Signature"]
                        ),
                        "event": self.headers["X-Ruang-Event"],
                        "delivery": self.headers["X-Ruang-Delivery"],
                        "content_type": self.headers["Content-Type"],
                    }
                )
            self.send_response(answer)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def fast(settings: CloudSettings, **changes: Any) -> CloudSettings:
    # The receiver is on loopback, which webhooks may reach only when allow-listed.
    return settings.model_copy(
        update={"webhook_backoff_base_s": 0.05, "webhook_allowed_hosts": ["127.0.0.1"], **changes}
    )


async def subscribe(cloud: RunningCloud, url: str, **extra: Any) -> dict[str, Any]:
    r = await cloud.http.post("/api/v1/webhooks", json={"url": url, "secret": SECRET, **extra})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body
