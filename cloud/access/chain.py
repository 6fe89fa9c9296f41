"""The access log, and the check of each node's audit hash chain as its decisions arrive.

A node writes every door decision into a hash-chained log (edge/devices/audit_log.py)::

    hash(seq) = SHA-256( hash(seq - 1) (32 raw bytes) || canonical JSON of
                         {"badge","door","granted","reason","seq","ts"} ),  hash(0) = 64 zeros

and publishes each with its `audit_seq` and `audit_hash`. The cloud stores every
decision in `access_log` (in the ingestion transaction, before its audit_ack) and
walks each node's chain forward from the last entry it verified (`access_chains`):

- the next seq with a hash that chains: verified (`chain_ok` true);
- the next seq with a hash that does not (an entry altered, or the log rewritten):
  flagged (`chain_ok` false) and the chain marked broken, an alarm on the fleet
  view until the security role clears it; the walk goes on from the received hash
  so later decisions are still checked;
- a seq at or below the verified one under a new message id (the log was reset
  or rewritten): flagged, broken;
- a missing seq with later ones already here: a gap, an alarm while it lasts
  (entries can arrive out of order after an outage, so it clears if the
  missing ones arrive and chain); the later ones wait unverified (`chain_ok` NULL).

Nothing is dropped: a flagged decision is still stored, searchable and acknowledged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cloud.db.tables import ACCESS_CHAINS, ACCESS_LOG, BADGES, VISITS
from cloud.db.timestamps import utc
from ruang import contract

GENESIS_HASH = "0" * 64
BROKEN_HASH = "hash does not chain to the previous decision"
REUSED_SEQ = "sequence number already used (audit log reset or rewritten)"


def canonical_record(
    seq: int, ts: float, door: str, badge: str | None, granted: bool, reason: str
) -> bytes:
    """The bytes the node hashes for one entry (the same layout as the edge's audit log)."""
    record = {"badge": badge, "door": door, "granted": bool(granted), "reason": reason,
              "seq": seq, "ts": ts}  # fmt: skip
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, record: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + record).hexdigest()


async def _holders(
    conn: AsyncConnection, decisions: Sequence[contract.AccessDecision]
) -> dict[str, str]:
    """{badge ref: person id} of the badges named (the most recently issued badge of a uid)."""
    refs = {d.badge for d in decisions if d.badge is not None}
    if not refs:
        return {}
    plain = {r.removeprefix("ble:") for r in refs}
    rows = await conn.execute(
        select(BADGES.c.uid, BADGES.c.kind, BADGES.c.person_id)
        .where(or_(func.upper(BADGES.c.uid).in_(refs), BADGES.c.uid.in_(refs | plain)))
        .order_by(BADGES.c.issued_at)
    )
    out: dict[str, str] = {}
    for uid, kind, person in rows:
        ref = (uid if uid.startswith("ble:") else f"ble:{uid}") if kind == "ble" else uid.upper()
        out[ref] = person  # later issues win
    # A guest's temporary card (cloud/visitors): logged under its visit, never the guest's name.
    cards = refs - set(out)
    if cards:
        visits = await conn.execute(
            select(VISITS.c.card_uid, VISITS.c.id)
            .where(VISITS.c.card_uid.in_(cards))
            .order_by(VISITS.c.checked_in_at)
        )
        for card, visit_id in visits:
            out[card] = f"visit-{visit_id}"  # the latest visit with the card wins
    return out


async def record(
    conn: AsyncConnection,
    decisions: Sequence[tuple[contract.AccessDecision, float]],
    now: datetime,
) -> set[str]:
    """Stores new decisions (with their receive time) and walks each node's chain.

    Returns the nodes whose chain state changed to or from an alarm.
    """
    if not decisions:
        return set()
    holders = await _holders(conn, [d for d, _ in decisions])
    await conn.execute(
        ACCESS_LOG.insert(),
        [
            {
                "message_id": d.id, "node": d.node, "door": d.door, "badge": d.badge,
                "person_id": holders.get(d.badge) if d.badge else None,
                "granted": d.granted, "reason": d.reason, "ts": utc(d.ts), "ts_raw": d.ts,
                "received_at": utc(received), "audit_seq": d.audit_seq,
                "audit_hash": d.audit_hash, "chain_ok": None, "chain_problem": None,
            }
            for d, received in decisions
        ],
    )  # fmt: skip
    changed: set[str] = set()
    for node in sorted({d.node for d, _ in decisions}):
        if await verify(conn, node, now):
            changed.add(node)
    return changed


