"""The rules of roles without starting processes: names, subscriptions, the SQLite refusal,
and that `all` is what a cloud without RUANG_ROLE was before roles existed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud.app import create_app
from cloud.runtime.roles import RUNS, RoleRefused, check_role, ingest_subscriptions, process_name
from cloud.settings import CloudSettings
from ruang import contract


def _settings(tmp_path: Path, **changes: Any) -> CloudSettings:
    return CloudSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/one.sqlite3", mqtt_client_id="c", **changes
    )


def test_all_is_the_default_and_keeps_the_plain_subscription_and_client_id(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    assert settings.role == "all"
    check_role(settings)  # SQLite is fine for one process
    assert process_name(settings) == "c"
    assert ingest_subscriptions(settings) == contract.CLOUD_SUBSCRIPTIONS
    assert RUNS["all"].ingestion and RUNS["all"].jobs and not RUNS["all"].elected


def test_an_ingest_worker_shares_every_filter_under_its_own_name(tmp_path: Path) -> None:
    settings = _settings(tmp_path, role="ingest", worker_id=3)
    assert process_name(settings) == "c-ingest-3"
    shared = ingest_subscriptions(settings)
    assert [qos for _, qos in shared] == [qos for _, qos in contract.CLOUD_SUBSCRIPTIONS]
    assert [topic for topic, _ in shared] == [
        f"$share/ruang-ingest/{topic}" for topic, _ in contract.CLOUD_SUBSCRIPTIONS
    ]


@pytest.mark.parametrize("role", ["api", "ingest", "jobs"])
def test_sqlite_refuses_a_role_other_than_all_before_anything_starts(
    tmp_path: Path, role: str
) -> None:
    settings = _settings(tmp_path, role=role)
    with pytest.raises(RoleRefused, match="needs PostgreSQL"):
        check_role(settings)
    assert not (tmp_path / "one.sqlite3").exists()


async def test_the_app_lifespan_refuses_it_too(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path, role="jobs"))
    with pytest.raises(RoleRefused):
        async with app.router.lifespan_context(app):
            pass


async def test_an_ingest_or_jobs_app_serves_health_and_role_only(tmp_path: Path) -> None:
    # Without the lifespan: only which routes exist is looked at.
    for role, api_status in (("ingest", 404), ("jobs", 404), ("all", 401)):
        app = create_app(_settings(tmp_path, role=role))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cloud") as http:
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/api/v1/desks")).status_code == api_status, role
