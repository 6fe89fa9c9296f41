"""`GET /metrics`: the process's Prometheus metrics (cloud/monitoring/metrics.py).

No token: a scraper has none. Instead only clients from `metrics_allow_from`
(loopback by default) are answered; the series name no person.
"""

from __future__ import annotations

from ipaddress import ip_address

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from cloud.deps import SettingsDep
from cloud.monitoring.metrics import CONTENT_TYPE, CloudMetrics
from cloud.problems import problem_response

router = APIRouter(tags=["monitoring"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, settings: SettingsDep) -> Response:
    client = request.client.host if request.client is not None else ""
    try:
        address = ip_address(client)
    except ValueError:
        address = None
    if address is None or not any(address in net for net in settings.metrics_allow_from):
        refused: JSONResponse = problem_response(
            403,
            "metrics are served to the networks in RUANG_METRICS_ALLOW_FROM only",
            title="Forbidden",
            instance="/metrics",
        )
        return refused
    collected: CloudMetrics = request.app.state.metrics
    await collected.refresh()
    return Response(collected.render(), media_type=CONTENT_TYPE)
