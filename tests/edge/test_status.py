"""The status file is written from data the agent passes in; status does not know the agent."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import edge.status
from edge.status import NodeStatus, read_status, write_status
from ruang import contract


def test_status_module_does_not_import_the_agent() -> None:
    tree = ast.parse(Path(edge.status.__file__).read_text())
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    assert not {"agent", "edge.agent"} & imported


def test_status_file_lists_desk_units_and_other_devices_alike(tmp_path: Path) -> None:
    status = NodeStatus(
        node="edge-s1",
        health_interval_s=30.0,
        uplink_connected=True,
        outbox_depth=2,
        outbox_awaiting_ack=1,
        outbox_alarm=None,
        watchdog=[],
        devices=[
            contract.DeviceHealth(
                node="edge-s1", device="L1-01", kind="deskunit", online=True, detail="/dev/ttyUSB0"
            ),
            contract.DeviceHealth(node="edge-s1", device="R-1", kind="radar", online=False),
        ],
        snapshot_version=7,
        config_version=None,
        last_error=None,
    )
    health = contract.NodeHealth(
        node="edge-s1", uptime_s=12.34, rss_bytes=1, rejected_frames=0, mqtt_reconnects=0,
        units_online=1, alarms=("outbox full",),
    )  # fmt: skip
    write_status(tmp_path, status, health)
    written = read_status(tmp_path)
    assert written is not None
    assert written["devices"] == [
        {"device": "L1-01", "kind": "deskunit", "online": True, "detail": "/dev/ttyUSB0"},
        {"device": "R-1", "kind": "radar", "online": False, "detail": None},
    ]
    assert (written["node"], written["uptime_s"]) == ("edge-s1", 12.3)
    assert written["snapshot_version"] == 7
    assert written["alarms"] == ["outbox full"]
    assert json.loads((tmp_path / "status.json").read_text()) == written
