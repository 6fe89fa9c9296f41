"""Node health readings and the systemd notify protocol."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from edge import health


def test_sd_notify_sends_state_to_the_socket_systemd_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert health.sd_notify("READY=1")
        assert server.recv(100) == b"READY=1"


def test_sd_notify_is_a_no_op_outside_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert health.sd_notify("WATCHDOG=1") is False


def test_temperature_is_read_from_a_thermal_zone_or_absent(tmp_path: Path) -> None:
    zone = tmp_path / "temp"
    zone.write_text("48312\n")
    assert health.temperature_c(zone) == pytest.approx(48.312)
    assert health.temperature_c(tmp_path / "missing") is None


def test_process_readings_are_plausible(tmp_path: Path) -> None:
    assert health.rss_bytes() > 1_000_000
    assert (health.disk_free_bytes(tmp_path) or 0) > 0
    meter = health.CpuMeter()
    sum(i * i for i in range(200_000))
    assert meter.read() >= 0
