"""The HAProxy reference config (deploy/haproxy.cfg) and the dev server's generated one.

Pinned here: HAProxy itself accepts both; the dev server's defaults and backend
rules are the deploy file's, line for line (only addresses, logging and the
process's user differ), so what the tests prove is what gets deployed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from launch import devservers
from launch.cluster import REPO

DEPLOY = REPO / "deploy" / "haproxy.cfg"


def _check(binary: str, config: Path) -> None:
    out = subprocess.run(
        [binary, "-c", "-f", str(config)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _section_rules(text: str, section: str) -> list[str]:
    """The directives of `section` (e.g. "defaults"), without comments, servers or logging."""
    rules: list[str] = []
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if raw and not raw[0].isspace():
            inside = line == section
            continue
        if inside and line and not line.startswith(("#", "server ", "log ")):
            rules.append(line)
    return rules


def test_haproxy_accepts_the_deploy_config(haproxy_binary: str) -> None:
    _check(haproxy_binary, DEPLOY)


def test_haproxy_accepts_the_dev_server_config(haproxy_binary: str, tmp_path: Path) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(devservers.haproxy_config(devservers.free_port(), [8000, 8001]))
    _check(haproxy_binary, config)


def test_the_dev_server_balances_by_the_deploy_files_rules() -> None:
    deploy = DEPLOY.read_text()
    dev = devservers.haproxy_config(8080, [8000, 8001])
    for section in ("defaults", "backend ruang_api"):
        assert _section_rules(dev, section) == _section_rules(deploy, section), section
        assert _section_rules(dev, section)  # the section exists and has rules
    # Both send the frontend to the same backend, with one server line per replica.
    assert "default_backend ruang_api" in _section_rules(deploy, "frontend ruang")
    assert "default_backend ruang_api" in _section_rules(dev, "frontend ruang")
    servers = [line.split()[2] for line in dev.splitlines() if line.strip().startswith("server ")]
    assert servers == ["127.0.0.1:8000", "127.0.0.1:8001"]
