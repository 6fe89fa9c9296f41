"""How an identity provider's token claims become a Ruang person, roles and sites.

Each provider (the national digital identity IKD, a ministry's Keycloak, any standard
OIDC provider) names things its own way: the person id may be `sub` or a `nip` claim,
roles may sit in `realm_access.roles` or come as group names. A `ClaimMapping` says,
by configuration only (`RUANG_OIDC_CLAIMS` as JSON or the YAML file named by
`RUANG_OIDC_CLAIMS_FILE`, docs/identity.md), which claims give the person's id, name,
agency (*instansi*), unit and roles, and which groups/claim values grant which Ruang
roles and sites.

Without any mapping the built-in one keeps the behaviour Ruang always had: the id is
`sub`, roles are read verbatim from `roles` (or `role`), sites from `sites`, and role
names Ruang does not know are dropped silently.

A mapping refuses, with a reason a person can act on, a token whose group has no
row in the table (`unknown_groups: refuse`), whose role is not a Ruang role
(`unknown_roles: refuse`) or that maps to no role at all (`require_role`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# The role names a token may carry: the one list (cloud.people.auth.ROLES is this tuple;
# it lives here because auth imports the settings, which import this module).
KNOWN_ROLES = (
    "asn", "guest", "facility_manager", "technician", "admin", "approver", "dispatcher",
    "security", "reception", "scim", "dpo",
)  # fmt: skip


class ClaimRefused(Exception):
    """The token's claims cannot be mapped to a Ruang identity; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Grant(BaseModel):
    """What one group (or claim value) gives: Ruang roles, and the sites they apply to."""

    model_config = ConfigDict(extra="forbid")

    roles: list[str] = Field(default_factory=list)
    sites: list[str] = Field(default_factory=list)

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: list[str]) -> list[str]:
        unknown = sorted(set(roles) - set(KNOWN_ROLES))
        if unknown:
            raise ValueError(f"unknown role(s) {unknown}; roles are {', '.join(KNOWN_ROLES)}")
        return roles


class ClaimMapping(BaseModel):
    """One identity provider's claims; `issuer` None makes it the default for any issuer."""

    model_config = ConfigDict(extra="forbid")

    issuer: str | None = None
    # Claim names; a dotted name reads a nested claim (`realm_access.roles`).
    id_claim: str = "sub"
    name_claim: str | None = "name"
    agency_claim: str | None = None
    unit_claim: str | None = None
    # Roles given verbatim by the provider (Ruang's own role names), and sites likewise.
    roles_claim: str | None = "roles"
    sites_claim: str | None = "sites"
    # Groups (or any claim holding a string or a list of strings) mapped through `groups`.
    groups_claim: str | None = None
    groups: dict[str, Grant] = Field(default_factory=dict)
    unknown_groups: Literal["ignore", "refuse"] = "refuse"
    unknown_roles: Literal["ignore", "refuse"] = "ignore"
    # Refuse a token that ends up with no Ruang role at all.
    require_role: bool = False
    # A signed-in id with no person record: let it through as before (`allow`), create an
    # ASN on the spot (`create`, just-in-time provisioning) or refuse the sign-in.
    unknown_person: Literal["allow", "create", "refuse"] = "allow"


class Identity(BaseModel):
    """The person a token describes, after mapping."""

    subject: str
    name: str | None = None
    agency: str | None = None
    unit: str | None = None
    roles: frozenset[str] = frozenset()
    sites: frozenset[str] = frozenset()


class ClaimMappings(BaseModel):
    """All providers' mappings, as `RUANG_OIDC_CLAIMS` or the YAML file holds them."""

    model_config = ConfigDict(extra="forbid")

    providers: list[ClaimMapping] = Field(default_factory=list)

    def for_issuer(self, issuer: object) -> ClaimMapping:
        fallback: ClaimMapping | None = None
        for mapping in self.providers:
            if mapping.issuer is None:
                fallback = fallback or mapping
            elif isinstance(issuer, str) and mapping.issuer.rstrip("/") == issuer.rstrip("/"):
                return mapping
        return fallback or DEFAULT_MAPPING


DEFAULT_MAPPING = ClaimMapping()


def load_mappings_file(path: Path) -> ClaimMappings:
    """The YAML file's mappings; a broken file stops start-up with the reason."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read the OIDC claim mapping {path}: {exc}") from None
    try:
        return ClaimMappings.model_validate(data or {})
    except ValidationError as exc:
        raise ValueError(f"the OIDC claim mapping {path} is not valid: {exc}") from None


def _claim(claims: dict[str, Any], name: str) -> Any:
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _strings(claims: dict[str, Any], name: str | None, what: str) -> list[str]:
    if name is None:
        return []
    value = _claim(claims, name)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ClaimRefused(f"The token's {what} claim {name!r} must be a string or a list of strings.")


def _text(claims: dict[str, Any], name: str | None, what: str) -> str | None:
    if name is None:
        return None
    value = _claim(claims, name)
    if value is None or value == "":
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ClaimRefused(f"The token's {what} claim {name!r} must be a string.")
    return str(value)[:200]


def map_claims(claims: dict[str, Any], mapping: ClaimMapping) -> Identity:
    """The identity `claims` describe under `mapping`, or ClaimRefused with the reason."""
    subject = _text(claims, mapping.id_claim, "person id")
    if subject is None:
        raise ClaimRefused(f"The token has no {mapping.id_claim!r} claim to identify the person.")
    roles: set[str] = set()
    roles_claim = mapping.roles_claim
    if roles_claim == "roles" and "roles" not in claims:
        roles_claim = "role"  # the single-role form older tokens use
    for role in _strings(claims, roles_claim, "roles"):
        if role in KNOWN_ROLES:
            roles.add(role)
        elif mapping.unknown_roles == "refuse":
            raise ClaimRefused(
                f"The role {role!r} given by the sign-in service is not a Ruang role."
            )
    sites = set(_strings(claims, mapping.sites_claim, "sites"))
    for group in _strings(claims, mapping.groups_claim, "groups"):
        grant = mapping.groups.get(group)
        if grant is None:
            if mapping.unknown_groups == "refuse":
                raise ClaimRefused(
                    f"The group {group!r} has no row in Ruang's role mapping; "
                    "ask the administrator to map it or remove it."
                )
            continue
        roles.update(grant.roles)
        sites.update(grant.sites)
    if mapping.require_role and not roles:
        raise ClaimRefused("The sign-in service gave this account no role that Ruang maps.")
    return Identity(
        subject=subject,
        name=_text(claims, mapping.name_claim, "name"),
        agency=_text(claims, mapping.agency_claim, "agency"),
        unit=_text(claims, mapping.unit_claim, "unit"),
        roles=frozenset(roles),
        sites=frozenset(sites),
    )
