"""The API keeps its published contract on edge input: each case here was a fuzzing finding."""

from __future__ import annotations

import pytest

from cloud.api_types import SQL_INT_MAX
from cloud.bookings.qrcheckin import CheckinKeys
from cloud.problems import PROBLEM_JSON

from .conftest import RunningCloud


def test_checkin_key_with_non_ascii_text_is_just_wrong() -> None:
    keys = CheckinKeys(b"secret", "http://127.0.0.1")
    assert not keys.valid("L1-D01", "kunci-é")
    assert keys.valid("L1-D01", keys.key("L1-D01"))


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/bookings/{id}/cancel",
        "/api/v1/badges/{id}/lost",
        "/api/v1/badges/{id}/revoke",
    ],
)
async def test_an_id_beyond_64_bits_is_refused_by_validation(
    cloud: RunningCloud, path: str
) -> None:
    r = await cloud.http.post(path.format(id=SQL_INT_MAX + 1))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    r = await cloud.http.post(path.format(id=SQL_INT_MAX))
    assert r.status_code == 404, r.text


async def test_webhook_ids_beyond_64_bits_are_refused(cloud: RunningCloud) -> None:
    too_big = SQL_INT_MAX + 1
    assert (await cloud.http.get(f"/api/v1/webhooks/{too_big}/deliveries")).status_code == 422
    assert (await cloud.http.delete(f"/api/v1/webhooks/{too_big}")).status_code == 422


@pytest.mark.parametrize("value", ["57", "2025-01-31T09:00:00", "2025-01-31"])
async def test_query_times_must_be_rfc3339_with_an_offset(cloud: RunningCloud, value: str) -> None:
    r = await cloud.http.get("/api/v1/bookings", params={"from": value})
    assert r.status_code == 422, r.text
    r = await cloud.http.get("/api/v1/bookings", params={"from": "2025-01-31T09:00:00+08:00"})
    assert r.status_code == 200, r.text


async def test_an_empty_range_is_a_valid_query_and_a_reversed_one_is_not(
    cloud: RunningCloud,
) -> None:
    at = "2025-01-31T09:00:00Z"
    r = await cloud.http.get("/api/v1/availability", params={"start": at, "end": at})
    assert r.status_code == 200, r.text
    r = await cloud.http.get("/api/v1/analytics/heatmap", params={"from": at, "to": at})
    assert r.status_code == 200, r.text
    r = await cloud.http.get(
        "/api/v1/availability", params={"start": at, "end": "2025-01-31T08:00:00Z"}
    )
    assert r.status_code == 422, r.text


async def test_405_names_every_method_of_the_path(cloud: RunningCloud) -> None:
    r = await cloud.http.request("OPTIONS", "/api/v1/bookings")
    assert r.status_code == 405
    assert set(r.headers["allow"].split(", ")) == {"GET", "POST"}


async def test_openapi_documents_auth_and_validation_errors_as_problems(
    cloud: RunningCloud,
) -> None:
    doc = (await cloud.http.get("/openapi.json")).json()
    desks = doc["paths"]["/api/v1/desks"]["get"]["responses"]
    assert {"401", "403"} <= set(desks)
    cancel = doc["paths"]["/api/v1/bookings/{booking_id}/cancel"]["post"]
    for code in ("401", "403", "404", "409", "422"):
        assert list(cancel["responses"][code]["content"]) == [PROBLEM_JSON], code
    (booking_id,) = cancel["parameters"]
    assert booking_id["schema"]["maximum"] == SQL_INT_MAX
    # The public kiosk asks for no token, so it promises no 401.
    assert "401" not in doc["paths"]["/api/v1/public/availability"]["get"]["responses"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
