"""Small helpers shared by tests: bounded waiting for something to become true."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    timeout: float = 20.0,  # noqa: ASYNC109 - a bounded wait is the point
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Polls `probe` until it returns a truthy value; fails after `timeout` seconds.

    The timeout bounds a wait for a real system to settle; it is not a performance
    assertion.
    """
    last: T | None = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                last = await probe()
                if last:
                    return last
                await asyncio.sleep(interval)
    except TimeoutError:
        raise AssertionError(f"{what} not reached within {timeout} s (last: {last!r})") from None


def auth_headers(
    settings: object,
    subject: str = "test-admin",
    roles: tuple[str, ...] = ("admin",),
    sites: tuple[str, ...] = (),
) -> dict[str, str]:
    """A bearer header with a dev token for `settings`' signing key (admin by default)."""
    from cloud.people.auth import mint_dev_token
    from cloud.settings import CloudSettings

    assert isinstance(settings, CloudSettings)
    token = mint_dev_token(settings, subject, list(roles), sites=list(sites) or None)
    return {"Authorization": f"Bearer {token}"}


def missing(what: str) -> None:
    """A tool or server a test needs is absent: fail with CI=true, skip on a developer machine."""
    import os

    import pytest

    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"CI=true and {what} is missing")
    pytest.skip(f"{what} is missing (would fail with CI=true)")


def keep_history() -> dict[str, Any]:
    """CloudSettings fields that keep every record: the clouds tests start run the
    retention purge (cloud/privacy/retention.py), which would delete the history tests
    seed on fixed dates once those dates are old enough. Retention has tests of its
    own (tests/cloud/privacy/test_retention.py)."""
    from cloud.privacy.retention import CLASSES

    return {data.setting: 36500.0 for data in CLASSES}
