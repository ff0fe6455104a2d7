"""Text and metadata out of one file, within limits; a bad file is a status, never an exception.

`extract` is synchronous, CPU-bound and touches no network except through the OCR engine
it is given; run it off the event loop (`documents.runner` runs it in a child process).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from documents.formats.draft import Draft, Refusal
from documents.formats.sniff import Sniffed, hinted_kind, sniff
from documents.limits import DocumentKind, ExtractionLimits, ExtractionStatus
from documents.ocr import OcrUnavailableError

if TYPE_CHECKING:
    from documents.ocr import OcrEngine  # annotations only; no cycle

__all__ = [
    "DocumentKind",
    "Extraction",
    "ExtractionLimits",
    "ExtractionStatus",
    "extract",
]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Extraction:
    """The outcome of extracting one file.

    `status` is "ok" when text came out (possibly `truncated`, see `reason`); any other
    status says why there is no text, and `reason` says it in words.
    """

    text: str
    truncated: bool
    status: ExtractionStatus
    reason: str | None
    metadata: dict[str, Any]
    ocr_pages: int
    kind: DocumentKind
    #: wall time spent in `extract`
    seconds: float = 0.0
    #: peak resident memory of the child process that extracted it, when run by the runner
    peak_rss_kb: int | None = None

    @property
    def ok(self) -> bool:
        """Whether text came out."""
        return self.status == "ok"


@dataclass(slots=True)
class _Outcome:
    status: ExtractionStatus
    reason: str | None
    kind: DocumentKind
    metadata: dict[str, Any] = field(default_factory=dict)


def extract(
    path: Path,
    *,
    content_type: str | None = None,
    file_name: str | None = None,
    limits: ExtractionLimits | None = None,
    ocr: OcrEngine | None = None,
) -> Extraction:
    """Extract text and metadata from the file at `path`.

    The real type is sniffed from the bytes; `content_type` and `file_name` are hints
    used where the bytes are ambiguous (plain text, CSV, HTML, Markdown) and to name the
    kind of a file that cannot be read.

    Raises:
        OSError: `path` cannot be read at all (the caller's problem, not the file's).
        OcrUnavailableError: the OCR engine is unavailable (retry later).
    """
    limits = limits or ExtractionLimits()
    started = time.perf_counter()
    size = path.stat().st_size  # OSError on purpose: not a property of the file's content
    hint = hinted_kind(content_type, file_name)
    if size == 0:
        return _finish(started, _Outcome("empty", "the file is empty", hint or "binary"))
    if size > limits.max_file_bytes:
        reason = f"the file has {size:,} bytes, over the limit of {limits.max_file_bytes:,}"
        return _finish(started, _Outcome("too_large", reason, hint or "binary"))
    try:
        sniffed = sniff(path, content_type=content_type, file_name=file_name)
    except Refusal as refusal:
        kind = refusal.kind or hint or "binary"
        return _finish(started, _Outcome(refusal.status, refusal.reason, kind))
    draft = Draft(kind=sniffed.kind, limits=limits, ocr=ocr)
    draft.metadata["mimeType"] = sniffed.mime
    try:
        _read(path, sniffed, draft)
    except Refusal as refusal:
        outcome = _Outcome(refusal.status, refusal.reason, sniffed.kind, draft.metadata)
        return _finish(started, outcome)
    except OcrUnavailableError:
        raise
    except MemoryError:
        reason = "extraction ran out of its memory limit"
        return _finish(started, _Outcome("too_large", reason, sniffed.kind, draft.metadata))
    except Exception as e:  # a malformed file makes parsers raise anything at all
        logger.info("extraction of a %s failed: %s", sniffed.kind, e, exc_info=True)
        reason = f"the {sniffed.kind} could not be parsed: {type(e).__name__}: {e}"[:500]
        return _finish(started, _Outcome("corrupt", reason, sniffed.kind, draft.metadata))
    return _finish_draft(started, draft)


def _read(path: Path, sniffed: Sniffed, draft: Draft) -> None:
    # The readers import heavy libraries (pymupdf, lxml, calamine, Pillow) at module level:
    # imported here so that importing this module stays cheap for the worker process.
    kind = sniffed.kind
    if kind == "pdf":
        from documents.formats.pdf import read_pdf

        read_pdf(path, draft)
    elif kind == "docx":
        from documents.formats.word import read_docx

        read_docx(path, draft)
    elif kind in ("xlsx", "xls", "ods"):
        from documents.formats.sheet import read_workbook

        read_workbook(path, draft)
    elif kind == "image":
        from documents.formats.image import read_image

        read_image(path, draft)
    elif kind in ("text", "csv", "html", "markdown"):
        from documents.formats.plain import read_plain

        read_plain(path, draft, tab_separated=sniffed.tab_separated)
    else:
        raise Refusal("unsupported", f"{sniffed.mime} files are not read")


def _finish(started: float, outcome: _Outcome) -> Extraction:
    return Extraction(
        text="",
        truncated=False,
        status=outcome.status,
        reason=outcome.reason,
        metadata=outcome.metadata,
        ocr_pages=0,
        kind=outcome.kind,
        seconds=time.perf_counter() - started,
    )


def _finish_draft(started: float, draft: Draft) -> Extraction:
    text = draft.sink.text()
    notes = list(draft.notes)
    if draft.sink.truncated:
        notes.append(f"text cut at {draft.limits.max_chars:,} characters")
    if draft.ocr_failures:
        draft.metadata["ocrFailedPages"] = draft.ocr_failures
        notes.append(f"OCR failed on {draft.ocr_failures} page(s): {draft.ocr_errors[0]}")
    if draft.ocr_confidences:
        confidence = sum(draft.ocr_confidences) / len(draft.ocr_confidences)
        draft.metadata["ocrConfidence"] = round(confidence, 3)
    status: ExtractionStatus = "ok"
    if not text:
        if draft.ocr_failures and not draft.ocr_pages:
            status = "ocr_failed"
        elif draft.ocr_needed and draft.ocr is None:
            status = "unsupported"
            notes.insert(0, "the text is in images and OCR is off")
        else:
            status = "empty"
            notes.insert(0, "the file holds no text")
    return Extraction(
        text=text,
        truncated=draft.truncated,
        status=status,
        reason="; ".join(notes) or None,
        metadata=draft.metadata,
        ocr_pages=draft.ocr_pages,
        kind=draft.kind,
        seconds=time.perf_counter() - started,
    )
