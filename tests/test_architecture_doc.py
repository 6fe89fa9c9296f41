"""docs/architecture.md names real files; its layering rules are the ones import-linter checks."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"
# A path of the repository as the page writes it: `cloud/ingest/apply.py`, `edge/devices/`.
PATH = re.compile(
    r"`((?:firmware_bridge|edge|cloud|dashboards|simulators|ruang|launch|tests|docs)"
    r"/[\w./-]*)`"
)


def test_every_file_the_architecture_page_names_exists() -> None:
    named = set(PATH.findall(DOC.read_text(encoding="utf-8")))
    assert len(named) > 30  # the walk and the room list, not a stray mention
    missing = sorted(p for p in named if not (REPO / p).exists())
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


def test_the_badge_tap_walk_goes_from_serial_bytes_to_the_floor_map() -> None:
    text = DOC.read_text(encoding="utf-8")
    walk = text[text.index("## One badge tap") :]
    walk = walk[: walk.index("\n## ", 1)]
    steps = PATH.findall(walk)
    assert steps[0].startswith("firmware_bridge/")
    assert any(s.startswith("edge/") for s in steps)
    assert any(s.startswith("cloud/ingest/") for s in steps)
    assert steps[-1].startswith("dashboards/")


def test_the_layering_contracts_the_page_describes_are_configured() -> None:
    config = (REPO / ".importlinter").read_text(encoding="utf-8")
    for kind in ("type = layers", "type = forbidden", "type = acyclic_siblings"):
        assert kind in config
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "lint-imports" in makefile


# "Small modules": past this a module holds more than one job and should be split.
MAX_MODULE_LINES = 500


def test_no_cloud_or_edge_module_is_over_500_lines() -> None:
    sizes = {
        path.relative_to(REPO).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for top in ("cloud", "edge")
        for path in sorted((REPO / top).rglob("*.py"))
    }
    assert len(sizes) > 20  # the walk found the packages, not an empty folder
    over = {p: n for p, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not over, f"modules over {MAX_MODULE_LINES} lines, split them: {over}"
