"""SCIM 2.0 vocabulary of Ruang: schema URNs, the documented shapes of resources and messages
(OpenAPI), and the discovery documents (`/ServiceProviderConfig`, `/ResourceTypes`,
`/Schemas`) describing what this server supports.

The attribute mapping to people and groups is docs/scim.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
RUANG_USER = "urn:ruang:params:scim:schemas:extension:2.0:User"
RUANG_GROUP = "urn:ruang:params:scim:schemas:extension:2.0:Group"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SPC = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
SCIM_JSON = "application/scim+json"

DEFAULT_COUNT = 100
MAX_COUNT = 1000
MAX_MEMBERS = 20_000  # members in one group body

# --- documented shapes (OpenAPI); the services read and write plain JSON ------------------


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Meta(_Open):
    resourceType: str
    created: str | None = None
    lastModified: str | None = None
    location: str
    version: str


class Name(_Open):
    formatted: str | None = None
    givenName: str | None = None
    familyName: str | None = None


class Email(_Open):
    value: str
    type: str | None = None
    primary: StrictBool | None = None


class EnterpriseUser(_Open):
    organization: str | None = Field(default=None, description="agency (instansi)")
    department: str | None = Field(default=None, description="work unit")


class RuangUser(_Open):
    site: str | None = Field(default=None, description="home site id")


class RuangGroup(_Open):
    role: str | None = Field(default=None, description="the Ruang role members hold")
    site: str | None = Field(default=None, description="the site the role holds at")


class Member(_Open):
    value: str
    ref: str | None = Field(default=None, alias="$ref")
    type: str | None = None
    display: str | None = None


def _listing(urn: str) -> Any:
    return Field(min_length=1, json_schema_extra={"contains": {"const": urn}})


class UserIn(_Open):
    """A User as a client sends it (POST, PUT); other attributes are ignored."""

    schemas: list[str] = _listing(USER)
    userName: str = Field(min_length=1, max_length=256)
    externalId: str | None = Field(default=None, max_length=256)
    name: Name | None = None
    displayName: str | None = Field(default=None, max_length=200)
    active: StrictBool | None = None
    emails: list[Email] | None = None
    enterprise: EnterpriseUser | None = Field(
        default=None, alias="urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    )
    ruang: RuangUser | None = Field(
        default=None, alias="urn:ruang:params:scim:schemas:extension:2.0:User"
    )


class User(_Open):
    """A User as the server answers it (`attributes` may leave any but id out)."""

    schemas: list[str]
    id: str
    meta: Meta
    userName: str | None = None
    externalId: str | None = None
    name: Name | None = None
    displayName: str | None = None
    active: StrictBool | None = None
    emails: list[Email] | None = None
    groups: list[Member] | None = None
    enterprise: EnterpriseUser | None = Field(
        default=None, alias="urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    )
    ruang: RuangUser | None = Field(
        default=None, alias="urn:ruang:params:scim:schemas:extension:2.0:User"
    )


class GroupIn(_Open):
    schemas: list[str] = _listing(GROUP)
    displayName: str = Field(min_length=1, max_length=256)
    externalId: str | None = Field(default=None, max_length=256)
    members: list[Member] | None = None
    ruang: RuangGroup | None = Field(
        default=None, alias="urn:ruang:params:scim:schemas:extension:2.0:Group"
    )


class Group(_Open):
    """A Group as the server answers it (`attributes` may leave any but id out)."""

    schemas: list[str]
    id: str
    meta: Meta
    displayName: str | None = None
    externalId: str | None = None
    members: list[Member] | None = None
    ruang: RuangGroup | None = Field(
        default=None, alias="urn:ruang:params:scim:schemas:extension:2.0:Group"
    )


class PatchOperation(_Open):
    op: Literal["add", "remove", "replace", "Add", "Remove", "Replace"]
    path: str | None = None
    value: Any = None


class PatchRequest(_Open):
    schemas: list[str] = _listing(PATCH_OP)
    Operations: list[PatchOperation] = Field(min_length=1, max_length=1000)


class SearchRequest(_Open):
    schemas: list[str] = _listing(SEARCH)
    filter: str | None = Field(default=None, max_length=1000)
    startIndex: StrictInt | None = Field(default=None, ge=-(2**31), le=2**31)
    count: StrictInt | None = Field(default=None, ge=-(2**31), le=2**31)
    attributes: list[str] | None = None
    excludedAttributes: list[str] | None = None


class ListResponse(_Open):
    schemas: list[str]
    totalResults: int
    startIndex: int
    itemsPerPage: int
    Resources: list[dict[str, Any]]


class ScimErrorBody(_Open):
    schemas: list[str]
    status: str
    scimType: str | None = None
    detail: str | None = None


# --- discovery ---------------------------------------------------------------------------


def service_provider_config(base: str) -> dict[str, Any]:
    return {
        "schemas": [SPC],
        "documentationUri": "https://github.com/ruang/ruang/blob/main/docs/scim.md",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_COUNT},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "A JWT with the `scim` role (`ruang token <client> --role scim "
                "--site <site>`) or the identity provider's equivalent.",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base}/ServiceProviderConfig",
        },
    }


def resource_types(base: str) -> list[dict[str, Any]]:
    return [
        {
            "schemas": [RESOURCE_TYPE],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "A person of the roster (ASN)",
            "schema": USER,
            "schemaExtensions": [
                {"schema": ENTERPRISE, "required": False},
                {"schema": RUANG_USER, "required": False},
            ],
            "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/User"},
        },
        {
            "schemas": [RESOURCE_TYPE],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "People who hold a Ruang role (at a site) together",
            "schema": GROUP,
            "schemaExtensions": [{"schema": RUANG_GROUP, "required": False}],
            "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/Group"},
        },
    ]


def _attr(
    name: str,
    kind: str = "string",
    *,
    multi: bool = False,
    required: bool = False,
    case_exact: bool = False,
    mutability: str = "readWrite",
    uniqueness: str = "none",
    returned: str = "default",
    sub: list[dict[str, Any]] | None = None,
    description: str = "",
    canonical: list[str] | None = None,
    canonical_refs: list[str] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "type": kind,
        "multiValued": multi,
        "description": description,
        "required": required,
        "caseExact": case_exact,
        "mutability": mutability,
        "returned": returned,
        "uniqueness": uniqueness,
    }
    if sub is not None:
        out["subAttributes"] = sub
    if canonical is not None:
        out["canonicalValues"] = canonical
    if kind == "reference":
        out["referenceTypes"] = canonical_refs or ["external"]
    return out


def _schema(urn: str, name: str, attributes: list[dict[str, Any]], base: str) -> dict[str, Any]:
    return {
        "schemas": [SCHEMA],
        "id": urn,
        "name": name,
        "description": name,
        "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": f"{base}/Schemas/{urn}"},
    }


def schemas(base: str, sites: list[str], roles: list[str]) -> list[dict[str, Any]]:
    """The schemas this server implements, with only the attributes it keeps; `sites` (the
    ones the client reaches) and `roles` (what a group may grant) as canonical values."""
    user = [
        _attr("id", mutability="readOnly", case_exact=True, uniqueness="server", returned="always"),
        _attr("userName", required=True, uniqueness="server", description="login name"),
        _attr("externalId", case_exact=True, description="the identity system's key"),
        _attr(
            "name",
            "complex",
            sub=[_attr("formatted"), _attr("givenName"), _attr("familyName")],
        ),
        _attr("displayName", description="the person's name as Ruang shows it"),
        _attr("active", "boolean", description="false: every badge of the person is revoked"),
        _attr(
            "emails",
            "complex",
            multi=True,
            sub=[_attr("value"), _attr("type", canonical=["work"])],
            description="one address is kept, as the work address (the primary one sent, "
            "else the first)",
        ),
        _attr(
            "groups",
            "complex",
            multi=True,
            mutability="readOnly",
            sub=[
                _attr("value", mutability="readOnly"),
                _attr("display", mutability="readOnly"),
                _attr("$ref", "reference", mutability="readOnly", canonical_refs=["Group"]),
                _attr("type", mutability="readOnly", canonical=["direct"]),
            ],
        ),
    ]
    group = [
        _attr("id", mutability="readOnly", case_exact=True, uniqueness="server", returned="always"),
        _attr("displayName", required=True, uniqueness="server"),
        _attr("externalId", case_exact=True),
        _attr(
            "members",
            "complex",
            multi=True,
            sub=[
                _attr("value", mutability="immutable", case_exact=True),
                _attr("$ref", "reference", mutability="immutable", canonical_refs=["User"]),
                _attr("type", mutability="immutable", canonical=["User"]),
            ],
        ),
    ]
    enterprise = [
        _attr("organization", description="agency (instansi)"),
        _attr("department", description="work unit"),
    ]
    return [
        _schema(USER, "User", user, base),
        _schema(GROUP, "Group", group, base),
        _schema(ENTERPRISE, "EnterpriseUser", enterprise, base),
        _schema(
            RUANG_USER,
            "RuangUser",
            [_attr("site", case_exact=True, description="home site id", canonical=sites)],
            base,
        ),
        _schema(
            RUANG_GROUP,
            "RuangGroup",
            [
                _attr(
                    "role",
                    case_exact=True,
                    description="Ruang role of the members",
                    canonical=roles,
                ),
                _attr("site", case_exact=True, canonical=sites),
            ],
            base,
        ),
    ]
