"""The meeting agent: recordings become Meeting shards (transcribed off the event loop)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from agents.consume import define_shard_agent
from agents.spooled import on_spooled_blob
from normalisers.meeting import meeting_draft, meeting_request
from shards.model import ShardDraft
from speech.runner import run_transcription
from streams.models import RawEvent

if TYPE_CHECKING:
    from processors.app import ProcessorsApp
    from speech.runner import TranscriberFactory

__all__ = ["register", "transcriber_factory"]


def transcriber_factory(app: ProcessorsApp) -> TranscriberFactory:
    """Azure Speech when `AZURE_SPEECH_ENDPOINT` is set, else local Whisper (settings only)."""
    settings = app.settings
    if settings.AZURE_SPEECH_ENDPOINT and settings.AZURE_SPEECH_KEY:
        from speech.azure import AzureSpeechTranscriber  # only when configured

        return functools.partial(
            AzureSpeechTranscriber,
            settings.AZURE_SPEECH_ENDPOINT,
            settings.AZURE_SPEECH_KEY.get_secret_value(),
        )
    from speech.whisper import WhisperTranscriber  # loads in the child only

    return WhisperTranscriber


def register(app: ProcessorsApp) -> str:
    """Define `process_meetings` on `app`; its name."""
    settings, deps = app.settings, app.deps
    factory = transcriber_factory(app)
    spool_dir = settings.DATA_DIR / "spool"

    async def to_draft(event: RawEvent) -> ShardDraft:
        request = meeting_request(event)
        tenant = deps.tenants.of(event.tenant_id)
        if request.transcript is not None or request.blob is None:
            return meeting_draft(event, tenant, None)
        transcript = await on_spooled_blob(
            deps.blobs,
            request.blob,
            lambda path: run_transcription(path, factory=factory, timeout=settings.MEETING_TIMEOUT),
            max_bytes=settings.MEETING_MAX_BYTES,
            spool_dir=spool_dir,
            attempts=settings.BLOB_RETRIES,
        )
        return meeting_draft(event, tenant, transcript)

    return define_shard_agent(
        app,
        name="process_meetings",
        data_type="meeting",
        to_draft=to_draft,
        concurrency=settings.HEAVY_CONCURRENCY,
        stage="transcribe",
        doc="Transcribe recordings (or take the provider's transcript) into Meeting shards.",
    )
