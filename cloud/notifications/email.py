"""Email through an SMTP server (aiosmtplib): the server's address and the message itself.

`RUANG_SMTP_URL` names the server: `smtp://` (plain, port 25), `smtp+starttls://`
(STARTTLS, 587) or `smtps://` (TLS from the start, 465), with an optional
`user:password@`. Each message has a plain-text and an HTML part and a
Message-ID derived from the notification, so a repeated send (delivery is at
least once) carries the same id and mail clients can fold it.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from urllib.parse import unquote, urlsplit

import aiosmtplib

from cloud.notifications.templates import Rendered

_SCHEMES = {
    "smtp": (25, False, False),
    "smtp+starttls": (587, True, False),
    "smtps": (465, False, True),
}


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    start_tls: bool
    use_tls: bool
    username: str | None
    password: str | None

    def describe(self) -> str:
        """For logs: the address and mode, never the password."""
        mode = "TLS" if self.use_tls else "STARTTLS" if self.start_tls else "plain"
        return f"{self.host}:{self.port} ({mode})"


def parse_smtp_url(url: str) -> SmtpServer:
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ValueError(f"RUANG_SMTP_URL scheme must be one of {sorted(_SCHEMES)}")
    if not parts.hostname:
        raise ValueError("RUANG_SMTP_URL names no host")
    default_port, start_tls, use_tls = _SCHEMES[parts.scheme]
    return SmtpServer(
        host=parts.hostname,
        port=parts.port or default_port,
        start_tls=start_tls,
        use_tls=use_tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def message_id(notification_id: int, sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2] or "ruang.invalid"
    return f"<notification-{notification_id}@{domain}>"


def build_message(
    *,
    sender: str,
    to: str,
    rendered: Rendered,
    notification_id: int,
    language: str,
    attachments: list[dict[str, str]],
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = Address(addr_spec=to)
    msg["Subject"] = rendered.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id(notification_id, sender)
    # Automatic mail: auto-responders should not answer it (RFC 3834).
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    for item in attachments:
        maintype, _, subtype = item["content_type"].partition("/")
        msg.add_attachment(
            item["text"].encode(),
            maintype=maintype,
            subtype=subtype,
            filename=item["filename"],
        )
    # Last: set_content and add_alternative move or drop Content-* headers.
    msg["Content-Language"] = language
    return msg


async def send(server: SmtpServer, msg: EmailMessage, timeout_s: float) -> None:
    """Hands one message to the server; raises aiosmtplib.SMTPException or OSError."""
    await aiosmtplib.send(
        msg,
        hostname=server.host,
        port=server.port,
        username=server.username,
        password=server.password,
        start_tls=server.start_tls,
        use_tls=server.use_tls,
        timeout=timeout_s,
    )
