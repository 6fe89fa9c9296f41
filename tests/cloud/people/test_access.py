"""Who may do what: ASN their own bookings, facility managers their sites, roles per resource."""

from __future__ import annotations

import httpx

from cloud.settings import CloudSettings
from tests.cloud.booking_helpers import booking, seed, slot
from tests.cloud.conftest import RunningCloud
from tests.helpers import auth_headers


def as_(
    settings: CloudSettings, subject: str, *roles: str, sites: tuple[str, ...] = ()
) -> dict[str, str]:
    return auth_headers(settings, subject, roles, sites)


async def test_requests_without_a_token_are_401(cloud: RunningCloud) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=cloud.app), base_url="http://cloud"
    ) as anonymous:
        r = await anonymous.get("/api/v1/bookings")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")


async def test_asn_books_and_sees_only_their_own_bookings(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    ayu = as_(settings, "p-ayu", "asn")
    budi = as_(settings, "p-budi", "asn")
    when = slot(hour=8)
    mine = await cloud.http.post(
        "/api/v1/bookings", json=booking("L1-D05", "p-ayu", when), headers=ayu
    )
    assert mine.status_code == 201
    for_someone_else = await cloud.http.post(
        "/api/v1/bookings", json=booking("L1-D06", "p-budi", when), headers=ayu
    )
    assert for_someone_else.status_code == 403
    assert for_someone_else.json()["title"] == "Not your booking"
    assert [
        b["person_id"] for b in (await cloud.http.get("/api/v1/bookings", headers=budi)).json()
    ] == []
    assert (
        await cloud.http.get("/api/v1/bookings", params={"person": "p-ayu"}, headers=budi)
    ).status_code == 403
    booking_id = mine.json()["id"]
    cancel = await cloud.http.post(f"/api/v1/bookings/{booking_id}/cancel", headers=budi)
    assert cancel.status_code == 403
    assert (
        await cloud.http.post(f"/api/v1/bookings/{booking_id}/cancel", headers=ayu)
    ).status_code == 200


async def test_facility_manager_acts_in_their_site_only(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    when = slot(hour=13)
    fm_here = as_(settings, "p-citra", "facility_manager", sites=("ikn-kipp",))
    fm_elsewhere = as_(settings, "fm-other", "facility_manager", sites=("another-site",))
    r = await cloud.http.post(
        "/api/v1/bookings", json=booking("L1-D07", "p-budi", when), headers=fm_elsewhere
    )
    assert r.status_code == 403
    r = await cloud.http.post(
        "/api/v1/bookings", json=booking("L1-D07", "p-budi", when), headers=fm_here
    )
    assert r.status_code == 201, r.text
    seen = (await cloud.http.get("/api/v1/bookings", headers=fm_here)).json()
    assert [b["desk_id"] for b in seen] == ["L1-D07"]
    assert (await cloud.http.get("/api/v1/bookings", headers=fm_elsewhere)).json() == []


async def test_roles_guard_people_analytics_webhooks_and_enrolment(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    technician = as_(settings, "tech-1", "technician")
    asn = as_(settings, "p-ayu", "asn")
    assert (await cloud.http.get("/api/v1/people", headers=asn)).status_code == 403
    assert (
        await cloud.http.get(
            "/api/v1/analytics/heatmap",
            params={"from": "2026-11-01T00:00:00+08:00", "to": "2026-11-02T00:00:00+08:00"},
            headers=technician,
        )
    ).status_code == 403
    assert (await cloud.http.get("/api/v1/webhooks", headers=technician)).status_code == 403
    r = await cloud.http.post("/api/v1/enrolment-tokens", json={}, headers=asn)
    assert r.status_code == 403
    r = await cloud.http.post("/api/v1/enrolment-tokens", json={}, headers=technician)
    assert r.status_code == 201


async def test_nip_is_shown_to_the_person_and_admins_only(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    ayu = as_(settings, "p-ayu", "asn")
    me = await cloud.http.get("/api/v1/me", headers=ayu)
    assert me.status_code == 200 and me.json()["nip"] == "198703142010122001"
    listed = (await cloud.http.get("/api/v1/people")).json()
    assert all("nip" not in p for p in listed)
    fm = as_(settings, "p-citra", "facility_manager", sites=("ikn-kipp",))
    assert (await cloud.http.get("/api/v1/people/p-ayu/private", headers=fm)).status_code == 403
    admin = await cloud.http.get("/api/v1/people/p-ayu/private")
    assert admin.json()["nip"] == "198703142010122001"
