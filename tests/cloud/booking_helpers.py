"""Shared set-up for the booking tests: the sample building, a small roster, time slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from cloud.buildings.layout import SAMPLE_LAYOUT, apply_layout, load_layout
from cloud.settings import CloudSettings
from tests.cloud.conftest import RunningCloud

ROSTER = (
    "id,kind,name,agency,role,nip,email,host_person_id,valid_from,valid_until,pass_number\n"
    "p-ayu,asn,Ayu Lestari,Otorita IKN,asn,198703142010122001,ayu@example.go.id,,,,\n"
    "p-budi,asn,Budi Santoso,Kementerian PUPR,asn,199001012015031002,budi@example.go.id,,,,\n"
    "p-citra,asn,Citra Dewi,,facility_manager,,citra@example.go.id,,,,\n"
    "p-tamu,guest,Tamu Satu,,guest,,,p-ayu,,,G-0001\n"
)


async def seed(
    cloud: RunningCloud | httpx.AsyncClient, settings: CloudSettings, engine: object | None = None
) -> None:
    """The sample layout and the roster, through the public paths."""
    app_engine = engine if engine is not None else cloud.app.state.engine  # type: ignore[union-attr]
    await apply_layout(app_engine, load_layout(SAMPLE_LAYOUT))  # type: ignore[arg-type]
    http = cloud.http if isinstance(cloud, RunningCloud) else cloud
    r = await http.post(
        "/api/v1/people/import", content=ROSTER, headers={"content-type": "text/csv"}
    )
    assert r.status_code == 200, r.text


def slot(days: int = 1, hour: int = 9, hours: int = 4) -> tuple[str, str]:
    """A slot `days` from today at `hour` UTC+8 (Asia/Makassar), as ISO strings."""
    local = datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Makassar"))
    start = local.replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=days)
    return start.isoformat(), (start + timedelta(hours=hours)).isoformat()


def booking(desk: str, person: str, when: tuple[str, str]) -> dict[str, str]:
    return {"desk_id": desk, "person_id": person, "starts_at": when[0], "ends_at": when[1]}
