"""The attendance export equals a hand-computed day: two ASN of an opted-in agency tap
desks and doors on Tuesday 3 March 2026 at the IKN site (WITA, UTC+8), the events go
through the real ingestion apply path, and the JSON and CSV answers both give the first
check-in and last presence worked out below. Real servers, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cloud.buildings.layout import SAMPLE_LAYOUT, apply_layout, load_layout
from cloud.ingest.apply import Applier, Envelope
from cloud.settings import CloudSettings
from ruang import contract
from tests.cloud.conftest import RunningCloud, unique
from tests.helpers import auth_headers

pytestmark = pytest.mark.servers

WITA = ZoneInfo("Asia/Makassar")
AGENCY = "Otorita IKN"
ROSTER = (
    "id,kind,name,agency,role,nip,email,site_id\n"
    "p-dodi,asn,Dodi Saputra,Otorita IKN,asn,199105052019031004,dodi@example.go.id,ikn-kipp\n"
    "p-rina,asn,Rina Marlina,Otorita IKN,asn,198802022012122002,rina@example.go.id,ikn-kipp\n"
    "p-sari,asn,Sari Wulandari,Otorita IKN,asn,199303032020122003,sari@example.go.id,ikn-kipp\n"
    "p-eko,asn,Eko Prasetyo,Kementerian PUPR,asn,198404042009011005,eko@example.go.id,ikn-kipp\n"
)
BADGES = {"p-rina": "04A1A1A1", "p-dodi": "04B2B2B2", "p-eko": "04C3C3C3"}
DESK_NODE = "ikn-demo-l1"  # serves L1-D01.. in the sample layout
RANGE = {"agency": AGENCY, "from": "2026-03-02", "to": "2026-03-04"}


def wita(day: int, hh: int, mm: int, ss: int = 0) -> float:
    return datetime(2026, 3, day, hh, mm, ss, tzinfo=WITA).timestamp()


def history(door_node: str, door: str) -> list[contract.Message]:
    """Tuesday 3 March (and one tap just after midnight into Wednesday), site time."""
    rina, dodi, eko = BADGES["p-rina"], BADGES["p-dodi"], BADGES["p-eko"]
    seq = iter(range(1, 100))

    def at_door(badge: str, ts: float, granted: bool = True) -> contract.AccessDecision:
        return contract.AccessDecision(
            node=door_node, door=door, badge=badge, granted=granted, ts=ts,
            reason="allowed" if granted else "outside_schedule",
            audit_seq=next(seq), audit_hash="0" * 64,
        )  # fmt: skip

    def checkin(desk: str, badge: str, ts: float) -> contract.CheckIn:
        return contract.CheckIn(node=DESK_NODE, desk=desk, badge=badge, ts=ts)

    def checkout(desk: str, badge: str, ts: float, reason: Any = "tap") -> contract.CheckOut:
        return contract.CheckOut(node=DESK_NODE, desk=desk, badge=badge, ts=ts, reason=reason)

    return [
        # Rina: the door at 07:38:20 WITA is 23:38:20 UTC on Monday, still her Tuesday.
        at_door(rina, wita(3, 7, 38, 20)),
        checkin("L1-D01", rina, wita(3, 7, 45)),
        checkout("L1-D01", rina, wita(3, 11, 58)),
        checkin("L1-D01", rina, wita(3, 13, 5)),
        at_door(rina, wita(3, 17, 21, 30)),
        # The desk's away timer checked her out later: the desk, not her.
        checkout("L1-D01", rina, wita(3, 17, 40), reason="left"),
        # Refused at the door and at a desk: refusals never count.
        at_door(rina, wita(3, 18, 2), granted=False),
        contract.TapRefused(node=DESK_NODE, desk="L1-D02", badge=rina, reason="booked",
                            ts=wita(3, 18, 5)),
        # Dodi: refused first, then a desk day.
        contract.TapRefused(node=DESK_NODE, desk="L1-D03", badge=dodi, reason="booked",
                            ts=wita(3, 7, 50)),
        checkin("L1-D02", dodi, wita(3, 8, 12, 40)),
        checkout("L1-D02", dodi, wita(3, 16, 55, 5)),
        # 00:10 WITA on Wednesday is 16:10 UTC on Tuesday: Wednesday's row.
        at_door(dodi, wita(4, 0, 10)),
        # Eko's agency never opted in.
        checkin("L1-D03", eko, wita(3, 8, 0)),
    ]  # fmt: skip


# Hand-computed from the history above (times are site-local, WITA):
# - Rina, Tue: counted events 07:38:20 (door), 07:45 (check-in), 11:58 (tapped out),
#   13:05 (check-in), 17:21:30 (door); not 17:40 (away timer), 18:02 (door refused),
#   18:05 (desk refused). First = min = 07:38:20, last = max = 17:21:30.
# - Dodi, Tue: 08:12:40 (check-in), 16:55:05 (tapped out); not 07:50 (refused).
#   Wed: 00:10:00 (door) is both first and last.
# - Sari: no events. Mon 2 March is a holiday of the site (no rows for anyone without
#   events), Tue is absent, Wed is the agency's remote weekday (3) for Rina and Sari.
EXPECTED = [
    ("p-dodi", "2026-03-03", "present", "2026-03-03T08:12:40+08:00", "2026-03-03T16:55:05+08:00"),
    ("p-dodi", "2026-03-04", "present", "2026-03-04T00:10:00+08:00", "2026-03-04T00:10:00+08:00"),
    ("p-rina", "2026-03-03", "present", "2026-03-03T07:38:20+08:00", "2026-03-03T17:21:30+08:00"),
    ("p-rina", "2026-03-04", "remote", None, None),
    ("p-sari", "2026-03-03", "absent", None, None),
    ("p-sari", "2026-03-04", "remote", None, None),
]  # fmt: skip


async def seeded(cloud: RunningCloud) -> None:
    await apply_layout(cloud.app.state.engine, load_layout(SAMPLE_LAYOUT))
    http = cloud.http
    r = await http.post(
        "/api/v1/people/import", content=ROSTER, headers={"content-type": "text/csv"}
    )
    assert r.status_code == 200, r.text
    for person, uid in BADGES.items():
        r = await http.post("/api/v1/badges", json={"kind": "nfc", "uid": uid, "person_id": person})
        assert r.status_code == 201, r.text
    door_node, door = unique("door-node"), unique("door-lobby")
    r = await http.put(
        f"/api/v1/access/doors/{door}",
        json={"site_id": "ikn-kipp", "name": "Lobi A1", "node_id": door_node},
    )
    assert r.status_code == 200, r.text
    r = await http.put(
        "/api/v1/access/holidays",
        json={"site_id": "ikn-kipp", "day": "2026-03-02", "name": "Libur uji"},
    )
    assert r.status_code == 200, r.text
    # The ingestion's own apply step, as the pipeline runs it after decoding (the
    # pipeline's clock window would refuse a fixed date in the past).
    engine = cloud.app.state.engine
    envs = [
        Envelope(
            contract.ParsedTopic(m.node, contract.Channel.EVENTS, contract.kind_of(m)), m, m.ts + 2
        )
        for m in history(door_node, door)
    ]
    async with engine.begin() as conn:
        result = await Applier(engine.dialect.name).apply(conn, envs)
    assert result.applied == len(envs) and not result.refused


async def opt_in(cloud: RunningCloud, **terms: Any) -> None:
    body = {"receiver": "e-Kinerja BKN", "remote_weekdays": [3], **terms}
    r = await cloud.http.put(f"/api/v1/attendance/agencies/{AGENCY}", json=body)
    assert r.status_code == 200, r.text


def projected(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    keys = ("person_id", "date", "status", "first_check_in", "last_presence")
    return [tuple(r[k] or None for k in keys) for r in rows]


async def test_the_export_equals_the_hand_computed_day_in_json_and_csv(
    cloud: RunningCloud,
) -> None:
    await seeded(cloud)
    await opt_in(cloud)
    r = await cloud.http.get("/api/v1/attendance", params=RANGE)
    assert r.status_code == 200, r.text
    page = r.json()
    assert projected(page["rows"]) == EXPECTED
    assert {row["site_id"] for row in page["rows"]} == {"ikn-kipp"}
    assert page["next_after"] is None and page["include_identity"] is False
    assert all(row["name"] is None and row["nip"] is None for row in page["rows"])

    by_param = await cloud.http.get("/api/v1/attendance", params={**RANGE, "format": "csv"})
    by_accept = await cloud.http.get(
        "/api/v1/attendance", params=RANGE, headers={"Accept": "text/csv"}
    )
    for answer in (by_param, by_accept):
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert "nip" not in rows[0] and "name" not in rows[0]
        assert projected(rows) == EXPECTED
        assert [r["site_id"] for r in rows] == [r["site_id"] or "" for r in page["rows"]]


async def test_names_and_nip_travel_only_when_the_opt_in_says_so(cloud: RunningCloud) -> None:
    await seeded(cloud)
    await opt_in(cloud, include_identity=True)
    page = (await cloud.http.get("/api/v1/attendance", params=RANGE)).json()
    assert {(r["person_id"], r["name"], r["nip"]) for r in page["rows"]} == {
        ("p-dodi", "Dodi Saputra", "199105052019031004"),
        ("p-rina", "Rina Marlina", "198802022012122002"),
        ("p-sari", "Sari Wulandari", "199303032020122003"),
    }
    text = (await cloud.http.get("/api/v1/attendance", params={**RANGE, "format": "csv"})).text
    assert next(csv.reader(io.StringIO(text)))[-2:] == ["name", "nip"]


async def test_an_agency_that_has_not_opted_in_is_refused(cloud: RunningCloud) -> None:
    await seeded(cloud)
    r = await cloud.http.get("/api/v1/attendance", params=RANGE)
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["title"] == "Attendance export not enabled for this agency"
    await opt_in(cloud)
    other = {**RANGE, "agency": "Kementerian PUPR"}
    assert (await cloud.http.get("/api/v1/attendance", params=other)).status_code == 403
    # Opting out turns it off again.
    assert (await cloud.http.delete(f"/api/v1/attendance/agencies/{AGENCY}")).status_code == 204
    assert (await cloud.http.get("/api/v1/attendance", params=RANGE)).status_code == 403


async def test_a_technician_is_refused_and_the_dpo_may_export(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seeded(cloud)
    await opt_in(cloud)
    tech = auth_headers(settings, "p-tech", ("technician",), sites=("ikn-kipp",))
    r = await cloud.http.get("/api/v1/attendance", params=RANGE, headers=tech)
    assert r.status_code == 403
    r = await cloud.http.put("/api/v1/attendance/agencies/X", json={"receiver": "x"}, headers=tech)
    assert r.status_code == 403
    dpo = auth_headers(settings, "p-dpo", ("dpo",))
    r = await cloud.http.get("/api/v1/attendance", params=RANGE, headers=dpo)
    assert r.status_code == 200, r.text
    assert projected(r.json()["rows"]) == EXPECTED
    # Opting agencies in and out stays with admins.
    r = await cloud.http.put("/api/v1/attendance/agencies/X", json={"receiver": "x"}, headers=dpo)
    assert r.status_code == 403


async def test_every_export_and_opt_in_is_audited(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seeded(cloud)
    await opt_in(cloud)
    dpo = auth_headers(settings, "p-dpo", ("dpo",))
    assert (await cloud.http.get("/api/v1/attendance", params=RANGE, headers=dpo)).is_success
    entries = (await cloud.http.get("/api/v1/audit", params={"action": "attendance"})).json()
    actions = [(e["action"], e["actor"], e["target"]) for e in entries["items"]]
    assert actions == [
        ("attendance.export", "p-dpo", f"agency:{AGENCY}"),
        ("attendance.opt_in", "test-admin", f"agency:{AGENCY}"),
    ]
    detail = entries["items"][0]["detail"]
    assert detail["from"] == "2026-03-02" and detail["to"] == "2026-03-04"
    assert detail["rows"] == len(EXPECTED) and detail["format"] == "json"
    reads = (
        await cloud.http.get("/api/v1/privacy/access-log", params={"what": "attendance.export"})
    ).json()
    assert [(e["actor"], e["role"], e["records"]) for e in reads["entries"]] == [
        ("p-dpo", "dpo", len(EXPECTED))
    ]


async def test_pages_split_by_person_and_ranges_are_bounded(cloud: RunningCloud) -> None:
    await seeded(cloud)
    await opt_in(cloud)
    first = (await cloud.http.get("/api/v1/attendance", params={**RANGE, "limit": 2})).json()
    assert first["next_after"] == "p-rina"
    rest = await cloud.http.get(
        "/api/v1/attendance", params={**RANGE, "limit": 2, "after": "p-rina", "format": "csv"}
    )
    assert "ruang-next-after" not in rest.headers
    both = projected(first["rows"]) + projected(list(csv.DictReader(io.StringIO(rest.text))))
    assert both == EXPECTED
    too_long = {**RANGE, "from": "2026-03-01", "to": "2026-04-01"}  # 32 days
    r = await cloud.http.get("/api/v1/attendance", params=too_long)
    assert r.status_code == 422 and r.json()["title"] == "Date range too long"
    reversed_ = {**RANGE, "from": "2026-03-04", "to": "2026-03-02"}
    assert (await cloud.http.get("/api/v1/attendance", params=reversed_)).status_code == 422
