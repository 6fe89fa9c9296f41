"""Door decisions stay in the node's audit log until the cloud has committed them."""

from __future__ import annotations

from pathlib import Path

from edge.agent import EdgeAgent
from edge.devices.audit_log import AuditLog
from edge.devices.door import audit_message_id
from edge.settings import EdgeSettings
from ruang import contract


def agent_with_log(tmp_path: Path) -> tuple[EdgeAgent, AuditLog]:
    agent = EdgeAgent(EdgeSettings(node_id="n-audit", state_dir=tmp_path / "state"))
    log = AuditLog(tmp_path / "audit.sqlite3")
    agent.audit = log
    for badge in ("04A1B2C3", "0411223344", "04DEADBE"):
        log.append(door="DOOR-1", badge=badge, granted=True, reason="allowed")
    return agent, log


async def test_audit_log_is_pruned_only_up_to_the_first_decision_the_cloud_lacks(
    tmp_path: Path,
) -> None:
    agent, log = agent_with_log(tmp_path)
    seqs = [e.seq for e in log.pending()]
    await agent._on_command(contract.AuditAck(node="n-audit", seqs=(seqs[0], seqs[2])))
    assert [e.seq for e in log.pending()] == seqs[1:]
    await agent._on_command(contract.AuditAck(node="n-audit", seqs=(seqs[1],)))
    assert log.pending() == [] and log.verify().ok


async def test_unacknowledged_decisions_are_resent_with_their_original_ids(tmp_path: Path) -> None:
    agent, log = agent_with_log(tmp_path)
    agent._resend_unacknowledged_access_decisions()
    await agent.uplink.outbox.flushed()
    resent = [
        contract.AccessDecision.model_validate_json(row.payload)
        for row in agent.uplink.outbox.all_rows()
    ]
    assert [m.id for m in resent] == [audit_message_id(e.hash) for e in log.pending()]
    assert all(m.audit_hash == e.hash for m, e in zip(resent, log.pending(), strict=True))
