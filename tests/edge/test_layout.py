"""The edge stays in small modules with one job each (issue 11): pinned so it does not regrow."""

from __future__ import annotations

import ast
from pathlib import Path

import edge

EDGE = Path(edge.__file__).parent
MAX_LINES = 500


def _modules() -> list[Path]:
    return sorted(EDGE.rglob("*.py"))


def test_no_edge_module_is_over_500_lines() -> None:
    long = {
        str(p.relative_to(EDGE)): n
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_edge_module_says_what_it_holds() -> None:
    missing = [
        str(p.relative_to(EDGE))
        for p in _modules()
        if p.stat().st_size and ast.get_docstring(ast.parse(p.read_text())) is None
    ]
    assert missing == []


def test_desk_units_are_a_driver_under_devices() -> None:
    assert (EDGE / "devices" / "deskunit.py").exists()
    assert not (EDGE / "deskunits.py").exists()
