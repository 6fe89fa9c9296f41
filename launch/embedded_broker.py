"""An MQTT broker inside the demo process (amqtt), for a machine with no Mosquitto.

amqtt speaks MQTT 3.1.1 only, which is why the contract never depends on MQTT 5.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from launch.devservers import LOOPBACK, free_port


class _OneLine(logging.Filter):
    """Turns amqtt's failed-delivery tracebacks into one console line each.

    amqtt gives a subscriber 5 s to acknowledge a QoS 1 delivery and then drops it with
    a logged traceback. On a busy demo machine that happens to the cloud's session; the
    event is not lost (the edge resends events the cloud has not acknowledged,
    docs/edge-outbox.md), so the console gets a short line, not a stack.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            what = record.getMessage().split(":", 1)[0]
            record.msg = "embedded broker: %s (%s)"
            record.args = (what, record.exc_info[1])
            record.exc_info = None
            record.exc_text = None
        return True


@contextlib.asynccontextmanager
async def embedded_broker(port: int | None = None) -> AsyncIterator[str]:
    """Runs an amqtt broker on loopback and yields its mqtt:// URL."""
    from amqtt.broker import Broker

    port = port or free_port()
    # amqtt logs every connection at INFO; the demo keeps its own console readable.
    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("amqtt.broker", "amqtt.mqtt.protocol.handler"):
        logging.getLogger(name).addFilter(_OneLine())
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
