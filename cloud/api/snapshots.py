"""Snapshot routes: the public key(s) edge nodes verify snapshots with."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from cloud.fleet.snapshots import SnapshotSigner

router = APIRouter(tags=["snapshots"])


class SnapshotTarget(Protocol):
    """What routes need of snapshots: the signer's public key, and marking them due.

    The publisher itself in a process that runs the jobs; in an `api` process a
    stand-in that signals the jobs leader (cloud/runtime/components.py).
    """

    @property
    def signer(self) -> SnapshotSigner: ...

    def mark_dirty(self, node: str | None = None, *, desk: str | None = None) -> None: ...


async def get_publisher(request: Request) -> SnapshotTarget:
    publisher: SnapshotTarget = request.app.state.snapshots
    return publisher


PublisherDep = Annotated[SnapshotTarget, Depends(get_publisher)]


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


@router.get(
    "/snapshot-keys",
    response_class=Response,
    responses={
        200: {
            "content": {"application/x-pem-file": {}},
            "description": (
                "Every snapshot public key a node should trust now (PEM bundle): the "
                "signing key's first, then any extra key of a rotation in progress"
            ),
        }
    },
)
async def snapshot_keys(publisher: PublisherDep) -> Response:
    return Response(
        publisher.signer.trusted_bundle,
        media_type="application/x-pem-file",
        headers={"X-Key-Id": publisher.signer.key_id},
    )
