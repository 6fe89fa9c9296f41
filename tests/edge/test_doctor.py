"""`ruang edge doctor` against a real Mosquitto and simulated desk units on ptys."""

from __future__ import annotations

import json
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from cloud.fleet.broker_credentials import hash_password, render_password_file
from edge.doctor import Check, check_clock, diagnose, run_doctor
from edge.status import format_status
from launch import devservers
from launch.cli import build_parser
from launch.cli import main as cli_main
from simulators.floor import SimulatedFloor
from tests.helpers import missing

pytestmark = pytest.mark.servers


def write_config(path: Path, **values: Any) -> Path:
    path.write_text(
        json.dumps({"node_id": "edge-doc", "state_dir": str(path.parent / "state"), **values})
    )
    return path


def by_name(checks: list[Check], prefix: str) -> Check:
    return next(c for c in checks if c.name.startswith(prefix))


async def test_healthy_node_passes_and_missing_port_fails_with_advice(
    tmp_path: Path, mosquitto_server: devservers.Mosquitto
) -> None:
    async with SimulatedFloor(count=2) as floor:
        units = [{"desk": d, "port": p} for d, p in floor.paths.items()]
        config = write_config(
            tmp_path / "edge.json", mqtt_url=mosquitto_server.url, desk_units=units
        )
        checks = await diagnose(config)
        assert not [c for c in checks if c.level == "FAIL"], [c.line() for c in checks]
        for desk in floor.paths:
            assert by_name(checks, f"desk unit {desk}").level == "PASS"
        assert by_name(checks, "broker").level == "PASS"
        assert by_name(checks, "config").level == "PASS"
        assert by_name(checks, "disk").level in {"PASS", "WARN"}

        units.append({"desk": "L1-D99", "port": str(tmp_path / "ttyUSB-gone")})
        config = write_config(
            tmp_path / "edge.json", mqtt_url=mosquitto_server.url, desk_units=units
        )
        missing = by_name(await diagnose(config), "desk unit L1-D99")
        assert missing.level == "FAIL" and "does not exist" in missing.detail
        assert "ruang edge devices" in missing.advice
        assert await run_doctor(config) == 1


async def test_invalid_config_fails_with_the_error(tmp_path: Path) -> None:
    config = write_config(tmp_path / "edge.json", health_interval_s=-1)
    (first, *_) = await diagnose(config)
    assert first.level == "FAIL" and "health_interval_s" in first.detail


async def test_wrong_broker_port_is_refused(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "edge.json", mqtt_url=f"mqtt://127.0.0.1:{devservers.free_port()}"
    )
    broker = by_name(await diagnose(config), "broker")
    assert broker.level == "FAIL" and "refused" in broker.detail


async def test_bad_credentials_are_not_authorised(tmp_path: Path) -> None:
    passwords = tmp_path / "passwd"
    passwords.write_text(render_password_file([("edge-doc", hash_password("right"))]))
    passwords.chmod(0o600)
    try:
        context = devservers.mosquitto(f"password_file {passwords}", allow_anonymous=False)
        server = context.__enter__()
    except devservers.ServerUnavailable as exc:
        missing(str(exc))
    try:
        ok = write_config(
            tmp_path / "ok.json",
            mqtt_url=server.url,
            mqtt_username="edge-doc",
            mqtt_password="right",
        )
        assert by_name(await diagnose(ok), "broker").level == "PASS"
        bad = write_config(
            tmp_path / "bad.json",
            mqtt_url=server.url,
            mqtt_username="edge-doc",
            mqtt_password="wrong",
        )
        broker = by_name(await diagnose(bad), "broker")
        assert broker.level == "FAIL" and "not authorised" in broker.detail
        assert "mqtt_password" in broker.advice
    finally:
        context.__exit__(None, None, None)


async def test_clock_compares_with_the_cloud_date_header() -> None:
    async def in_sync(url: str) -> str:
        return formatdate(time.time(), usegmt=True)

    async def far_behind(url: str) -> str:
        return formatdate(time.time() + 3600, usegmt=True)

    assert (await check_clock(None)).level == "WARN"
    assert (await check_clock("http://cloud", in_sync)).level == "PASS"
    skewed = await check_clock("http://cloud", far_behind)
    assert skewed.level == "FAIL" and "NTP" in skewed.advice


def test_status_table_and_stale_file(tmp_path: Path) -> None:
    now = 1_800_000_000.0
    status = {
        "node": "edge-doc",
        "written_at": now - 5,
        "health_interval_s": 30.0,
        "uptime_s": 120,
        "uplink_connected": True,
        "outbox_depth": 3,
        "config_version": 4,
        "snapshot_version": 9,
        "devices": [{"device": "L1-D01", "kind": "deskunit", "online": True}],
    }
    text, alive = format_status(status, tmp_path, now)
    assert alive and "config version" in text and "L1-D01" in text and "1 of 1 online" in text
    text, alive = format_status(status, tmp_path, now + 200)
    assert not alive and "AGENT LOOKS STOPPED" in text
    text, alive = format_status(None, tmp_path, now)
    assert not alive and "no status" in text


def test_cli_wires_doctor_and_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["edge", "doctor", "--config", "x.yaml", "--cloud", "u"])
    assert args.config == "x.yaml" and args.cloud == "u"
    config = write_config(tmp_path / "edge.json")
    assert cli_main(["edge", "status", "--config", str(config)]) == 1
    assert "no status" in capsys.readouterr().out
