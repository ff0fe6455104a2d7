"""The document agent: files become Document shards (extracted and OCRed off the event loop).

Policy: a file that can be read but not extracted (encrypted, corrupt, empty, a zip bomb,
too large, timed out) becomes a Document shard whose `extractionStatus` and
`extractionReason` say why, so people see the file exists; an event without a usable
blob reference (missing, refused, not found) goes to the dead-letter topic; storage that
is down is retried, then dead-lettered with the reason (replayable).
"""

from __future__ import annotations

import faust

from agents.consume import define_shard_agent
from agents.deps import AgentDeps
from agents.spooled import on_spooled_blob
from blobs.errors import BlobTooLargeError
from documents.extract import Extraction, ExtractionLimits
from documents.runner import run_extraction
from normalisers.document import document_draft, document_request
from shards.model import ShardDraft
from streams.models import RawEvent

__all__ = ["register"]


def register(app: faust.App, deps: AgentDeps) -> str:
    """Define `process_documents` on `app`; its name."""
    settings = deps.settings
    limits = ExtractionLimits(
        max_chars=settings.DOCUMENT_MAX_CHARS, max_file_bytes=settings.DOCUMENT_MAX_BYTES
    )
    spool_dir = settings.DATA_DIR / "spool"

    async def to_draft(event: RawEvent) -> ShardDraft:
        request = document_request(event)
        try:
            extraction = await on_spooled_blob(
                deps.blobs,
                request.blob,
                lambda path: run_extraction(
                    path,
                    content_type=request.content_type,
                    file_name=request.file_name,
                    limits=limits,
                    ocr_factory=deps.ocr,
                    timeout=settings.DOCUMENT_TIMEOUT,
                ),
                max_bytes=settings.DOCUMENT_MAX_BYTES,
                spool_dir=spool_dir,
                attempts=settings.BLOB_RETRIES,
            )
        except BlobTooLargeError as e:
            return document_draft(event, _refused(str(e)))
        return document_draft(event, extraction)

    return define_shard_agent(
        app,
        deps,
        name="process_documents",
        data_type="document",
        to_draft=to_draft,
        concurrency=settings.HEAVY_CONCURRENCY,
        stage="extract",
        doc="Extract text (and OCR scans) from files into Document shards.",
    )


def _refused(reason: str) -> Extraction:
    return Extraction(
        text="", truncated=False, status="too_large", reason=reason, metadata={}, ocr_pages=0,
        kind="binary",
    )  # fmt: skip
