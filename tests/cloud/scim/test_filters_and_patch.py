"""SCIM filter parsing and PATCH application on JSON, without a server."""

from __future__ import annotations

import pytest

from cloud.errors import Invalid
from cloud.scim import filters, patch
from cloud.scim.users import MULTI, NAMES

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def test_filters_parse_with_precedence_and_refuse_what_is_not_a_filter() -> None:
    node = filters.parse('userName eq "a" or not (active eq false) and emails pr')
    assert isinstance(node, filters.Logical) and node.op == "or"
    assert isinstance(node.right, filters.Logical) and node.right.op == "and"
    assert node.left == filters.Compare("username", "eq", "a")
    quoted = filters.parse(r'displayName co "say \"hi\""')
    assert quoted == filters.Compare("displayname", "co", 'say "hi"')
    for bad in ("", "userName", 'userName eq "a" and', "userName eq a", '"a" eq userName',
                "((((((((((((((((((((((a pr))))))))))))))))))))))", "x" * 1001):  # fmt: skip
        with pytest.raises(Invalid) as refused:
            filters.parse(bad)
        assert refused.value.extensions["scim_type"] == "invalidFilter", bad


def test_value_filters_match_items_without_case() -> None:
    item = {"value": "Budi@Kemenkeu.go.id", "type": "work"}
    assert filters.matches(filters.parse('value ew "@kemenkeu.go.id" and type eq "WORK"'), item)
    assert not filters.matches(filters.parse('type eq "home"'), item)
    assert filters.matches(filters.parse('emails[type eq "work"]'), {"emails": [item]})


def test_patch_changes_a_copy_and_keeps_multi_valued_items_unique() -> None:
    user = {"userName": "a", "emails": [{"value": "a@x.id", "type": "work"}], ENTERPRISE: {}}
    ops = [
        {"op": "add", "path": "emails", "value": [{"value": "a@x.id", "type": "work"}]},
        {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Biro Umum"},
        {"op": "add", "value": {"displayName": "A", "active": "False"}},
    ]
    out = patch.apply(user, ops, NAMES, MULTI)
    assert out["emails"] == user["emails"] and len(out["emails"]) == 1
    assert out[ENTERPRISE] == {"department": "Biro Umum"}
    assert out["displayName"] == "A" and out["active"] is False
    assert user[ENTERPRISE] == {} and "displayName" not in user  # the input is untouched
    gone = patch.apply(out, [{"op": "remove", "path": 'emails[value eq "A@X.ID"]'}], NAMES, MULTI)
    assert gone["emails"] == []
    # An `eq` filter that finds nothing makes the item (as Entra ID expects); others cannot.
    made = patch.apply(out, [{"op": "replace", "path": 'emails[type eq "home"].value',
                              "value": "a@rumah.id"}], NAMES, MULTI)  # fmt: skip
    assert made["emails"][-1] == {"type": "home", "value": "a@rumah.id"}
    with pytest.raises(Invalid) as refused:
        patch.apply(out, [{"op": "replace", "path": 'emails[type co "ho"].value',
                           "value": "x"}], NAMES, MULTI)  # fmt: skip
    assert refused.value.extensions["scim_type"] == "noTarget"
