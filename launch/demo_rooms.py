"""The demo's meeting rooms: two rooms on floor 1 booked through the API, with their panels.

`set_up_rooms` books Ruang Rapat 1.1 for a meeting running now (another agency's:
its panel shows the times, not the title) and Ruang Rapat 1.2, in the Kementerian
PUPR zone, for a PUPR meeting this afternoon (its panel shows the title) and returns
both rooms' panel URLs, which the demo prints. The rooms' simulated radars
(launch/demo.py `play_rooms`) then make the meetings attended or no-shows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

# (room, organiser, title, start offset from now, minutes)
MEETINGS = (
    ("A1-L1-R1", "p-hendra", "Koordinasi fasilitas", timedelta(minutes=-5), 60),
    ("A1-L1-R2", "p-ayu", "Rapat teknis PUPR", timedelta(hours=3), 90),
)


async def set_up_rooms(http: httpx.AsyncClient) -> dict[str, str]:
    """Books the demo meetings; returns {room: panel URL}."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    panels: dict[str, str] = {}
    for room, person, title, offset, minutes in MEETINGS:
        start = now + offset
        r = await http.post(
            "/api/v1/room-bookings",
            json={
                "room_id": room,
                "person_id": person,
                "title": title,
                "attendees": 5,
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(minutes=minutes)).isoformat(),
            },
        )
        # 409: a demo restarted on the same data directory already booked it.
        if r.status_code not in (201, 409):
            r.raise_for_status()
        panel = await http.get(f"/api/v1/rooms/{room}/panel-url")
        panel.raise_for_status()
        panels[room] = str(panel.json()["panel_url"])
    return panels
