"""SCIM PATCH (RFC 7644 section 3.5.2) applied to a resource's JSON: the result is then
written like a PUT, so one set of rules checks both.

Handles `add`, `replace` and `remove` (any case: some identity systems send `Replace`),
with or without a path; paths may name an extension attribute by its URN, a
sub-attribute (`name.givenName`), or items of a multi-valued attribute by a filter
(`members[value eq "p-1"]`, `emails[type eq "work"].value`). Booleans sent as the
strings "true"/"false" are read as booleans, as several identity systems send them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from cloud.errors import Invalid
from cloud.scim import filters
from cloud.scim.common import KNOWN_URNS, invalid_value
from cloud.scim.schemas import GROUP, USER

READ_ONLY = frozenset({"id", "meta", "groups", "schemas"})
CORE = (USER, GROUP)


def no_target(detail: str) -> Invalid:
    return Invalid(detail, title="No target", scim_type="noTarget")


def invalid_path(detail: str) -> Invalid:
    return Invalid(detail, title="Invalid path", scim_type="invalidPath")


def _key(container: dict[str, Any], name: str, names: dict[str, str]) -> str:
    """The key under which `name` (any case) lives or would live in `container`."""
    for key in container:
        if key.lower() == name.lower():
            return key
    return names.get(name.lower(), name)


def _boolish(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _split(path: str) -> tuple[str | None, str]:
    """(extension URN or None, the rest) of a path."""
    lowered = path.lower()
    for urn in KNOWN_URNS:
        if lowered == urn.lower():
            return urn, ""
        if lowered.startswith(urn.lower() + ":"):
            return urn, path[len(urn) + 1 :]
    return None, path


def _container(resource: dict[str, Any], urn: str | None, create: bool) -> dict[str, Any] | None:
    if urn is None or urn in CORE:
        return resource
    key = _key(resource, urn, {})
    found = resource.get(key)
    if isinstance(found, dict):
        return found
    if not create:
        return None
    resource[key] = {}
    result: dict[str, Any] = resource[key]
    return result


def _merge_list(current: list[Any], new: Iterable[Any]) -> list[Any]:
    out = list(current)
    for item in new:
        if item not in out:
            out.append(item)
    return out


def _set(
    container: dict[str, Any],
    name: str,
    value: Any,
    op: str,
    names: dict[str, str],
    multi: frozenset[str],
) -> None:
    if name.lower() in READ_ONLY:
        raise Invalid(f"{name} is read-only", title="Mutability", scim_type="mutability")
    key = _key(container, name, names)
    value = _boolish(value)
    if key in multi:
        items = value if isinstance(value, list) else [value]
        if op == "add":
            current = container.get(key) or []
            container[key] = _merge_list(current if isinstance(current, list) else [], items)
        else:
            container[key] = items
    elif op == "add" and isinstance(value, dict) and isinstance(container.get(key), dict):
        container[key] = {**container[key], **value}
    else:
        container[key] = value


def _with_value(
    resource: dict[str, Any], op: str, value: Any, names: dict[str, str], multi: frozenset[str]
) -> None:
    """add/replace without a path: every attribute of `value` as if named by a path."""
    if not isinstance(value, dict):
        raise invalid_value(f"{op} without a path needs an object as its value")
    for name, item in value.items():
        if not isinstance(name, str):
            raise invalid_path("attribute names are strings")
        urn, rest = _split(name)
        if urn is not None and rest == "" and urn not in CORE:
            # A whole extension object: its attributes one by one.
            if not isinstance(item, dict):
                raise invalid_value(f"{urn} takes an object")
            target = _container(resource, urn, create=True)
            assert target is not None
            for sub, sub_value in item.items():
                if sub != "schemas":
                    _set(target, sub, sub_value, op, names, multi)
            continue
        _one(resource, op, name, item, names, multi)


def _one(
    resource: dict[str, Any],
    op: str,
    path: str,
    value: Any,
    names: dict[str, str],
    multi: frozenset[str],
) -> None:
    urn, rest = _split(path)
    if rest == "":
        if urn in CORE or urn is None:
            raise invalid_path(f"{path!r} names a schema, not an attribute")
        # A whole extension object: replaced, merged (add) or dropped.
        if op == "remove":
            resource.pop(_key(resource, urn, {}), None)
            return
        if not isinstance(value, dict):
            raise invalid_value(f"{urn} takes an object")
        target = _container(resource, urn, create=True)
        assert target is not None
        if op == "replace":
            target.clear()
        for sub, sub_value in value.items():
            if sub != "schemas":
                _set(target, sub, sub_value, "replace", names, frozenset())
        return
    attr, where, sub = filters.parse_path(rest)
    container = _container(resource, urn, create=op != "remove")
    if container is None:
        return  # removing from an extension the resource does not have
    if "." in attr and where is None:
        attr, _, sub = attr.partition(".")
    key = _key(container, attr, names)
    if key.lower() in READ_ONLY:
        raise Invalid(f"{key} is read-only", title="Mutability", scim_type="mutability")
    if where is None:
        if sub is not None:
            parent = container.get(key)
            if op == "remove":
                if isinstance(parent, dict):
                    parent.pop(_key(parent, sub, names), None)
                return
            if not isinstance(parent, dict):
                parent = container[key] = {}
            _set(parent, sub, value, "replace", names, frozenset())
            return
        if op == "remove":
            if value is not None and key in multi and isinstance(container.get(key), list):
                # Some clients name the items to remove in `value` instead of a filter.
                drop = value if isinstance(value, list) else [value]
                container[key] = [i for i in container[key] if not _named(i, drop)]
            else:
                container.pop(key, None)
            return
        _set(container, attr, value, op, names, multi)
        return
    items = container.get(key)
    if key not in multi:
        raise invalid_path(f"{attr} is not multi-valued")
    items = items if isinstance(items, list) else []
    hits = [i for i in items if isinstance(i, dict) and filters.matches(where, i)]
    if op == "remove":
        if sub is None:
            container[key] = [i for i in items if i not in hits]
        else:
            for item in hits:
                item.pop(_key(item, sub, names), None)
        return
    if not hits:
        # `emails[type eq "work"].value` on a resource without one: the item is made.
        if isinstance(where, filters.Compare) and where.op == "eq":
            attr_name: str = names.get(where.attr, where.attr)
            made: dict[str, Any] = {attr_name: where.value}
            if isinstance(sub, str):
                made[names.get(sub, sub)] = _boolish(value)
            elif isinstance(value, dict):
                made.update(value)
            container[key] = [*items, made]
            return
        raise no_target(f"no {attr} matches the filter in {path!r}")
    for item in hits:
        if sub is not None:
            item[_key(item, sub, names)] = _boolish(value)
        elif isinstance(value, dict):
            item.update(value)
        else:
            raise invalid_value(f"{path!r} takes an object")


def _named(item: Any, drop: list[Any]) -> bool:
    for d in drop:
        if isinstance(d, dict) and isinstance(item, dict) and "value" in d:
            if str(item.get("value")) == str(d["value"]):
                return True
        elif d == item:
            return True
    return False


def apply(
    resource: dict[str, Any],
    operations: list[dict[str, Any]],
    names: dict[str, str],
    multi: frozenset[str],
) -> dict[str, Any]:
    """`resource` after `operations` (a new dict; the input is left as it was).

    `names` maps lower-case attribute names to their canonical spelling; `multi` holds
    the canonical names of multi-valued attributes.
    """
    out = copy.deepcopy(resource)
    for operation in operations:
        op = str(operation.get("op", "")).lower()
        path = operation.get("path")
        value = operation.get("value")
        if op not in ("add", "replace", "remove"):
            raise invalid_value(f"unknown op {operation.get('op')!r}")
        if path is not None and not isinstance(path, str):
            raise invalid_path("path is a string")
        if not path:
            if op == "remove":
                raise no_target("remove needs a path")
            _with_value(out, op, value, names, multi)
        else:
            if op != "remove" and "value" not in operation:
                raise invalid_value(f"{op} needs a value")
            _one(out, op, path, value, names, multi)
    return out
