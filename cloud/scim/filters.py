"""SCIM filter expressions (RFC 7644 section 3.4.2.2): parsed once, then either turned into a
SQL condition (listing) or evaluated on a resource's JSON (PATCH paths like
`members[value eq "p-1"]`).

Grammar handled: `attr op value`, `attr pr`, `and`, `or`, `not (...)`, parentheses and
`attr[filter]` on a multi-valued attribute. Operators: eq ne co sw ew gt ge lt le pr.
Attribute names are case-insensitive and may carry their schema URN as a prefix.
A filter that does not parse, or names an attribute the resource cannot be filtered
on, is refused as `invalidFilter`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, func, not_, or_

from cloud.errors import Invalid

COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
MAX_FILTER = 1000
MAX_DEPTH = 20

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<lpar>\() | (?P<rpar>\)) | (?P<lbr>\[) | (?P<rbr>\]) |
    (?P<string>"(?:[^"\\]|\\.)*") |
    (?P<word>[A-Za-z0-9_$:.\-+]+)
    )""",
    re.VERBOSE,
)


def invalid_filter(detail: str) -> Invalid:
    return Invalid(detail, title="Invalid filter", scim_type="invalidFilter")


@dataclass(frozen=True)
class Compare:
    attr: str  # lower-cased, URN prefix kept (resolved by the caller)
    op: str
    value: Any = None  # str | bool | int | float | None; absent for `pr`


@dataclass(frozen=True)
class Logical:
    op: str  # "and" | "or"
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    inner: Node


@dataclass(frozen=True)
class ValuePath:
    attr: str
    inner: Node


