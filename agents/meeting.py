"""The meeting agent: recordings become Meeting shards (transcribed off the event loop)."""

from __future__ import annotations

import faust

from agents.consume import define_shard_agent
from agents.deps import AgentDeps
from agents.spooled import on_spooled_blob
from normalisers.meeting import meeting_draft, meeting_request
from shards.model import ShardDraft
from speech.runner import run_transcription
from streams.models import RawEvent

__all__ = ["register"]


def register(app: faust.App, deps: AgentDeps) -> str:
    """Define `process_meetings` on `app`; its name."""
    settings = deps.settings
    spool_dir = settings.DATA_DIR / "spool"

    async def to_draft(event: RawEvent) -> ShardDraft:
        request = meeting_request(event)
        tenant = deps.tenants.of(event.tenant_id)
        if request.transcript is not None or request.blob is None:
            return meeting_draft(event, tenant, None)
        transcript = await on_spooled_blob(
            deps.blobs,
            request.blob,
            lambda path: run_transcription(
                path, factory=deps.transcriber, timeout=settings.MEETING_TIMEOUT
            ),
            max_bytes=settings.MEETING_MAX_BYTES,
            spool_dir=spool_dir,
            attempts=settings.BLOB_RETRIES,
        )
        return meeting_draft(event, tenant, transcript)

    return define_shard_agent(
        app,
        deps,
        name="process_meetings",
        data_type="meeting",
        to_draft=to_draft,
        concurrency=settings.HEAVY_CONCURRENCY,
        stage="transcribe",
        doc="Transcribe recordings (or take the provider's transcript) into Meeting shards.",
    )
