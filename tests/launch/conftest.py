"""Fixtures of the launch tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from launch import devservers


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[devservers.Mosquitto]:
    """A broker of its own: the shared one holds other tests' retained node states, which a
    new cloud receives on subscribing and (rightly) refuses, and this test counts refusals."""
    broker = devservers.Mosquitto(port=devservers.free_port(), workdir=tmp_path / "broker")
    broker.workdir.mkdir()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
