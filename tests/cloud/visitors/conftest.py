"""Visitor test fixtures: the sample building, hosts of its site, managed doors, real SMTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from cloud.buildings.layout import SAMPLE_LAYOUT, apply_layout, load_layout
from cloud.settings import CloudSettings
from launch.smtp_sink import SmtpSink
from tests.cloud.conftest import RunningCloud, start_cloud

SITE = "ikn-kipp"
ROSTER = (
    "id,kind,name,agency,role,email,site_id\n"
    "p-ayu,asn,Ayu Lestari,Otorita IKN,asn,ayu@example.go.id,ikn-kipp\n"
    "p-budi,asn,Budi Santoso,Kementerian PUPR,asn,budi@example.go.id,ikn-kipp\n"
)
# Lobby (no floor), a door on each of floors 1 and 2.
DOORS = {"D-LOBBY": None, "D-L1": "A1-L1", "D-L2": "A1-L2"}


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def mail_settings(settings: CloudSettings, smtp: SmtpSink) -> CloudSettings:
    return settings.model_copy(update={"smtp_url": SecretStr(smtp.url), "notify_poll_s": 0.05})


@pytest.fixture
async def office(mail_settings: CloudSettings) -> AsyncIterator[RunningCloud]:
    """The cloud with the sample building, two hosts of its site and three managed doors."""
    async with start_cloud(mail_settings) as cloud:
        await apply_layout(cloud.app.state.engine, load_layout(SAMPLE_LAYOUT))
        r = await cloud.http.post(
            "/api/v1/people/import", content=ROSTER, headers={"content-type": "text/csv"}
        )
        assert r.status_code == 200, r.text
        for door, floor in DOORS.items():
            body: dict[str, Any] = {"site_id": SITE, "name": door}
            if floor:
                body["floor_id"] = floor
            r = await cloud.http.put(f"/api/v1/access/doors/{door}", json=body)
            assert r.status_code == 200, r.text
        yield cloud


def window(start_min: float = -5, minutes: float = 120) -> tuple[str, str]:
    start = (datetime.now(UTC) + timedelta(minutes=start_min)).replace(microsecond=0)
    return start.isoformat(), (start + timedelta(minutes=minutes)).isoformat()


def invitation(**extra: Any) -> dict[str, Any]:
    starts, ends = window()
    body = {
        "guest_name": "Rina Kusuma",
        "guest_email": "rina@mitra.example",
        "organisation": "PT Mitra Nusantara",
        "purpose": "Rapat koordinasi",
        "starts_at": starts,
        "ends_at": ends,
        "floor_id": "A1-L1",
    }
    return body | extra
