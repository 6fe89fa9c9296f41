"""Request latency labels: route templates for every kind of route, never a raw path."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry, Histogram
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.staticfiles import StaticFiles

from cloud.monitoring.http_latency import DYNAMIC, UNMATCHED, HttpLatency, route_template


def counts(histogram: Histogram) -> dict[tuple[str, str, str], float]:
    found: dict[tuple[str, str, str], float] = {}
    for metric in histogram.collect():
        for s in metric.samples:
            if s.name.endswith("_count"):
                found[(s.labels["method"], s.labels["route"], s.labels["status"])] = s.value
    return found


@pytest.fixture
def app_and_histogram(tmp_path: Path) -> tuple[FastAPI, Histogram]:
    (tmp_path / "app.js").write_text("// js")
    histogram = Histogram("t_seconds", "test", ["method", "route", "status"],
                          registry=CollectorRegistry())  # fmt: skip
    app = FastAPI()
    inner = APIRouter()

    @inner.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    @inner.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    app.include_router(inner, prefix="/api/v1")

    async def page(request: Request) -> Response:
        return PlainTextResponse(request.path_params["page_id"])

    async def files(request: Request) -> Response:
        return PlainTextResponse(request.path_params["rest"])

    app.add_route("/pages/{page_id}", page)
    app.add_route("/files/{rest:path}", files)
    app.mount("/static", StaticFiles(directory=tmp_path))
    app.add_middleware(HttpLatency, histogram=histogram)
    return app, histogram


async def test_each_kind_of_route_is_labelled_by_its_template(
    app_and_histogram: tuple[FastAPI, Histogram],
) -> None:
    app, histogram = app_and_histogram
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert (await http.get("/api/v1/things/secret-1")).status_code == 200
        assert (await http.get("/pages/secret-2")).status_code == 200
        assert (await http.get("/files/a/secret-3")).status_code == 200
        assert (await http.get("/static/app.js")).status_code == 200
        assert (await http.get("/static/secret-4.js")).status_code == 404
        assert (await http.get("/secret-5")).status_code == 404
        assert (await http.post("/api/v1/things/secret-6")).status_code == 405
        assert (await http.request("BREW", "/pages/x")).status_code == 405
        assert (await http.get("/api/v1/boom")).status_code == 500
    seen = counts(histogram)
    assert seen == {
        ("GET", "/api/v1/things/{thing_id}", "2xx"): 1,
        ("GET", "/pages/{page_id}", "2xx"): 1,
        ("GET", "/files/{rest:path}", "2xx"): 1,
        ("GET", "/static/{path}", "2xx"): 1,
        ("GET", "/static/{path}", "4xx"): 1,
        ("GET", UNMATCHED, "4xx"): 1,
        ("POST", "/api/v1/things/{thing_id}", "4xx"): 1,
        ("other", "/pages/{page_id}", "4xx"): 1,
        ("GET", "/api/v1/boom", "5xx"): 1,
    }
    assert "secret" not in str(seen)


def test_a_routeless_parameter_spanning_segments_is_labelled_dynamic_not_by_its_value() -> None:
    # What a router that names no route in the scope leaves for a `{rest:path}` match.
    scope = {"endpoint": object(), "path": "/files/a/secret", "path_params": {"rest": "a/secret"}}
    assert route_template(scope) == DYNAMIC
    scope = {"endpoint": object(), "path": "/pages/secret", "path_params": {"page_id": "secret"}}
    assert route_template(scope) == "/pages/{page_id}"
