"""`GET /role`: which role this process runs and whether it leads the jobs.

Served by every role, unauthenticated like `/healthz` (it names no person and no
resource): load balancers and operators use it to see which process is the jobs
leader (docs/operations.md, "Running roles").
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

router = APIRouter(tags=["health"])


class RolePublic(BaseModel):
    role: Literal["all", "api", "ingest", "jobs"]
    worker: int = Field(ge=0)
    name: str = Field(description="the process's MQTT client id and PostgreSQL application name")
    leader: bool | None = Field(description="leads the jobs now; null for a role without jobs")
    received: int | None = Field(
        description="MQTT messages this process's ingestion received; null without ingestion"
    )


@router.get("/role", response_model=RolePublic)
async def role(request: Request) -> RolePublic:
    # Set by the lifespan (cloud/runtime/components.py, RoleStatus).
    status = request.app.state.role_status
    return RolePublic(
        role=status.role,
        worker=status.worker,
        name=status.name,
        leader=status.leader,
        received=status.received,
    )
