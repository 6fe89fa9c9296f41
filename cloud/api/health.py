"""Liveness (`/healthz`) and readiness (`/readyz`: database reachable and MQTT connected)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from cloud.api_types import Health, Problem, Readiness
from cloud.db.engine import ping
from cloud.deps import CommandsDep, EngineDep
from cloud.problems import problem_response

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Problem, "description": "database or MQTT unavailable"}},
)
async def readyz(engine: EngineDep, commands: CommandsDep) -> Readiness | JSONResponse:
    database, mqtt = await ping(engine), commands.connected
    if database and mqtt:
        return Readiness(status="ready", database=True, mqtt=True)
    missing = [name for name, ok in (("database", database), ("MQTT broker", mqtt)) if not ok]
    return problem_response(
        503,
        f"not reachable: {', '.join(missing)}",
        title="Not ready",
        instance="/readyz",
        database=database,
        mqtt=mqtt,
    )