Node = Compare | Logical | Not | ValuePath


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise invalid_filter(f"cannot read the filter at {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_FILTER:
            raise invalid_filter(f"a filter has at most {MAX_FILTER} characters")
        self.tokens = _tokens(text)
        self.pos = 0
        self.depth = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (kind is not None and token[0] != kind):
            raise invalid_filter("the filter ends too early or has a stray symbol")
        self.pos += 1
        return token

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1].lower() in words:
            self.pos += 1
            return token[1].lower()
        return None

    def parse(self) -> Node:
        node = self.expression()
        if self.peek() is not None:
            raise invalid_filter(f"unexpected {self.peek()[1]!r} in the filter")  # type: ignore[index]
        return node

    def expression(self) -> Node:
        node = self.term()
        while self.keyword("or"):
            node = Logical("or", node, self.term())
        return node

    def term(self) -> Node:
        node = self.factor()
        while self.keyword("and"):
            node = Logical("and", node, self.factor())
        return node

    def factor(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise invalid_filter("the filter nests too deeply")
        try:
            if self.keyword("not"):
                self.take("lpar")
                inner = self.expression()
                self.take("rpar")
                return Not(inner)
            if self.peek() is not None and self.peek()[0] == "lpar":  # type: ignore[index]
                self.take("lpar")
                inner = self.expression()
                self.take("rpar")
                return inner
            return self.comparison()
        finally:
            self.depth -= 1

    def comparison(self) -> Node:
        attr = self.take("word")[1].lower()
        if self.peek() is not None and self.peek()[0] == "lbr":  # type: ignore[index]
            self.take("lbr")
            inner = self.expression()
            self.take("rbr")
            return ValuePath(attr, inner)
        op = self.take("word")[1].lower()
        if op == "pr":
            return Compare(attr, "pr")
        if op not in COMPARE_OPS:
            raise invalid_filter(f"unknown operator {op!r}")
        kind, raw = self.take()
        if kind == "string":
            value: Any = json.loads(raw)
        elif kind == "word" and raw.lower() in ("true", "false", "null"):
            value = {"true": True, "false": False, "null": None}[raw.lower()]
        elif kind == "word" and re.fullmatch(r"-?\d+(\.\d+)?", raw):
            value = float(raw) if "." in raw else int(raw)
        else:
            raise invalid_filter(f"{raw!r} is not a value (strings are quoted)")
        return Compare(attr, op, value)


def parse(text: str) -> Node:
    """The filter's syntax tree; `invalidFilter` if it is not a filter."""
    return _Parser(text).parse()


def parse_path(text: str) -> tuple[str, Node | None, str | None]:
    """A PATCH path: (attribute, value filter or None, sub-attribute or None)."""
    match = re.fullmatch(r"\s*([^\[\]\s]+)\s*(?:\[(.*)\])?\s*(?:\.([A-Za-z0-9_$-]+))?\s*", text)
    if match is None:
        raise Invalid(
            f"cannot read the path {text!r}", title="Invalid path", scim_type="invalidPath"
        )
    attr, inner, sub = match.groups()
    return attr.lower(), (parse(inner) if inner is not None else None), sub.lower() if sub else None


# --- SQL ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """How a filterable attribute reads in SQL: its expression, whether text compares
    without case, and (multi-valued) a function making the EXISTS for a sub-filter."""

    expr: Any
    case_exact: bool = False
    kind: str = "string"  # "string" | "boolean" | "datetime"


def _sql_compare(col: Column, op: str, value: Any) -> ColumnElement[bool]:
    expr: ColumnElement[Any] = col.expr
    if op == "pr":
        return expr.is_not(None) if col.kind != "string" else and_(expr.is_not(None), expr != "")
    if value is None:
        if op == "eq":
            return expr.is_(None)
        if op == "ne":
            return expr.is_not(None)
        raise invalid_filter(f"{op} needs a value, not null")
    if col.kind == "boolean":
        if not isinstance(value, bool) or op not in ("eq", "ne"):
            raise invalid_filter("a boolean attribute compares with eq or ne to true or false")
        return expr == value if op == "eq" else expr != value
    if not isinstance(value, str):
        raise invalid_filter("this attribute compares with a quoted string")
    if col.kind == "datetime":
        from datetime import datetime

        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise invalid_filter(f"{value!r} is not a date-time") from None
        ops: dict[str, Callable[[Any, Any], Any]] = {
            "eq": lambda a, b: a == b,
            "ne": lambda a, b: a != b,
            "gt": lambda a, b: a > b,
            "ge": lambda a, b: a >= b,
            "lt": lambda a, b: a < b,
            "le": lambda a, b: a <= b,
        }
        if op not in ops:
            raise invalid_filter(f"{op} does not apply to a date-time")
        return ops[op](expr, when)  # type: ignore[no-any-return]
    text: ColumnElement[Any] = cast(expr, String)
    if not col.case_exact:
        text, value = func.lower(text), value.lower()
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    match op:
        case "eq":
            return text == value  # type: ignore[no-any-return]
        case "ne":
            return or_(text != value, expr.is_(None))
        case "co":
            return text.like(f"%{escaped}%", escape="\\")
        case "sw":
            return text.like(f"{escaped}%", escape="\\")
        case "ew":
            return text.like(f"%{escaped}", escape="\\")
        case "gt":
            return text > value  # type: ignore[no-any-return]
        case "ge":
            return text >= value  # type: ignore[no-any-return]
        case "lt":
            return text < value  # type: ignore[no-any-return]
        case _:
            return text <= value  # type: ignore[no-any-return]


Resolver = Callable[[str], Column | None]
MultiResolver = Callable[
    [str, Callable[[Resolver], ColumnElement[bool]]], ColumnElement[bool] | None
]


def to_sql(
    node: Node, resolve: Resolver, multi: MultiResolver | None = None
) -> ColumnElement[bool]:
    """`node` as a WHERE condition. `resolve` maps an attribute path to its column;
    `multi` turns `attr[filter]` (and attributes inside a multi-valued one) into EXISTS."""
    if isinstance(node, Logical):
        left, right = to_sql(node.left, resolve, multi), to_sql(node.right, resolve, multi)
        return and_(left, right) if node.op == "and" else or_(left, right)
    if isinstance(node, Not):
        return not_(to_sql(node.inner, resolve, multi))
    if isinstance(node, ValuePath):
        if multi is None:
            raise invalid_filter(f"{node.attr} is not multi-valued")
        inner = node.inner
        found = multi(node.attr, lambda sub: to_sql(inner, sub))
        if found is None:
            raise invalid_filter(f"{node.attr} cannot be filtered on")
        return found
    col = resolve(node.attr)
    if col is None and multi is not None and "." in node.attr:
        head, _, tail = node.attr.rpartition(".")
        leaf = Compare(tail, node.op, node.value)
        found = multi(head, lambda sub: to_sql(leaf, sub))
        if found is not None:
            return found
    if col is None:
        raise invalid_filter(f"{node.attr!r} cannot be filtered on")
    return _sql_compare(col, node.op, node.value)


# --- on JSON -----------------------------------------------------------------------------


def _get(item: Mapping[str, Any], attr: str) -> Any:
    value: Any = item
    for part in attr.split("."):
        if not isinstance(value, Mapping):
            return None
        value = next((v for k, v in value.items() if k.lower() == part), None)
    return value


def matches(node: Node, item: Mapping[str, Any]) -> bool:
    """Whether the JSON object `item` (a member, an email) satisfies `node`."""
    if isinstance(node, Logical):
        if node.op == "and":
            return matches(node.left, item) and matches(node.right, item)
        return matches(node.left, item) or matches(node.right, item)
    if isinstance(node, Not):
        return not matches(node.inner, item)
    if isinstance(node, ValuePath):
        values = _get(item, node.attr)
        return isinstance(values, list) and any(
            isinstance(v, Mapping) and matches(node.inner, v) for v in values
        )
    actual = _get(item, node.attr)
    if node.op == "pr":
        return actual not in (None, "", [], {})
    expected = node.value
    if isinstance(actual, str) and isinstance(expected, str):
        actual, expected = actual.lower(), expected.lower()
    match node.op:
        case "eq":
            return bool(actual == expected)
        case "ne":
            return bool(actual != expected)
    if not isinstance(actual, str) or not isinstance(expected, str):
        return False
    match node.op:
        case "co":
            return expected in actual
        case "sw":
            return actual.startswith(expected)
        case "ew":
            return actual.endswith(expected)
        case "gt":
            return actual > expected
        case "ge":
            return actual >= expected
        case "lt":
            return actual < expected
        case _:
            return actual <= expected
