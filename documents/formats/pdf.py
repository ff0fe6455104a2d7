"""PDF text page by page with pymupdf; pages that are only a scan go to OCR."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import pymupdf as _pymupdf

from documents.formats.draft import Draft, Refusal

__all__ = ["pdf_date", "read_pdf"]

#: pymupdf's annotations are partial (untyped calls everywhere): it is used as `Any` here
pymupdf: Any = _pymupdf

# MuPDF prints its complaints about damaged files to stderr; the status says it instead.
pymupdf.TOOLS.mupdf_display_errors(False)
pymupdf.TOOLS.mupdf_display_warnings(False)

_PDF_DATE: Final = re.compile(
    r"^D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:(Z)|([+-])(\d{2})'?(\d{2})?'?)?"
)
_META: Final = {"title": "title", "author": "author", "subject": "subject", "keywords": "keywords"}


def read_pdf(path: Path, draft: Draft) -> None:
    """Write the text of each page after a `--- page N ---` line.

    Raises:
        Refusal: "encrypted" (a user password is needed) or "corrupt".
    """
    try:
        document = pymupdf.open(path, filetype="pdf")
    except (pymupdf.FileDataError, pymupdf.EmptyFileError, RuntimeError, ValueError) as e:
        raise Refusal("corrupt", f"not a readable PDF: {e}") from e
    with document:
        if document.needs_pass and not document.authenticate(""):
            raise Refusal("encrypted", "the PDF needs a password to open")
        _metadata(document, draft)
        count = int(document.page_count)
        if count == 0:
            raise Refusal("corrupt", "the PDF has no pages")
        limits = draft.limits
        if count > limits.max_pages:
            draft.leave_out(f"first {limits.max_pages:,} of {count:,} pages read")
        for number in range(min(count, limits.max_pages)):
            if draft.sink.full:
                break
            page = document.load_page(number)
            text = str(page.get_text("text")).strip()
            if _looks_scanned(page, text, draft):
                text = draft.read_pixels(_render(page, draft)) or text
            draft.sink.marker(f"page {number + 1}")
            draft.sink.line(text.strip())
            draft.sink.line()
        draft.close_ocr_budget()


def _metadata(document: Any, draft: Draft) -> None:
    meta: dict[str, Any] = document.metadata or {}
    draft.metadata["pageCount"] = int(document.page_count)
    for source, key in _META.items():
        value = str(meta.get(source) or "").strip()
        if value:
            draft.metadata[key] = value[:500]
    for source, key in (("creationDate", "created"), ("modDate", "modified")):
        date = pdf_date(str(meta.get(source) or ""))
        if date:
            draft.metadata[key] = date
    language = document.language
    if language:
        draft.metadata["language"] = str(language)
    if meta.get("producer"):
        draft.metadata["producer"] = str(meta["producer"])[:200]


def pdf_date(value: str) -> str | None:
    """A PDF date (`D:20240102030405+01'00'`) as ISO 8601, or None when it is not one."""
    match = _PDF_DATE.match(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, zulu, sign, tz_hour, tz_minute = match.groups()
    iso = f"{year}-{month or '01'}-{day or '01'}T{hour or '00'}:{minute or '00'}:{second or '00'}"
    if zulu:
        return iso + "Z"
    if sign:
        return f"{iso}{sign}{tz_hour}:{tz_minute or '00'}"
    return iso


def _looks_scanned(page: Any, text: str, draft: Draft) -> bool:
    """Almost no text layer and images over a sizeable share of the page."""
    if len(text) >= draft.limits.scanned_max_chars:
        return False
    area = abs(page.rect)
    if area <= 0:
        return False
    covered = 0.0
    for image in page.get_image_info():
        covered += abs(pymupdf.Rect(image["bbox"]) & page.rect)
    return bool(covered / area > draft.limits.scanned_min_image_share)


def _render(page: Any, draft: Draft) -> bytes:
    """The page as a greyscale PNG at `ocr_dpi`, less when the page is huge."""
    limits = draft.limits
    longest_points = max(page.rect.width, page.rect.height, 1.0)
    dpi = min(limits.ocr_dpi, int(limits.ocr_max_side * 72 / longest_points))
    pixmap = page.get_pixmap(dpi=max(dpi, 36), colorspace=pymupdf.csGRAY, alpha=False)
    return bytes(pixmap.tobytes("png"))
