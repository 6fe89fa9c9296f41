"""Availability's JSON, written by the database (cloud/bookings/reads.py), keeps the
AvailabilityPublic shape and the desks' stored values on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from cloud.bookings.schemas import AvailabilityPublic
from cloud.db.tables import DESKS, ZONES
from cloud.settings import CloudSettings
from tests.cloud.booking_helpers import booking, seed, slot
from tests.cloud.conftest import RunningCloud


async def test_availability_json_is_the_schema_with_the_stored_desk_values(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    start, end = slot()
    r = await cloud.http.post("/api/v1/bookings", json=booking("L1-D01", "p-ayu", (start, end)))
    assert r.status_code == 201, r.text

    r = await cloud.http.get("/api/v1/availability", params={"start": start, "end": end})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    parsed = AvailabilityPublic.model_validate_json(r.content)  # the documented shape
    body = r.json()
    assert set(body) == {"start", "end", "desks", "rooms"}
    # The window is echoed as asked (pydantic's datetime encoding, offset kept).
    assert (parsed.start, parsed.end) == (
        datetime.fromisoformat(start),
        datetime.fromisoformat(end),
    )

    async with cloud.app.state.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    DESKS.c.id, DESKS.c.label, DESKS.c.mode, DESKS.c.features,
                    DESKS.c.floor_id, DESKS.c.zone_id, ZONES.c.reserved_for_agency,
                    DESKS.c.x, DESKS.c.y, DESKS.c.w, DESKS.c.h,
                )
                .select_from(DESKS.outerjoin(ZONES, ZONES.c.id == DESKS.c.zone_id))
                .where(DESKS.c.mode != "unavailable", DESKS.c.id != "L1-D01")
                .order_by(DESKS.c.id)
            )
        ).all()  # fmt: skip
    expected = [dict(row._mapping) for row in rows]
    assert len(expected) > 20
    # Same desks, same order (by id), every field with its stored value and JSON type.
    assert body["desks"] == expected
    assert any(d["reserved_for_agency"] for d in body["desks"])
    assert all(isinstance(d["features"], list) for d in body["desks"])
    assert [d.id for d in parsed.desks] == [d["id"] for d in expected]


async def test_availability_with_nothing_free_is_an_empty_list(
    cloud: RunningCloud, settings: CloudSettings
) -> None:
    await seed(cloud, settings)
    start, end = slot()
    r = await cloud.http.get(
        "/api/v1/availability", params={"start": start, "end": end, "floor": "no-such-floor"}
    )
    assert r.status_code == 200
    assert r.json()["desks"] == [] and r.json()["rooms"] == []
