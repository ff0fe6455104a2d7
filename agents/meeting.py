"""The meeting agent: recordings become Meeting shards (transcribed off the event loop)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from agents.consume import define_shard_agent
from normalisers.meeting import meeting_draft, meeting_request
from processors.exceptions import TransientError
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
        spool_dir.mkdir(parents=True, exist_ok=True)
        # Storage down, a transcription child that died: retried, then dead-lettered.
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(settings.BLOB_RETRIES),
            wait=wait_exponential(multiplier=0.5, max=10),
            reraise=True,
        ):
            with attempt, tempfile.TemporaryDirectory(dir=spool_dir) as folder:
                path = await deps.blobs.spool(
                    request.blob, max_bytes=settings.MEETING_MAX_BYTES, folder=Path(folder)
                )
                transcript = await run_transcription(
                    path, factory=factory, timeout=settings.MEETING_TIMEOUT
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
