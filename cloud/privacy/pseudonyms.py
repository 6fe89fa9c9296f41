"""Keyed-hash pseudonyms for badge ids on their way into the time series.

The time-series store is read by analysts and building tools that have no business
knowing which card or BLE tag was where; they only need to tell one badge from
another. So before a line is written the raw badge id (an NFC UID or `ble:<id>`)
is replaced by `<key id>.<HMAC-SHA256(secret, "badge:" + id), first 80 bits, hex>`:

- without the secret nobody can go from a badge id to its pseudonym, so the series
  cannot be joined to the badges table or to a card in someone's hand;
- with the same secret, one badge always gets the same pseudonym, so counts of
  distinct badges per zone, dwell times and every utilisation figure come out the
  same as with the raw ids;
- the secret rotates: give a new `RUANG_PSEUDONYM_SECRET` with a new
  `RUANG_PSEUDONYM_KEY_ID`. Lines written before carry the old key id, so a reader
  sees where the pseudonyms change instead of counting every badge twice unawares.
  Nothing can translate old pseudonyms into new ones (that is the point of rotating).

The secret is a shared one (`cloud/keys.py`): every ingest worker must hash alike,
so in production it is configured, never generated on a host.
"""

from __future__ import annotations

import hashlib
import hmac

from cloud.keys import PSEUDONYM_SECRET, shared_secret
from cloud.settings import CloudSettings

# 80 bits: collisions among a few hundred thousand badges are out of reach
# (birthday bound ~1e12), and the value stays short in every stored line.
DIGEST_HEX = 20
# A building has tens of thousands of badges; a bounded memo spares the HMAC for
# the ones seen again and again without growing with every forged id.
_CACHE_MAX = 100_000


class Pseudonyms:
    """Turns badge ids into stable, keyed pseudonyms (one secret, one key id)."""

    def __init__(self, secret: bytes, key_id: str) -> None:
        if not secret:
            raise ValueError("a pseudonym secret must not be empty")
        self.key_id = key_id
        self._key = secret
        self._memo: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: CloudSettings) -> Pseudonyms:
        return cls(shared_secret(settings, PSEUDONYM_SECRET), settings.pseudonym_key_id)

    def badge(self, badge_id: str) -> str:
        """The pseudonym of one badge id under the current key."""
        hit = self._memo.get(badge_id)
        if hit is None:
            digest = hmac.new(self._key, b"badge:" + badge_id.encode(), hashlib.sha256)
            hit = f"{self.key_id}.{digest.hexdigest()[:DIGEST_HEX]}"
            if len(self._memo) >= _CACHE_MAX:
                self._memo.clear()
            self._memo[badge_id] = hit
        return hit
