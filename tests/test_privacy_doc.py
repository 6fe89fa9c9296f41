"""docs/privacy.md, the personal-data map, names every personal column and message kind there is.

A new SQL column whose name suggests personal data, or a new MQTT message with a
badge or a person in it, fails here until the data map says where it is kept,
why, who reads it and for how long.
"""

from __future__ import annotations

import re
from pathlib import Path

import cloud.db.models

# Imported for their side effect too: they register the fleet and transport tables on the
# shared metadata.
import cloud.db.models_access
import cloud.db.models_admin
import cloud.db.models_fleet
import cloud.db.models_identity
import cloud.db.models_notifications
import cloud.db.models_privacy
import cloud.db.models_rooms
import cloud.db.models_scim
import cloud.db.models_transport
import cloud.db.models_transport_live
import cloud.db.models_transport_rides
import cloud.db.models_transport_seats
import cloud.db.models_visitors
from ruang import contract

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "privacy.md"

# Words of a column name (split on "_") that suggest personal data.
PERSONAL_WORDS = frozenset(
    {
        "person",
        "name",
        "nip",
        "badge",
        "occupant",
        "email",
        "phone",
        "host",
        "plate",
        "uid",
        "agency",
        "pass",
    }
)
# Columns whose names say nothing but whose JSON or bytes carry badges or person ids.
PERSONAL_CONTENT = (
    "events.payload",
    "dead_letters.payload",
    "integration_events.data",
    "device_status.device",
    "node_configs.config",
    "enrolment_tokens.config",
)
# Message fields that identify a person (directly or through their badge).
PERSONAL_FIELDS = frozenset({"badge", "person", "assigned_person"})
# A backticked `table.column` as the page writes it.
QUALIFIED = re.compile(r"`([a-z_]+)\.([a-z_]+)`")
PATH = re.compile(r"`((?:edge|cloud|dashboards|ruang|tests|docs)/[\w./-]*?)(?:::\w+)?`")


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _tables() -> dict[str, set[str]]:
    tables = cloud.db.models.Base.metadata.tables.values()
    return {t.name: {c.name for c in t.columns} for t in tables}


def _personal_columns() -> set[str]:
    return {
        f"{table}.{column}"
        for table, columns in _tables().items()
        for column in columns
        if PERSONAL_WORDS.intersection(column.split("_"))
    }


def test_the_personal_column_list_finds_the_known_personal_columns() -> None:
    # Guards the name heuristic itself: if it stopped matching, the next test would pass vacuously.
    found = _personal_columns()
    known = ("people.nip", "people.name", "badges.uid", "desks.occupant_badge", "events.badge")
    assert set(known) <= found
    assert cloud.db.models_fleet.EnrolmentToken.__tablename__ in _tables()
    assert "people.pass_number" in found and "node_credentials.password_hash" not in found


def test_every_personal_column_is_in_the_data_map() -> None:
    mentioned = {f"{t}.{c}" for t, c in QUALIFIED.findall(_doc())}
    expected = _personal_columns() | set(PERSONAL_CONTENT)
    missing = sorted(expected - mentioned)
    assert not missing, f"personal columns without an entry in docs/privacy.md: {missing}"


def test_every_table_column_the_data_map_names_exists() -> None:
    tables = _tables()
    stale = sorted(
        f"{t}.{c}" for t, c in QUALIFIED.findall(_doc()) if t in tables and c not in tables[t]
    )
    assert not stale, f"docs/privacy.md names columns that do not exist: {stale}"


def test_every_message_kind_carrying_a_badge_or_person_is_in_the_data_map() -> None:
    kinds = {
        kind: model
        for table in (contract.EVENT_KINDS, contract.TELEMETRY_KINDS)
        for kind, model in table.items()
    }
    personal = {k for k, m in kinds.items() if PERSONAL_FIELDS.intersection(m.model_fields)}
    assert {"checkin", "access", "badge_presence"} <= personal
    text = _doc()
    missing = sorted(k for k in personal if f"`{k}`" not in text)
    assert not missing, f"message kinds with personal data missing from docs/privacy.md: {missing}"


def test_the_snapshot_fields_naming_people_are_in_the_data_map() -> None:
    snapshot_models = (contract.SnapshotDesk, contract.SnapshotBooking, contract.SnapshotBadge)
    fields = {f for m in snapshot_models for f in m.model_fields if f in PERSONAL_FIELDS}
    assert fields == {"assigned_person", "person", "badge"}
    section = _doc()[_doc().index("`snapshot.json`") :]
    section = section[: section.index("\n|", 1)]
    for name in fields:
        assert f"`{name}`" in section, f"snapshot field {name!r} not described"


def test_every_file_the_data_map_names_exists() -> None:
    named = set(PATH.findall(_doc()))
    assert len(named) > 15
    missing = sorted(p for p in named if not (REPO / p).exists())
    assert not missing, f"docs/privacy.md names files that do not exist: {missing}"


def test_the_data_map_has_a_gaps_section_and_is_linked() -> None:
    text = _doc()
    assert "\n## Gaps\n" in text
    assert "kept until deleted (no retention yet)" in text
    for page in ("README.md", "docs/security.md"):
        assert "privacy.md" in (REPO / page).read_text(encoding="utf-8"), page
