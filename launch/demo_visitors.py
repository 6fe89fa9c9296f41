"""The demo's visitors (docs/visitors.md): a guest invited by Ayu Lestari who has arrived and is
checked in at reception with a temporary card, and another due now who has not arrived yet, so the
reception page (`/reception`) has one to check out and one to check in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

SITE = "ikn-kipp"
# (guest, organisation, purpose, starts in, hours, temporary card or None = not arrived yet)
GUESTS = (
    (
        "Rina Kusuma",
        "PT Mitra Nusantara",
        "Rapat koordinasi jaringan air",
        -0.25,
        3,
        "04DE000000A1",
    ),
    ("Hendro Gunawan", "Universitas Mulawarman", "Kunjungan riset", -0.1, 3, None),
)


async def set_up_visitors(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Invites the demo guests (their messages wait in the outbox without SMTP) and checks the
    arrived one in through the reception route; returns the visits."""
    now = datetime.now(UTC).replace(microsecond=0)
    visits = []
    for name, org, purpose, starts_in_h, hours, card in GUESTS:
        start = now + timedelta(hours=starts_in_h)
        r = await http.post(
            "/api/v1/visits",
            json={
                "guest_name": name,
                "guest_email": f"{name.split()[0].lower()}@tamu.example",
                "organisation": org,
                "purpose": purpose,
                "host_person_id": "p-ayu",
                "site_id": SITE,
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=hours)).isoformat(),
            },
        )
        r.raise_for_status()
        visit: dict[str, Any] = r.json()
        if card is not None:
            r = await http.post(
                "/api/v1/reception/checkin", json={"visit_id": visit["id"], "card_uid": card}
            )
            r.raise_for_status()
            visit = r.json()
        visits.append(visit)
    return visits
