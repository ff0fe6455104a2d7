"""The words of extraction shared by `extract` and the format readers: kinds, statuses, limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["DocumentKind", "ExtractionLimits", "ExtractionStatus"]

ExtractionStatus = Literal[
    "ok", "empty", "encrypted", "corrupt", "too_large", "unsupported", "timeout", "ocr_failed"
]
DocumentKind = Literal[
    "pdf",
    "docx",
    "xlsx",
    "xls",
    "ods",
    "image",
    "text",
    "csv",
    "html",
    "markdown",
    # recognised but not read: their status is "unsupported" (or "encrypted")
    "doc",
    "pptx",
    "office",
    "archive",
    "rtf",
    "binary",
]

_MIB: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ExtractionLimits:
    """How far extraction goes before it stops (truncated) or refuses (too_large)."""

    #: characters of text kept; the rest is cut and `truncated` is set
    max_chars: int = 2_000_000
    #: PDF pages read; later pages are left out (`truncated`)
    max_pages: int = 2_000
    #: rows read per sheet (XLSX/XLS/ODS) or per CSV file
    max_sheet_rows: int = 1_000_000
    #: bytes a DOCX/XLSX/ODS may expand to when unzipped; past it the file is a bomb
    max_unzipped_bytes: int = 200 * _MIB
    #: members a DOCX/XLSX/ODS zip may hold
    max_zip_members: int = 10_000
    #: files larger than this are refused before any parsing
    max_file_bytes: int = 512 * _MIB
    #: pixels of one image (Pillow's decompression-bomb guard)
    max_image_pixels: int = 100_000_000
    #: pages or images OCRed per file; later scanned pages are left out (`truncated`)
    ocr_max_pages: int = 50
    #: resolution scanned PDF pages are rendered at for OCR
    ocr_dpi: int = 300
    #: longest side, in pixels, of an image handed to the OCR engine
    ocr_max_side: int = 6_000
    #: a PDF page with fewer characters than this in its text layer ...
    scanned_max_chars: int = 20
    #: ... and images over more than this share of its area is OCRed
    scanned_min_image_share: float = 0.05
    #: address space of the child process that runs `extract` (None: no limit)
    max_memory_bytes: int | None = 2048 * _MIB
