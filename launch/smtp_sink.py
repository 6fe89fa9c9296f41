"""A real SMTP server on loopback that keeps what it receives: for tests, the bench and demos.

aiosmtpd runs in its own thread; every accepted message is parsed and kept with
the time it arrived. `refuse` makes the server answer 451 (try again later) to
each message, as a full mailbox server or a greylisting relay would.
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from launch.devservers import LOOPBACK, free_port


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    received_at: float  # time.time() when the DATA was accepted


class SmtpSink:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.refuse = False
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._controller: Any = None

    @property
    def url(self) -> str:
        return f"smtp://{LOOPBACK}:{self.port}"

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return "451 4.3.0 try again later"
        raw = envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self._received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), message, time.time())
            )
        return "250 OK"

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname=LOOPBACK, port=self.port, ready_timeout=10)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
