"""Notification test fixtures: a real SMTP server (aiosmtpd) on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from launch.smtp_sink import SmtpSink


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()
