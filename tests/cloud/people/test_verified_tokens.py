"""Remembered token verifications (cloud/people/auth.py): reused within VERIFIED_TTL_S and
never past the token's expiry; a token that was never verified is never let through."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cloud.people.auth import VERIFIED_TTL_S, AuthError, TokenVerifier, mint_dev_token
from cloud.settings import CloudSettings


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(tmp_path: Path) -> CloudSettings:
    return CloudSettings(auth_dev_key_path=tmp_path / "dev-key.pem")


def _rotate_key(verifier: TokenVerifier) -> None:
    # What a withdrawn signing key looks like to the verifier: signatures by the old
    # key no longer check out.
    verifier._dev_public = ec.generate_private_key(ec.SECP256R1()).public_key()


async def test_a_verified_token_is_remembered_for_the_ttl_then_checked_again(
    settings: CloudSettings,
) -> None:
    import time

    clock = Clock(time.time())
    verifier = TokenVerifier(settings, clock=clock)
    token = mint_dev_token(settings, "p-ayu", ["asn"])
    first = await verifier.verify(token)
    assert first.subject == "p-ayu"

    _rotate_key(verifier)
    assert await verifier.verify(token) == first  # remembered: no new signature check
    clock.now += VERIFIED_TTL_S + 1
    with pytest.raises(AuthError):
        await verifier.verify(token)  # checked again, against the new key


async def test_a_remembered_token_is_not_honoured_past_its_expiry(
    settings: CloudSettings,
) -> None:
    import time

    clock = Clock(time.time())
    verifier = TokenVerifier(settings, clock=clock)
    token = mint_dev_token(settings, "p-ayu", ["asn"], ttl_s=5)
    await verifier.verify(token)
    _rotate_key(verifier)
    clock.now += 6  # past `exp`, well within the TTL
    with pytest.raises(AuthError):
        await verifier.verify(token)


async def test_an_altered_token_is_refused_even_when_the_original_is_remembered(
    settings: CloudSettings,
) -> None:
    verifier = TokenVerifier(settings)
    token = mint_dev_token(settings, "p-ayu", ["asn"])
    await verifier.verify(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    other = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode({**claims, "roles": ["admin"]}, other, algorithm="ES256")
    with pytest.raises(AuthError):
        await verifier.verify(forged)
    header, payload, signature = token.split(".")
    with pytest.raises(AuthError):
        await verifier.verify(f"{header}.{payload}.{signature[:-4]}AAAA")
