"""The edge install: `pip install ruang[edge]` brings no web framework or SQL, and the CLI runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLOUD_ONLY = {"fastapi", "sqlalchemy", "jinja2", "uvicorn", "alembic", "asyncpg", "starlette"}


@pytest.mark.timeout(600)
def test_edge_extra_installs_no_cloud_dependencies_and_the_edge_cli_runs(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    # A copy of the sources, so the build leaves nothing behind in the checkout.
    src = tmp_path / "src"
    subprocess.run(["git", "-C", str(REPO), "worktree", "list"], check=False, capture_output=True)
    shutil.copytree(
        REPO,
        src,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "tests", "bench", "*.egg-info", "__pycache__", ".*_cache", "build"
        ),
    )
    subprocess.run([*pip, "install", f"{src}[edge]"], check=True, timeout=540)
    listed = subprocess.run(
        [*pip[:-1], "list", "--format=freeze"], check=True, capture_output=True, text=True
    ).stdout
    installed = {line.split("==")[0].lower().replace("_", "-") for line in listed.splitlines()}
    assert not installed & CLOUD_ONLY, f"edge install pulled in {sorted(installed & CLOUD_ONLY)}"
    assert {"paho-mqtt", "pyserial", "bleak"} <= installed
    help_text = subprocess.run(
        [str(venv / "bin" / "ruang"), "edge", "--help"], check=True, capture_output=True, text=True
    ).stdout
    assert "edge" in help_text
    # The edge agent's modules import without the cloud's dependencies.
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import edge.agent, edge.doctor, firmware_bridge.deskunit",
        ],
        check=True,
    )
    # Every installed package says it is typed.
    site = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import edge, pathlib; print(pathlib.Path(edge.__file__).parent)",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert (Path(site) / "py.typed").exists()
