"""TLS for MQTT clients (edge uplink, cloud ingestion): verify the broker, by name.

A deployment runs its own CA for the broker's certificate; pointing `ca_file` at
it trusts that CA alone rather than every public CA in the system store, so a
certificate some public CA issued for the same name is not accepted.
"""

from __future__ import annotations

import ssl
from pathlib import Path


def client_tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """A client context that checks the broker's certificate chain and host name.

    With `ca_file` only that CA is trusted; without it, the system trust store
    (for a broker with a publicly issued certificate).
    """
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(ca_file) if ca_file is not None else None
    )
    # create_default_context already sets both; stated so nobody weakens them by accident.
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
