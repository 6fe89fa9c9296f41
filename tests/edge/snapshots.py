"""Builders of signed snapshots for edge tests (the cloud side signs the same way)."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ruang import contract


def keypair() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, pem


def sign(
    key: ec.EllipticCurvePrivateKey, node: str, body: contract.SnapshotBody
) -> contract.Snapshot:
    signature = key.sign(contract.canonical_json(body), ec.ECDSA(hashes.SHA256()))
    return contract.Snapshot(
        node=node,
        key_id="test",
        body=body,
        signature=base64.urlsafe_b64encode(signature).decode().rstrip("="),
    )


def body(
    version: int = 1, *, now: float = 1_795_000_000.0, **parts: object
) -> contract.SnapshotBody:
    return contract.SnapshotBody(
        version=version,
        issued_at=now,
        valid_until=now + 86_400,
        **parts,  # type: ignore[arg-type]
    )
