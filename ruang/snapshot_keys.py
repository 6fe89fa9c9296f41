"""Snapshot public keys as both sides name and read them: the key id, and PEM bundles.

The cloud signs snapshots with one EC P-256 key and names it in `Snapshot.key_id`
(the first 16 hex digits of SHA-256 over the public key's DER form). A node trusts
a list of public keys, so a key rotation is: add the new public key to every node,
switch the cloud to the new private key, remove the old public key
(docs/operations.md, "Secrets and key rotation"). A bundle is several PEM public
keys one after the other in one file; a file with one key is a bundle of one.
"""

from __future__ import annotations

import hashlib
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

_PEM_BLOCK = re.compile(
    rb"-----BEGIN PUBLIC KEY-----\r?\n.+?\r?\n-----END PUBLIC KEY-----", re.DOTALL
)


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The id a snapshot names its signing key by."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


def public_pem(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_keys(pem: bytes) -> list[ec.EllipticCurvePublicKey]:
    """Every EC public key of a PEM bundle; ValueError if there is none or one is not EC."""
    blocks = _PEM_BLOCK.findall(pem)
    if not blocks:
        raise ValueError("no PEM public key (-----BEGIN PUBLIC KEY-----) found")
    keys: list[ec.EllipticCurvePublicKey] = []
    for block in blocks:
        key = serialization.load_pem_public_key(block)
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("a snapshot key must be an EC (P-256) public key")
        keys.append(key)
    return keys
