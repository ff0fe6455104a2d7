"""Text out of files (PDF, DOCX, XLSX/XLS/ODS, images by OCR, text, CSV, HTML, Markdown).

Status policy: a file whose *content* is bad (empty, encrypted, corrupt, a decompression
bomb, too large, unsupported, too slow, unreadable by OCR) is not an error. `extract`
returns an `Extraction` with that `status` and a `reason`, and it becomes a Document shard
with `extractionStatus`, so people see the file exists and why it has no text; reprocessing
the same event gives the same shard. Only what is not the file's fault raises: `OSError`
when the file cannot be read at all (the caller dead-letters the event: there is nothing
to describe) and `OcrUnavailableError` when the OCR engine or service is down (transient:
retry the event with backoff).
"""

from __future__ import annotations

from documents.extract import (
    DocumentKind,
    Extraction,
    ExtractionLimits,
    ExtractionStatus,
    extract,
)
from documents.ocr import OcrEngine, OcrError, OcrResult, OcrUnavailableError, TesseractOcr
from documents.runner import ExtractionRunner, OcrFactory, run_extraction

__all__ = [
    "DocumentKind",
    "Extraction",
    "ExtractionLimits",
    "ExtractionRunner",
    "ExtractionStatus",
    "OcrEngine",
    "OcrError",
    "OcrFactory",
    "OcrResult",
    "OcrUnavailableError",
    "TesseractOcr",
    "extract",
    "run_extraction",
]
