"""The demo's office transport: the sample IKN shuttle schedule, a few vehicles, the kiosk's stops.

Set up the way an operator would, through the cloud's HTTP API with the demo's admin
token: the sample GTFS zip (cloud/transport/sample_gtfs/) is uploaded to
`POST /api/v1/transport/gtfs`, the shuttles and pool cars are created with
`POST /api/v1/transport/vehicles`, each bound to the edge node id that rides in
it, and the stops a short walk from the site are set for its lobby kiosk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

# The site of the sample layout (cloud/buildings/sample_layout/ikn-shared-office.yaml).
DEMO_SITE = "ikn-kipp"
SHUTTLES = (
    # id, label, seats, standing, wheelchair
    ("ikn-bus-1", "Shuttle K1 (Hunian ASN Blok A)", 24, 10, True),
    ("ikn-bus-2", "Shuttle K2 (Kawasan Barat)", 24, 10, True),
    ("ikn-bus-3", "Shuttle K3 (Hunian ASN Timur)", 16, 4, False),
)
POOL_CARS = (
    ("ikn-car-1", "Mobil dinas 1", 4, "KT 1701 IKN"),
    ("ikn-car-2", "Mobil dinas 2", 6, "KT 1702 IKN"),
)
# The stops a short walk from the demo building, nearest first (metres).
NEAR_STOPS = (("KIPP-TERM", 150), ("KIPP-SETNEG", 400), ("KIPP-KEMENKO", 450))


def node_of(vehicle: str) -> str:
    """The edge node id that rides in `vehicle` (GPS + door reader)."""
    return f"{vehicle}-node"


def demo_vehicles() -> list[dict[str, Any]]:
    shuttles = [
        {
            "id": vid, "kind": "shuttle", "label": label, "seats": seats,
            "capacity": seats + standing, "wheelchair_accessible": wheelchair,
            "site_id": DEMO_SITE, "node_id": node_of(vid), "state": "in_service",
        }
        for vid, label, seats, standing, wheelchair in SHUTTLES
    ]  # fmt: skip
    cars = [
        {
            "id": vid, "kind": "poolcar", "label": label, "seats": seats, "plate": plate,
            "site_id": DEMO_SITE, "node_id": node_of(vid), "state": "at_depot",
        }
        for vid, label, seats, plate in POOL_CARS
    ]  # fmt: skip
    return shuttles + cars


async def set_up_transport(http: httpx.AsyncClient) -> dict[str, int]:
    """Uploads the sample schedule, creates the vehicles and the site's stops; rows per file."""
    from cloud.transport.gtfs_export import sample_zip

    r = await http.post(
        "/api/v1/transport/gtfs", content=sample_zip(), headers={"content-type": "application/zip"}
    )
    r.raise_for_status()
    rows: dict[str, int] = r.json()["rows"]
    for vehicle in demo_vehicles():
        r = await http.post("/api/v1/transport/vehicles", json=vehicle)
        if r.status_code == 409:  # a demo database kept from an earlier run
            patch = {k: v for k, v in vehicle.items() if k not in ("id", "kind")}
            r = await http.patch(f"/api/v1/transport/vehicles/{vehicle['id']}", json=patch)
        r.raise_for_status()
    r = await http.put(
        f"/api/v1/transport/sites/{DEMO_SITE}/stops",
        json=[{"stop_id": stop, "walk_m": walk} for stop, walk in NEAR_STOPS],
    )
    r.raise_for_status()
    return rows
