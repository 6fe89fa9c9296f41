"""The claim-mapping rules: today's tokens read as before, groups mapped, refusals with reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.claims import (
    DEFAULT_MAPPING,
    ClaimMapping,
    ClaimMappings,
    ClaimRefused,
    map_claims,
)
from cloud.settings import CloudSettings


def test_without_a_mapping_roles_and_sites_come_verbatim_and_unknown_roles_are_dropped() -> None:
    identity = map_claims(
        {"sub": "p-1", "name": "Siti", "roles": ["admin", "wizard"], "sites": ["s1"]},
        DEFAULT_MAPPING,
    )
    assert identity.subject == "p-1" and identity.name == "Siti"
    assert identity.roles == {"admin"} and identity.sites == {"s1"}
    assert map_claims({"sub": "p-2", "role": "technician"}, DEFAULT_MAPPING).roles == {"technician"}
    with pytest.raises(ClaimRefused, match="roles claim 'roles' must be"):
        map_claims({"sub": "p-3", "roles": {"admin": True}}, DEFAULT_MAPPING)


def test_groups_and_nested_claims_map_to_roles_sites_agency_and_unit() -> None:
    mapping = ClaimMapping.model_validate(
        {
            "id_claim": "nip",
            "agency_claim": "org.instansi",
            "unit_claim": "org.unit",
            "roles_claim": "realm_access.roles",
            "groups_claim": "groups",
            "groups": {"fm-a": {"roles": ["facility_manager"], "sites": ["a"]}},
        }
    )
    identity = map_claims(
        {
            "sub": "opaque",
            "nip": 199001012015011001,
            "org": {"instansi": "Kemenkeu", "unit": "Biro Umum"},
            "realm_access": {"roles": ["asn", "offline_access"]},
            "groups": "fm-a",
        },
        mapping,
    )
    assert identity.subject == "199001012015011001"
    assert (identity.agency, identity.unit) == ("Kemenkeu", "Biro Umum")
    assert identity.roles == {"asn", "facility_manager"} and identity.sites == {"a"}


def test_refusals_name_the_reason() -> None:
    strict = ClaimMapping(
        groups_claim="groups", groups={}, unknown_roles="refuse", require_role=True
    )
    with pytest.raises(ClaimRefused, match="group 'x' has no row"):
        map_claims({"sub": "p", "groups": ["x"]}, strict)
    with pytest.raises(ClaimRefused, match=r"'wizard' .* is not a Ruang role"):
        map_claims({"sub": "p", "roles": ["wizard"]}, strict)
    with pytest.raises(ClaimRefused, match="no role that Ruang maps"):
        map_claims({"sub": "p"}, strict)
    with pytest.raises(ClaimRefused, match="no 'sub' claim"):
        map_claims({"name": "x"}, DEFAULT_MAPPING)
    lenient = strict.model_copy(update={"unknown_groups": "ignore", "require_role": False})
    assert map_claims({"sub": "p", "groups": ["x"]}, lenient).roles == frozenset()


def test_the_mapping_of_the_tokens_issuer_applies_else_the_default() -> None:
    mappings = ClaimMappings.model_validate(
        {"providers": [{"issuer": "https://ikd/", "id_claim": "nik"}, {"id_claim": "email"}]}
    )
    assert mappings.for_issuer("https://ikd").id_claim == "nik"
    assert mappings.for_issuer("https://other").id_claim == "email"
    assert ClaimMappings().for_issuer("https://other") is DEFAULT_MAPPING


def test_a_mapping_file_loads_at_start_up_and_a_bad_one_stops_it(tmp_path: Path) -> None:
    good = tmp_path / "claims.yaml"
    good.write_text(
        "providers:\n  - groups_claim: groups\n    groups:\n      g: {roles: [admin]}\n"
    )
    settings = CloudSettings(oidc_claims_file=good)
    assert settings.oidc_claims.providers[0].groups["g"].roles == ["admin"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers:\n  - groups: {g: {roles: [emperor]}}\n")
    with pytest.raises(ValueError, match="unknown role"):
        CloudSettings(oidc_claims_file=bad)
    with pytest.raises(ValueError, match="cannot read"):
        CloudSettings(oidc_claims_file=tmp_path / "missing.yaml")
