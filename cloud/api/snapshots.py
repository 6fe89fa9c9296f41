"""Snapshot routes: the public key edge nodes verify desk snapshots with."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from cloud.fleet.snapshots import SnapshotPublisher

router = APIRouter(tags=["snapshots"])


async def get_publisher(request: Request) -> SnapshotPublisher:
    publisher: SnapshotPublisher = request.app.state.snapshots
    return publisher


PublisherDep = Annotated[SnapshotPublisher, Depends(get_publisher)]


@router.get(
    "/snapshot-key",
    response_class=Response,
    responses={
        200: {
            "content": {"application/x-pem-file": {}},
            "description": "EC P-256 public key (PEM), the edge's `snapshot_public_key`",
        }
    },
)
async def snapshot_key(publisher: PublisherDep) -> Response:
    return Response(
        publisher.signer.public_pem,
        media_type="application/x-pem-file",
        headers={"X-Key-Id": publisher.signer.key_id},
    )
