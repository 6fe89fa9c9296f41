"""The demo's door: the floor's lobby door, its rights set in the cloud, opened and refused.

Set up the way the security role would, through the cloud's HTTP API with the demo's
admin token: the door `DEMO_DOOR` (controlled by the demo node), an access group of
everyone of Otorita IKN, and a grant of the lobby to it every day all day. The edge
drives one simulated OSDP reader (secure channel, over a pty pair) for that door and
decides every card read from the rights in its signed snapshot. Every `DOOR_EVERY_S`
(scenario time) someone of Otorita IKN badges in (the door opens) and someone of
another agency tries (refused: not allowed at this door); both decisions land in the
access log (`GET /api/v1/access-log`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from launch.demo_transport import DEMO_SITE

if TYPE_CHECKING:
    import httpx

    from simulators.osdp_reader import OsdpReaderSim

log = logging.getLogger(__name__)

DEMO_DOOR = "ikn-l1-lobby"
GROUP = "otorita-ikn"
AGENCY = "Otorita IKN"
# The demo reader's Secure Channel base key (a demo value; real ones come from the installer).
DEMO_SCBK = "8f2d1c4b6a7e90513c2e4f6a8b0d1e3f"
PERMITTED = "p-rudi"  # Otorita IKN
REFUSED = "p-ayu"  # Kementerian PUPR
DOOR_EVERY_S = 1800.0
EVERY_DAY = [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00",
              "end": "24:00"}]  # fmt: skip


async def set_up_doors(http: httpx.AsyncClient, node: str) -> int:
    """The lobby door, the Otorita IKN group and its grant; returns the rights' version."""
    steps: list[tuple[str, dict[str, Any]]] = [
        (f"/api/v1/access/doors/{DEMO_DOOR}",
         {"site_id": DEMO_SITE, "name": "Pintu lobi L1", "node_id": node}),
        (f"/api/v1/access/groups/{GROUP}",
         {"site_id": DEMO_SITE, "name": AGENCY, "rule": "agency", "value": AGENCY}),
        ("/api/v1/access/grants", {"group_id": GROUP, "door_id": DEMO_DOOR, "schedule": EVERY_DAY}),
    ]  # fmt: skip
    version = 0
    for path, body in steps:
        r = await http.put(path, json=body)
        r.raise_for_status()
        version = int(r.json()["version"])
    return version


def door_config(reader: OsdpReaderSim, key_file: Path) -> Any:
    """The edge's DoorConfig for the demo reader, its SCBK sealed with the node key."""
    from edge.devices.access_policy import WeeklySchedule
    from edge.devices.door import DoorConfig
    from edge.devices.door_keys import create_node_key_file, load_node_key, seal_key

    kek = load_node_key(key_file) if key_file.exists() else create_node_key_file(key_file)
    return DoorConfig(
        id=DEMO_DOOR, port=str(reader.cp_port), scbk_sealed=seal_key(DEMO_SCBK, kek),
        # Only the file fallback: the cloud's rights decide this door.
        schedule=WeeklySchedule.always(), open_ms=3000,
    )  # fmt: skip


async def play_door(reader: OsdpReaderSim, badges: dict[str, str], speed: float) -> None:
    """Now and then a permitted badge and a refused one at the lobby reader."""
    while True:
        for person in (PERMITTED, REFUSED):
            uid = badges.get(person)
            if uid is not None and reader.is_secure():
                reader.present_card(bytes.fromhex(uid))
            await asyncio.sleep(2.0)
        await asyncio.sleep(max(1.0, DOOR_EVERY_S / speed))
