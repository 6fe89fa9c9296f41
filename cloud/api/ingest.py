"""Ingestion counters (received, applied, duplicates, rejected by reason...)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from cloud.deps import CommandsDep, IngestorDep
from cloud.ingest.schemas import IngestStatsPublic

router = APIRouter(tags=["ingest"])


@router.get("/ingest/stats", response_model=IngestStatsPublic)
async def ingest_stats(ingestor: IngestorDep, commands: CommandsDep) -> IngestStatsPublic:
    s, sink = ingestor.stats, ingestor.sink
    return IngestStatsPublic(
        connected=commands.connected,
        connects=commands.connects,
        received=s.received,
        applied=s.applied,
        duplicates=s.duplicates,
        stale_deaths=s.stale_deaths,
        rejected=dict(s.rejected),
        write_errors=s.write_errors,
        dead_lettered=s.dead_lettered,
        telemetry_dropped=s.telemetry_dropped,
        transport=dict(s.transport),
        nodes_timed_out=s.nodes_timed_out,
        last_error=s.last_error,
        last_error_at=(
            None if s.last_error_at is None else datetime.fromtimestamp(s.last_error_at, UTC)
        ),
        telemetry_sink=sink.description,
        telemetry_written=sink.stats.written,
        telemetry_failed=sink.stats.failed,
        telemetry_pending=sink.stats.pending,
    )
