"""A small RDF/Turtle writer for the Brick export (cloud/buildings/brick.py).

The export is a handful of triple shapes (typed entities, labels, links between
them, time-series references), so it is written directly instead of pulling an
RDF library into the cloud's runtime; the tests parse every export with rdflib
(through brickschema) and validate it against the Brick shapes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

PREFIXES = {
    "brick": "https://brickschema.org/schema/Brick#",
    "ref": "https://brickschema.org/schema/Brick/ref#",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "rec": "https://w3id.org/rec#",
    "ruang": "urn:ruang:schema#",
}
# A local name written as `bldg:name` only when it needs no escaping; anything else is a
# full <IRI>. Both spell the same IRI, so a reader never sees the difference.
_SAFE_LOCAL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?$")
_LITERAL_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def literal(text: str) -> str:
    """A Turtle string literal: quotes, backslashes and control characters escaped."""
    out = []
    for ch in text:
        if ch in _LITERAL_ESCAPES:
            out.append(_LITERAL_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@dataclass
class Entity:
    """One subject: its classes, a label and its links (predicate -> objects, both prefixed
    names or local keys of other entities in the same document)."""

    key: str  # local name inside the document's namespace, before escaping
    classes: list[str]
    label: str
    links: dict[str, list[str]] = field(default_factory=dict)
    # Extra (predicate, ready-made Turtle object) pairs, e.g. blank nodes.
    extra: list[tuple[str, str]] = field(default_factory=list)

    def link(self, predicate: str, target: str) -> None:
        targets = self.links.setdefault(predicate, [])
        if target not in targets:
            targets.append(target)


class Document:
    """Entities under one namespace (`bldg:`), written as Turtle in insertion order."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.entities: dict[str, Entity] = {}
        self.header: list[str] = []  # ready-made statements (class declarations)

    def add(self, key: str, classes: Iterable[str], label: str) -> Entity:
        entity = self.entities.get(key)
        if entity is None:
            entity = Entity(key, list(classes), label)
            self.entities[key] = entity
        return entity

    def __contains__(self, key: str) -> bool:
        return key in self.entities

    def name(self, key: str) -> str:
        local = quote(key, safe="-._")
        if _SAFE_LOCAL.match(local):
            return f"bldg:{local}"
        return f"<{self.namespace}{local}>"

    def _object(self, target: str) -> str:
        # Keys of this document become bldg: names; anything else is already a prefixed name.
        return self.name(target) if target in self.entities else target

    def render(self) -> str:
        lines = [f"@prefix {p}: <{iri}> ." for p, iri in PREFIXES.items()]
        lines.append(f"@prefix bldg: <{self.namespace}> .")
        lines.append("")
        lines.extend(self.header)
        for entity in self.entities.values():
            parts = [f"{self.name(entity.key)} a {', '.join(entity.classes)}"]
            parts.append(f"    rdfs:label {literal(entity.label)}")
            for predicate, targets in entity.links.items():
                objects = ", ".join(self._object(t) for t in targets)
                parts.append(f"    {predicate} {objects}")
            parts.extend(f"    {predicate} {obj}" for predicate, obj in entity.extra)
            lines.append(" ;\n".join(parts) + " .")
            lines.append("")
        return "\n".join(lines)
