"""Bookings through the HTTP API on SQLite and PostgreSQL: rules, conflicts, availability."""

from __future__ import annotations

from cloud.settings import CloudSettings
from tests.cloud.booking_helpers import booking, seed, slot
from tests.cloud.conftest import RunningCloud

PROBLEM = "application/problem+json"


async def test_book_list_cancel_and_history(cloud: RunningCloud, settings: CloudSettings) -> None:
    await seed(cloud, settings)
    when = slot()
    r = await cloud.http.post("/api/v1/bookings", json=booking("L1-D01", "p-ayu", when))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["status"] == "booked" and created["starts_at"].endswith("Z")  # UTC
    r = await cloud.http.get("/api/v1/bookings", params={"person": "p-ayu"})
    assert [b["id"] for b in r.json()] == [created["id"]]
    # Listings name the desk and where it is, so "my bookings" reads like the building.
    listed = r.json()[0]
    assert (listed["desk_label"], listed["floor_name"], listed["zone_name"]) == (
        "Meja dekat jendela L1-D01",
        "Lantai 1",
        "Area Kolaborasi Terbuka",
    )

    r = await cloud.http.post(f"/api/v1/bookings/{created['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert r.json()["cancelled_at"] is not None
    # Cancelled stays in history and frees the slot.
    r = await cloud.http.get("/api/v1/bookings", params={"desk": "L1-D01"})
    assert [b["status"] for b in r.json()] == ["cancelled"]
    r = await cloud.http.post("/api/v1/bookings", json=booking("L1-D01", "p-budi", when))
    assert r.status_code == 201
    r = await cloud.http.post(f"/api/v1/bookings/{created['id']}/cancel")
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM


async def test_double_booking_and_person_rule_are_409(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    when = slot(hour=8)
    assert (
        await cloud.http.post("/api/v1/bookings", json=booking("L1-D02", "p-ayu", when))
    ).status_code == 201
    # Same desk, overlapping slot, someone else.
    later = slot(hour=10)
    r = await cloud.http.post("/api/v1/bookings", json=booking("L1-D02", "p-budi", later))
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert r.json()["title"] == "Desk already booked for that time"
    # Same person, another desk, overlapping slot.
    r = await cloud.http.post("/api/v1/bookings", json=booking("L1-D03", "p-ayu", later))
    assert r.status_code == 409
    assert r.json()["title"] == "You already have a desk for that time"
    # Back to back is not an overlap: [08:00, 12:00) then [12:00, 16:00).
    after = slot(hour=12)
    r = await cloud.http.post("/api/v1/bookings", json=booking("L1-D02", "p-budi", after))
    assert r.status_code == 201, r.text


async def test_rules_of_the_site_and_desk_modes(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    cases = [
        (booking("L1-D01", "p-ayu", slot(hours=11)), 422, "Booking too long"),
        (booking("L1-D01", "p-ayu", slot(days=-2)), 422, "Booking in the past"),
        (booking("L1-D01", "p-ayu", slot(days=20)), 422, "Too far ahead"),
        (booking("L1-D11", "p-ayu", slot()), 409, "Drop-in desk"),
        (booking("L1-D24", "p-ayu", slot()), 409, "Desk unavailable"),
        # L1-D07.. are in the zone reserved for Kementerian PUPR; Ayu is Otorita IKN.
        (booking("L1-D07", "p-ayu", slot()), 403, "Zone reserved for another agency"),
        (booking("L1-D99", "p-ayu", slot()), 404, "Desk not found"),
        (booking("L1-D01", "nobody", slot()), 404, "Person not found"),
    ]
    for body, status, title in cases:
        r = await cloud.http.post("/api/v1/bookings", json=body)
        assert (r.status_code, r.json().get("title")) == (status, title), body
        assert r.headers["content-type"] == PROBLEM
    r = await cloud.http.post("/api/v1/bookings", json=booking("L1-D07", "p-budi", slot()))
    assert r.status_code == 201
    r = await cloud.http.post(
        "/api/v1/bookings",
        json={
            "desk_id": "L1-D01",
            "person_id": "p-ayu",
            "starts_at": "2030-01-01T09:00:00",
            "ends_at": "2030-01-01T10:00:00",
        },
    )
    assert r.status_code == 422  # no offset: ambiguous


async def test_extend_into_a_conflict_is_409(cloud: RunningCloud, settings: CloudSettings) -> None:
    await seed(cloud, settings)
    first = (
        await cloud.http.post(
            "/api/v1/bookings", json=booking("L1-D04", "p-ayu", slot(hour=8, hours=2))
        )
    ).json()
    await cloud.http.post(
        "/api/v1/bookings", json=booking("L1-D04", "p-budi", slot(hour=12, hours=2))
    )
    r = await cloud.http.post(
        f"/api/v1/bookings/{first['id']}/extend", json={"ends_at": slot(hour=11)[0]}
    )
    assert r.status_code == 200 and r.json()["ends_at"] != first["ends_at"]
    r = await cloud.http.post(
        f"/api/v1/bookings/{first['id']}/extend", json={"ends_at": slot(hour=13)[0]}
    )
    assert r.status_code == 409 and r.json()["title"] == "Desk already booked for that time"
    r = await cloud.http.post(
        f"/api/v1/bookings/{first['id']}/extend", json={"ends_at": slot(hour=9)[0]}
    )
    assert r.status_code == 422


async def test_availability_excludes_booked_and_filters(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    start, end = slot()
    params = {"start": start, "end": end, "floor": "A1-L1"}
    free = {
        d["id"]
        for d in (await cloud.http.get("/api/v1/availability", params=params)).json()["desks"]
    }
    assert "L1-D01" in free and "L1-D24" not in free  # D24 is unavailable
    await cloud.http.post("/api/v1/bookings", json=booking("L1-D01", "p-ayu", (start, end)))
    body = (await cloud.http.get("/api/v1/availability", params=params)).json()
    assert "L1-D01" not in {d["id"] for d in body["desks"]}
    assert len(body["rooms"]) == 2
    # A slot after the booking sees the desk free again.
    later = slot(hour=14)
    body = (
        await cloud.http.get(
            "/api/v1/availability", params={**params, "start": later[0], "end": later[1]}
        )
    ).json()
    assert "L1-D01" in {d["id"] for d in body["desks"]}

    body = (
        await cloud.http.get(
            "/api/v1/availability",
            params={
                **params,
                "start": later[0],
                "end": later[1],
                "features": "monitor,standing",
                "zone": "A1-L1-Z1",
            },
        )
    ).json()
    # In zone 1 only L1-D01 has both; L1-D09 has them too but sits in zone 2.
    assert [d["id"] for d in body["desks"]] == ["L1-D01"]
    # "monitor" must not match "dual_monitor".
    body = (
        await cloud.http.get("/api/v1/availability", params={**params, "features": "monitor"})
    ).json()
    assert all("monitor" in d["features"] for d in body["desks"])
    body = (await cloud.http.get("/api/v1/availability", params={**params, "capacity": 10})).json()
    assert [r["capacity"] for r in body["rooms"]] == [12]
    r = await cloud.http.get("/api/v1/availability", params={**params, "features": "sofa"})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM


async def test_recurring_lists_conflicts_without_failing(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    from datetime import date, timedelta

    first = date.fromisoformat(slot(days=1)[0][:10])
    last = first + timedelta(days=20)  # beyond the 14-day horizon on purpose
    taken = slot(days=2, hour=10, hours=1)
    await cloud.http.post("/api/v1/bookings", json=booking("L1-D05", "p-budi", taken))
    r = await cloud.http.post(
        "/api/v1/bookings/recurring",
        json={
            "desk_id": "L1-D05",
            "person_id": "p-ayu",
            "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "first_day": first.isoformat(),
            "last_day": last.isoformat(),
            "start_time": "08:00",
            "end_time": "16:00",
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    titles = {c["day"]: c["title"] for c in body["conflicts"]}
    assert titles[taken[0][:10]] == "Desk already booked for that time"
    assert "Too far ahead" in titles.values()
    assert len(body["created"]) + len(body["conflicts"]) == 21
    assert all(b["series_id"] == body["series_id"] for b in body["created"])
    assert body["created"][0]["starts_at"].startswith(f"{first.isoformat()}T00:00:00")
