"""The personal-data export: every table of the data map (docs/privacy.md) is exported or
says why not, the download holds the person's rows and no secrets, and it is audited."""

from __future__ import annotations

import re
from pathlib import Path

from cloud.db.models import Base
from cloud.privacy.export import EXPORTED, NOT_EXPORTED, SECRET_COLUMNS
from cloud.privacy.lookup import PERSON_COLUMNS
from cloud.settings import CloudSettings
from tests.cloud.booking_helpers import seed, slot
from tests.cloud.conftest import RunningCloud
from tests.helpers import auth_headers

DOC = Path(__file__).resolve().parents[3] / "docs" / "privacy.md"
# Column names that hold a person id wherever they appear.
PERSON_ID_NAMES = {"person_id", "host_person_id", "assigned_person_id", "created_by", "actor",
                   "decided_by", "subject"}  # fmt: skip


def _data_map_tables() -> set[str]:
    """Tables named in the rows of the SQL data map (`table.column` in the first cell)."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### Cloud SQL database", 1)[1].split("\n### ", 1)[0]
    section = section.split("#### Columns that look personal but are not", 1)[0]
    tables: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            tables.update(re.findall(r"`([a-z_]+)\.[a-z_]+`", first))
            tables.update(re.findall(r"^ `([a-z_]+)` \(", first))
    return tables


def test_every_table_of_the_data_map_is_exported_or_says_why_not() -> None:
    named = _data_map_tables()
    assert {"people", "badges", "bookings", "access_log", "visits"} <= named
    decided = set(EXPORTED) | set(NOT_EXPORTED)
    assert sorted(named - decided) == []
    assert set(EXPORTED).isdisjoint(NOT_EXPORTED)
    assert set(decided) <= set(Base.metadata.tables)


def test_every_table_with_a_person_id_column_is_exported() -> None:
    with_ids = {
        table.name
        for table in Base.metadata.sorted_tables
        if PERSON_ID_NAMES & set(table.columns.keys())
    }
    assert sorted(with_ids - set(EXPORTED) - set(NOT_EXPORTED)) == []
    assert set(PERSON_COLUMNS) <= set(EXPORTED)


async def test_a_person_downloads_everything_held_about_them(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    r = await cloud.http.post(
        "/api/v1/badges", json={"kind": "nfc", "uid": "04E0E0E0E0E0E1", "person_id": "p-ayu"}
    )
    assert r.status_code == 201
    ayu = auth_headers(settings, "p-ayu", ("asn",))
    start, end = slot()
    r = await cloud.http.post("/api/v1/bookings", headers=ayu, json={
        "desk_id": "L1-D01", "person_id": "p-ayu", "starts_at": start, "ends_at": end,
    })  # fmt: skip
    assert r.status_code == 201, r.text
    assert (await cloud.http.post("/api/v1/me/calendar-token", headers=ayu)).status_code == 201
    # Someone else's read of her record is part of what is held about her.
    assert (await cloud.http.get("/api/v1/people/p-ayu/private")).status_code == 200

    r = await cloud.http.get("/api/v1/me/export", headers=ayu)
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == 'attachment; filename="ruang-data-p-ayu.json"'
    body = r.json()
    tables = body["tables"]
    assert set(tables) == set(EXPORTED)
    assert body["not_exported"] == NOT_EXPORTED
    [person] = tables["people"]
    assert (person["name"], person["nip"]) == ("Ayu Lestari", "198703142010122001")
    assert [b["uid"] for b in tables["badges"]] == ["04E0E0E0E0E0E1"]
    assert [b["desk_id"] for b in tables["bookings"]] == ["L1-D01"]
    assert tables["integration_events"] and tables["notifications"]
    [token] = tables["calendar_tokens"]
    assert not set(token) & SECRET_COLUMNS["calendar_tokens"]
    assert [(x["actor"], x["what"]) for x in tables["privacy_reads"]] == [
        ("test-admin", "person.private")
    ]
    # Nobody else's data: Budi's booking, name and badge are not in it.
    assert "Budi" not in r.text and "p-budi" not in r.text
    # The export itself is in the admin audit log.
    r = await cloud.http.get("/api/v1/audit", params={"action": "person"})
    assert [(e["action"], e["actor"]) for e in r.json()["items"]] == [("person.export", "p-ayu")]


async def test_a_token_without_a_person_gets_404(cloud: RunningCloud) -> None:
    r = await cloud.http.get("/api/v1/me/export")  # the dev admin is not in the roster
    assert r.status_code == 404
