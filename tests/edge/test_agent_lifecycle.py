"""EdgeAgent as an async context manager: its parts run inside the block and stop at its end."""

from __future__ import annotations

from pathlib import Path

from edge.agent import EdgeAgent
from edge.settings import EdgeSettings
from edge.status import read_status
from tests.helpers import eventually


async def test_agent_as_context_manager_runs_its_parts_and_stops_them_on_exit(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    # No broker listens on port 9 of loopback: the uplink keeps retrying, the rest runs.
    settings = EdgeSettings(
        node_id="n-cm", state_dir=state, mqtt_url="mqtt://127.0.0.1:9", health_interval_s=0.05
    )

    async def status_written() -> bool:
        return read_status(state) is not None

    async with EdgeAgent(settings) as agent:
        # The health loop (edge/health_loop.py) writes the status file once a round.
        await eventually(status_written, timeout=10, what="status written")
        assert agent.health().node == "n-cm"
        running = agent._running
        assert running is not None and not running.done()
    assert running.done() and agent._running is None
