"""The personal-data access audit: reads of other people's data are recorded with who, what,
when and the role used (one row per request), one's own reads are not, and only the
data-protection officer (`dpo`) and admins search them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.db.tables import ACCESS_LOG
from cloud.settings import CloudSettings
from tests.cloud.booking_helpers import seed
from tests.cloud.conftest import RunningCloud
from tests.helpers import auth_headers

LOG = "/api/v1/privacy/access-log"


async def test_reads_of_other_peoples_data_are_recorded_and_searchable_by_the_dpo(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    # Two people of the site the manager looks after (booking_helpers' roster has no site).
    roster = "id,kind,name,role,site_id\np-dewi,asn,Dewi,asn,ikn-kipp\np-eko,asn,Eko,asn,ikn-kipp\n"
    r = await cloud.http.post(
        "/api/v1/people/import", content=roster, headers={"content-type": "text/csv"}
    )
    assert r.status_code == 200, r.text
    dpo = auth_headers(settings, "p-dpo", ("dpo",))
    ayu = auth_headers(settings, "p-ayu", ("asn",))
    manager = auth_headers(settings, "p-citra", ("facility_manager",), ("ikn-kipp",))
    tech = auth_headers(settings, "p-tech", ("technician",), ("ikn-kipp",))
    guard = auth_headers(settings, "p-satpam", ("security",), ("ikn-kipp",))
    started = datetime.now(UTC) - timedelta(seconds=1)

    assert (await cloud.http.get("/api/v1/people/p-ayu/private")).status_code == 200
    r = await cloud.http.get("/api/v1/people", headers=manager)
    listed = [p["id"] for p in r.json()]
    assert r.status_code == 200 and listed == ["p-dewi", "p-eko"]
    assert (await cloud.http.get("/api/v1/access-log", headers=guard)).status_code == 200
    # Not recorded: one's own record, a map without names, an empty access-log page.
    assert (await cloud.http.get("/api/v1/me", headers=ayu)).status_code == 200
    assert (await cloud.http.get("/api/v1/floors/A1-L1/map", headers=tech)).status_code == 200

    r = await cloud.http.get(LOG, headers=dpo)
    assert r.status_code == 200, r.text
    rows = [(e["actor"], e["role"], e["what"], e["subject"], e["records"])
            for e in r.json()["entries"]]  # fmt: skip
    assert rows == [
        ("p-citra", "facility_manager", "person.list", None, len(listed)),
        ("test-admin", "admin", "person.private", "p-ayu", 1),
    ]
    assert all(datetime.fromisoformat(e["at"]) >= started for e in r.json()["entries"])

    r = await cloud.http.get(LOG, headers=dpo, params={"subject": "p-ayu"})
    assert [e["what"] for e in r.json()["entries"]] == ["person.private"]
    r = await cloud.http.get(LOG, headers=dpo, params={"role": "facility_manager", "limit": 1})
    assert [e["actor"] for e in r.json()["entries"]] == ["p-citra"]
    r = await cloud.http.get(LOG, params={"limit": 1})  # admins too; paged newest first
    page = r.json()
    assert len(page["entries"]) == 1 and page["next_before"] is not None
    r = await cloud.http.get(LOG, params={"before": page["next_before"]})
    assert [e["what"] for e in r.json()["entries"]] == ["person.private"]
    until = started.isoformat()
    r = await cloud.http.get(LOG, headers=dpo, params={"until": until})
    assert r.json()["entries"] == []
    later = (started + timedelta(days=1)).isoformat()
    r = await cloud.http.get(LOG, headers=dpo, params={"since": later, "until": until})
    assert r.status_code == 422


async def test_nobody_else_searches_the_access_audit(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    for roles in (("asn",), ("facility_manager",), ("security",), ("technician",)):
        r = await cloud.http.get(LOG, headers=auth_headers(settings, "p-x", roles, ("ikn-kipp",)))
        assert r.status_code == 403, roles


async def test_reads_of_the_access_log_and_the_visitor_log_are_recorded(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    now = datetime.now(UTC)
    async with cloud.app.state.engine.begin() as conn:
        await conn.execute(ACCESS_LOG.insert().values(
            message_id="m-audit-1", node="door-node", door="D-LOBBY", badge="04AB", granted=True,
            person_id="p-ayu", reason="ok", ts=now, ts_raw=now.timestamp(), received_at=now,
            audit_seq=1, audit_hash="0" * 64,
        ))  # fmt: skip
    r = await cloud.http.get("/api/v1/access-log", params={"person": "p-ayu"})
    assert r.status_code == 200 and len(r.json()["items"]) == 1
    ayu = auth_headers(settings, "p-ayu", ("asn",))
    visit = {
        "guest_name": "Rina Kusuma", "guest_email": "rina@mitra.example", "site_id": "ikn-kipp",
        "starts_at": (now - timedelta(minutes=5)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
    }  # fmt: skip
    r = await cloud.http.post("/api/v1/visits", json=visit, headers=ayu)
    assert r.status_code == 201, r.text
    # The host reading their own guest is not recorded; reception is.
    assert (await cloud.http.get(f"/api/v1/visits/{r.json()['id']}", headers=ayu)).is_success
    desk = auth_headers(settings, "p-rc", ("reception",), ("ikn-kipp",))
    r = await cloud.http.get("/api/v1/reception/visits", headers=desk)
    assert r.status_code == 200 and len(r.json()) == 1

    r = await cloud.http.get(LOG, headers=auth_headers(settings, "p-dpo", ("dpo",)))
    rows = [(e["actor"], e["role"], e["what"], e["subject"], e["records"])
            for e in r.json()["entries"]]  # fmt: skip
    assert rows == [
        ("p-rc", "reception", "visitor_log", None, 1),
        ("test-admin", "admin", "access_log", "p-ayu", 1),
    ]