async def _chain(conn: AsyncConnection, node: str) -> tuple[int, str, int | None, datetime | None]:
    row = (
        await conn.execute(
            select(
                ACCESS_CHAINS.c.verified_seq, ACCESS_CHAINS.c.verified_hash,
                ACCESS_CHAINS.c.broken_seq, ACCESS_CHAINS.c.gap_since,
            ).where(ACCESS_CHAINS.c.node == node)
        )
    ).first()  # fmt: skip
    if row is None:
        await conn.execute(
            ACCESS_CHAINS.insert().values(node=node, verified_seq=0, verified_hash=GENESIS_HASH)
        )
        return 0, GENESIS_HASH, None, None
    return int(row[0]), str(row[1]), row[2], row[3]


async def verify(conn: AsyncConnection, node: str, now: datetime) -> bool:
    """Walks `node`'s unverified decisions in seq order; True if its alarm state changed."""
    seq, prev, broken, gap_since = await _chain(conn, node)
    was_alarm = broken is not None or gap_since is not None
    pending = (
        await conn.execute(
            select(
                ACCESS_LOG.c.id, ACCESS_LOG.c.audit_seq, ACCESS_LOG.c.audit_hash,
                ACCESS_LOG.c.ts_raw, ACCESS_LOG.c.door, ACCESS_LOG.c.badge,
                ACCESS_LOG.c.granted, ACCESS_LOG.c.reason,
            )
            .where(ACCESS_LOG.c.node == node, ACCESS_LOG.c.chain_ok.is_(None))
            .order_by(ACCESS_LOG.c.audit_seq, ACCESS_LOG.c.id)
        )
    ).all()  # fmt: skip
    gap = False
    for row in pending:
        ok, problem = True, None
        if row.audit_seq <= seq:
            ok, problem = False, REUSED_SEQ
        elif row.audit_seq > seq + 1:
            gap = True
            break
        else:
            record_bytes = canonical_record(
                row.audit_seq, row.ts_raw, row.door, row.badge, row.granted, row.reason
            )
            if chain_hash(prev, record_bytes) != row.audit_hash:
                ok, problem = False, BROKEN_HASH
            # Go on from what the node says, so the decisions after a break are checked too.
            seq, prev = row.audit_seq, row.audit_hash
        if not ok and broken is None:
            broken = row.audit_seq
            await conn.execute(
                update(ACCESS_CHAINS)
                .where(ACCESS_CHAINS.c.node == node)
                .values(broken_seq=broken, broken_at=now, problem=problem)
            )
        await conn.execute(
            update(ACCESS_LOG)
            .where(ACCESS_LOG.c.id == row.id)
            .values(chain_ok=ok, chain_problem=problem)
        )
    gap_since = (gap_since or now) if gap else None
    await conn.execute(
        update(ACCESS_CHAINS)
        .where(ACCESS_CHAINS.c.node == node)
        .values(verified_seq=seq, verified_hash=prev, gap_since=gap_since)
    )
    return was_alarm != (broken is not None or gap_since is not None)


async def clear(conn: AsyncConnection, node: str, now: datetime) -> bool:
    """The security role has looked into a break or gap: re-anchor on the oldest unverified
    decision (accepting it as the new start) and clear the alarm. False if no chain."""
    chain = (await conn.execute(select(ACCESS_CHAINS).where(ACCESS_CHAINS.c.node == node))).first()
    if chain is None:
        return False
    first = (
        await conn.execute(
            select(ACCESS_LOG.c.id, ACCESS_LOG.c.audit_seq, ACCESS_LOG.c.audit_hash)
            .where(ACCESS_LOG.c.node == node, ACCESS_LOG.c.chain_ok.is_(None))
            .order_by(ACCESS_LOG.c.audit_seq)
            .limit(1)
        )
    ).first()
    values: dict[str, object] = {"broken_seq": None, "broken_at": None, "problem": None}
    if first is not None:
        values |= {"verified_seq": first.audit_seq, "verified_hash": first.audit_hash}
        await conn.execute(
            update(ACCESS_LOG)
            .where(ACCESS_LOG.c.id == first.id)
            .values(chain_ok=True, chain_problem="re-anchored after a gap")
        )
    await conn.execute(update(ACCESS_CHAINS).where(ACCESS_CHAINS.c.node == node).values(**values))
    await verify(conn, node, now)
    return True
