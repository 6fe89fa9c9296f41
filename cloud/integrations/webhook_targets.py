"""Where webhooks may be sent: public addresses only, unless an administrator allows more.

A webhook URL is chosen by whoever subscribes, and the cloud then POSTs to it
from inside the building's network: pointed at 127.0.0.1, 169.254.169.254 or a
10.x address it would reach services that trust the cloud's position (SSRF).
So every address the host resolves to must be public, checked when subscribing
and again before each delivery; the delivery then connects to the address that
was checked (the name only goes into Host and TLS SNI), so a DNS answer that
changes in between (rebinding) cannot redirect it. `RUANG_WEBHOOK_ALLOWED_HOSTS`
lists host names or CIDR ranges that are allowed even though not public.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TargetRefused(Exception):
    """The URL may not receive webhooks; the message says why."""


@dataclass(frozen=True)
class Target:
    """A checked destination: connect to `url` (the address), say `host` in Host and SNI."""

    url: str
    host: str
    host_header: str
    address: IPAddress


def _is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


class TargetPolicy:
    """Checks webhook URLs against the public-address rule and the allow-list."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self._hosts: set[str] = set()
        self._networks: list[IPNetwork] = []
        for entry in allowed:
            entry = entry.strip().lower()
            if not entry:
                continue
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._hosts.add(entry.rstrip("."))

    def _allowed(self, address: IPAddress) -> bool:
        return _is_public(address) or any(address in net for net in self._networks)

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError) as exc:
            raise TargetRefused(f"cannot resolve {host!r}: {exc}") from None
        # Scope ids (fe80::1%eth0) are dropped: only the address decides.
        found = {ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos}
        if not found:
            raise TargetRefused(f"{host!r} resolves to no address")
        return sorted(found, key=lambda a: (a.version, int(a)))

    async def check(self, url: str) -> Target:
        """The address to deliver `url` to; raises TargetRefused when it is not allowed."""
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        if parts.scheme not in ("http", "https") or not host:
            raise TargetRefused("an absolute http:// or https:// URL is required")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise TargetRefused("the URL's port is not a number from 0 to 65535") from None
        addresses = await self._addresses(host, port)
        if host.lower() not in self._hosts:
            # Every address: a name with one public and one private address
            # would otherwise be a way in, whichever the connection picks.
            refused = [a for a in addresses if not self._allowed(a)]
            if refused:
                raise TargetRefused(
                    f"{host!r} resolves to {refused[0]}, which is not a public address "
                    "(loopback, private, link-local or reserved); an administrator can "
                    "allow it with RUANG_WEBHOOK_ALLOWED_HOSTS"
                )
        address = addresses[0]
        literal = f"[{address}]" if address.version == 6 else str(address)
        netloc = f"{literal}:{port}"
        pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        host_header = parts.netloc.rsplit("@", 1)[-1]
        return Target(url=pinned, host=host, host_header=host_header, address=address)
