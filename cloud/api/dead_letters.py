"""Dead-letter routes for admins: list, read, replay and delete parked messages.

Ingestion parks a message it could not apply (cloud/ingest/dead_letters.py explains
when); once the cause is fixed an admin replays it through the same pipeline, or
deletes it. The raw payload is returned base64-encoded: it may not be UTF-8.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import Response

from cloud.api_types import Problem
from cloud.deps import DbDep, EngineDep, IngestorDep
from cloud.ingest import dead_letters
from cloud.ingest.schemas import DeadLetterDetail, DeadLetterPage, DeadLetterPublic, ReplayResult
from cloud.problems import ProblemError

router = APIRouter(prefix="/dead-letters", tags=["dead letters"])

LetterId = Annotated[int, Path(ge=1, le=2**63 - 1)]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such dead letter"}
}


def _missing(letter_id: int) -> ProblemError:
    return ProblemError(404, f"no dead letter {letter_id}", title="Unknown dead letter")


@router.get("", response_model=DeadLetterPage)
async def list_dead_letters(
    conn: DbDep,
    node: Annotated[str | None, Query(max_length=64, description="only this node's")] = None,
    limit: Annotated[int, Query(ge=1, le=dead_letters.PAGE_MAX)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> DeadLetterPage:
    """Parked messages, most recently seen first."""
    total, rows = await dead_letters.list_letters(conn, node=node, limit=limit, offset=offset)
    return DeadLetterPage(total=total, items=[DeadLetterPublic(**r) for r in rows])


@router.get("/{letter_id}", response_model=DeadLetterDetail, responses=_NOT_FOUND)
async def get_dead_letter(conn: DbDep, letter_id: LetterId) -> DeadLetterDetail:
    row = await dead_letters.get_letter(conn, letter_id)
    if row is None:
        raise _missing(letter_id)
    payload = row.pop("payload")
    return DeadLetterDetail(**row, payload_b64=base64.b64encode(payload).decode())


@router.post("/{letter_id}/replay", response_model=ReplayResult, responses=_NOT_FOUND)
async def replay_dead_letter(ingestor: IngestorDep, letter_id: LetterId) -> ReplayResult:
    """Decodes and applies the message again; on success the dead letter is removed."""
    outcome = await ingestor.replay_dead_letter(letter_id)
    if outcome is None:
        raise _missing(letter_id)
    return ReplayResult(
        replayed=outcome.replayed, duplicate=outcome.duplicate, reason=outcome.reason
    )


@router.delete("/{letter_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_NOT_FOUND)
async def delete_dead_letter(engine: EngineDep, letter_id: LetterId) -> Response:
    async with engine.begin() as conn:
        deleted = await dead_letters.delete_letter(conn, letter_id)
    if not deleted:
        raise _missing(letter_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
