"""An MQTT broker inside the demo process (amqtt), for a machine with no Mosquitto.

amqtt speaks MQTT 3.1.1 only, which is why the contract never depends on MQTT 5.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from launch.devservers import LOOPBACK, free_port


@contextlib.asynccontextmanager
async def embedded_broker(port: int | None = None) -> AsyncIterator[str]:
    """Runs an amqtt broker on loopback and yields its mqtt:// URL."""
    from amqtt.broker import Broker

    port = port or free_port()
    # amqtt logs every connection at INFO; the demo keeps its own console readable.
    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.WARNING)
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"{LOOPBACK}:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
    )
    await broker.start()
    try:
        yield f"mqtt://{LOOPBACK}:{port}"
    finally:
        await broker.shutdown()
