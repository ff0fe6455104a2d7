"""What a format reader writes into: the text within its budget, metadata, OCR bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from documents.ocr import OcrError

if TYPE_CHECKING:
    from documents.limits import DocumentKind, ExtractionLimits, ExtractionStatus
    from documents.ocr import OcrEngine

__all__ = ["Draft", "Refusal", "TextSink"]


class Refusal(Exception):
    """The file cannot be read for a reason of its own; `extract` makes it a status.

    A signal between the readers and `extract`, never raised out of `extract`.
    """

    def __init__(self, status: ExtractionStatus, reason: str, kind: DocumentKind | None = None):
        super().__init__(reason)
        self.status: ExtractionStatus = status
        self.reason = reason
        self.kind: DocumentKind | None = kind


class TextSink:
    """Collects text up to `max_chars`; past it, drops the rest and remembers it did."""

    def __init__(self, max_chars: int) -> None:
        self._max_chars = max_chars
        self._parts: list[str] = []
        self._size = 0
        self.truncated = False
        #: whether anything besides markers (`--- page 2 ---`) was written
        self.has_content = False

    @property
    def full(self) -> bool:
        """Whether more text would be dropped."""
        return self.truncated or self._size >= self._max_chars

    def write(self, text: str) -> None:
        """Append `text`, or as much of it as the budget allows."""
        if not text or self.truncated:
            return
        self.has_content = self.has_content or not text.isspace()
        self._append(text)

    def marker(self, text: str) -> None:
        """Append a line of structure (a page or sheet marker), which is not content."""
        if not self.truncated:
            self._append(f"--- {text} ---\n")

    def _append(self, text: str) -> None:
        room = self._max_chars - self._size
        if len(text) > room:
            if text[room:].strip():  # only whitespace past the budget loses nothing
                self.truncated = True
            text = text[:room]
        self._parts.append(text)
        self._size += len(text)

    def line(self, text: str = "") -> None:
        """Append `text` and a newline."""
        self.write(text + "\n")

    def text(self) -> str:
        """Everything written, trimmed; nothing when only markers were written."""
        return "".join(self._parts).strip() if self.has_content else ""


@dataclass(slots=True)
class Draft:
    """The text and metadata of one file as its reader finds them."""

    kind: DocumentKind
    limits: ExtractionLimits
    ocr: OcrEngine | None
    sink: TextSink = field(init=False)
    metadata: dict[str, Any] = field(default_factory=dict)
    #: why the text is partial, in words
    notes: list[str] = field(default_factory=list)
    #: something was left out besides the character budget (pages, rows, OCR pages)
    partial: bool = False
    ocr_pages: int = 0
    ocr_failures: int = 0
    ocr_skipped: int = 0
    ocr_errors: list[str] = field(default_factory=list)
    ocr_confidences: list[float] = field(default_factory=list)
    #: some page or image had its text only as pixels
    ocr_needed: bool = False

    def __post_init__(self) -> None:
        self.sink = TextSink(self.limits.max_chars)

    @property
    def truncated(self) -> bool:
        """Whether any text was left out."""
        return self.partial or self.sink.truncated

    def leave_out(self, note: str) -> None:
        """Record that part of the file was not read, and why."""
        self.partial = True
        self.notes.append(note)

    def read_pixels(self, image: bytes) -> str | None:
        """OCR text of one page or image; None when OCR is off, over budget or failed."""
        self.ocr_needed = True
        if self.ocr is None:
            return None
        if self.ocr_pages + self.ocr_failures >= self.limits.ocr_max_pages:
            self.ocr_skipped += 1
            return None
        try:
            result = self.ocr.read_image(image)
        except OcrError as e:
            self.ocr_failures += 1
            self.ocr_errors.append(str(e))
            return None
        self.ocr_pages += 1
        if result.confidence is not None:
            self.ocr_confidences.append(result.confidence)
        return result.text

    def close_ocr_budget(self) -> None:
        """Note the pages that needed OCR but were past `ocr_max_pages`."""
        if self.ocr_skipped:
            self.metadata["ocrSkippedPages"] = self.ocr_skipped
            self.leave_out(
                f"OCR limited to {self.limits.ocr_max_pages} page(s); "
                f"{self.ocr_skipped} more scanned page(s) not read"
            )
