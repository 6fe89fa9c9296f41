"""The published webhook schemas: docs/webhooks/*.schema.json are what the models generate,
one per kind, each listed in docs/webhooks.md; payloads are reduced to their model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from cloud.integrations.events import KINDS
from cloud.integrations.payloads import MODELS, clean, schema_text

DOCS = Path(__file__).resolve().parents[3] / "docs"


def test_every_kind_has_a_model_and_its_committed_schema_is_current() -> None:
    assert set(KINDS) == set(MODELS)
    committed = {p.name for p in (DOCS / "webhooks").glob("*.schema.json")}
    assert committed == {f"{k}.schema.json" for k in KINDS}, (
        "run `python -m cloud.integrations.payloads docs/webhooks`"
    )
    for kind in KINDS:
        text = (DOCS / "webhooks" / f"{kind}.schema.json").read_text(encoding="utf-8")
        assert text == schema_text(kind), (
            f"docs/webhooks/{kind}.schema.json is stale: "
            "run `python -m cloud.integrations.payloads docs/webhooks`"
        )
        Draft202012Validator.check_schema(json.loads(text))


def test_the_webhooks_page_lists_every_kind_with_its_schema() -> None:
    page = (DOCS / "webhooks.md").read_text(encoding="utf-8")
    for kind in KINDS:
        assert f"[`{kind}`](webhooks/{kind}.schema.json)" in page, kind
    for model in set(MODELS.values()):
        for field in model.model_fields:
            assert f"`{field}`" in page, f"{model.__name__}.{field} has no documented purpose"


def test_fields_outside_the_model_never_reach_the_outbox() -> None:
    visit = {
        "id": 5, "site_id": "ikn-kipp", "status": "checked_in", "guest_name": "Rina Kusuma",
        "host_person_id": "p-ayu", "card_uid": "04C0FFEE0001",
        "starts_at": "2026-01-05T01:00:00+00:00", "ends_at": "2026-01-05T03:00:00+00:00",
        "checked_in_at": "2026-01-05T01:05:00+00:00", "checked_out_at": None,
    }  # fmt: skip
    data = clean("visitor.checked_in", visit)
    assert data == {
        "visit_id": 5, "site_id": "ikn-kipp", "status": "checked_in",
        "starts_at": "2026-01-05T01:00:00Z", "ends_at": "2026-01-05T03:00:00Z",
        "checked_in_at": "2026-01-05T01:05:00Z", "checked_out_at": None,
    }  # fmt: skip
    errors = list(
        Draft202012Validator(
            json.loads(schema_text("visitor.checked_in")),
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        ).iter_errors({"id": 1, "kind": "visitor.checked_in", "created_at": "x", "data": data})
    )
    assert [e.validator for e in errors] == ["format"]  # created_at "x" is no date-time
    with pytest.raises(ValidationError):
        clean("node.online", {"node": "n1", "online": True, "cause": "reboot", "at": 0})
