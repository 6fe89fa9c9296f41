"""Device drivers of the edge agent, one module per hardware kind.

Every driver follows the same small shape so the agent can run any mix of them:

- built from its typed config plus a `publish` callback (the agent's uplink queue),
- `async def run()` supervises the device forever: open, read, decode, publish,
  and on loss (unplugged cable, closed pty, dead adapter) report it, back off and
  reopen (see `supervisor.supervise`), without affecting other devices,
- `health()` returns a `contract.DeviceHealth` for node health and technicians.

The protocol logic itself lives in sans-io codecs in `firmware_bridge/`; drivers
only move bytes and turn decoded frames into contract messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ruang import contract

Publish = Callable[[contract.Message], None]


class DeviceDriver(Protocol):
    device_id: str
    kind: str

    async def run(self) -> None: ...

    def health(self) -> contract.DeviceHealth: ...
