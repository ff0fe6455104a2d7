"""The real kind of a file from its first bytes; content type and file name only break ties."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Final

from documents.formats.draft import Refusal

if TYPE_CHECKING:
    from documents.limits import DocumentKind

__all__ = ["Sniffed", "hinted_kind", "sniff"]

_HEAD_BYTES: Final = 8192
_OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: an encrypted DOCX/XLSX/PPTX is an OLE2 file holding this stream (names are UTF-16LE)
_ENCRYPTED_PACKAGE: Final = "EncryptedPackage".encode("utf-16-le")
_WORKBOOK_STREAM: Final = "Workbook".encode("utf-16-le")
_WORD_STREAM: Final = "WordDocument".encode("utf-16-le")

_BY_CONTENT_TYPE: Final[dict[str, DocumentKind]] = {
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.ms-excel.sheet.macroenabled.12": "xlsx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "text/plain": "text",
    "text/csv": "csv",
    "text/tab-separated-values": "csv",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "application/rtf": "rtf",
    "text/rtf": "rtf",
}
_BY_EXTENSION: Final[dict[str, DocumentKind]] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".xls": "xls",
    ".ods": "ods",
    ".doc": "doc",
    ".pptx": "pptx",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".tif": "image",
    ".tiff": "image",
    ".gif": "image",
    ".bmp": "image",
    ".webp": "image",
    ".txt": "text",
    ".text": "text",
    ".log": "text",
    ".json": "text",
    ".xml": "text",
    ".eml": "text",
    ".csv": "csv",
    ".tsv": "csv",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rtf": "rtf",
    ".zip": "archive",
}
_MIME_OF: Final[dict[str, str]] = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xls": "application/vnd.ms-excel",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "doc": "application/msword",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "text": "text/plain",
    "csv": "text/csv",
    "html": "text/html",
    "markdown": "text/markdown",
    "rtf": "application/rtf",
    "archive": "application/zip",
    "office": "application/x-ole-storage",
    "binary": "application/octet-stream",
}
#: kinds with a binary signature: a file hinted as one of these that lacks it is corrupt
_BINARY_KINDS: Final = frozenset({"pdf", "docx", "xlsx", "xls", "ods", "doc", "pptx", "image"})


@dataclass(frozen=True, slots=True)
class Sniffed:
    """What a file is."""

    kind: DocumentKind
    mime: str
    #: a CSV whose cells are separated by tabs (`.tsv`, `text/tab-separated-values`)
    tab_separated: bool = False


def hinted_kind(content_type: str | None, file_name: str | None) -> DocumentKind | None:
    """The kind the content type or, failing that, the file name's extension suggests."""
    if content_type:
        base = content_type.split(";", 1)[0].strip().lower()
        if base in _BY_CONTENT_TYPE:
            return _BY_CONTENT_TYPE[base]
        if base.startswith("image/"):
            return "image"
    if file_name:
        return _BY_EXTENSION.get(PurePosixPath(file_name.lower()).suffix)
    return None


def sniff(path: Path, *, content_type: str | None, file_name: str | None) -> Sniffed:
    """Sniff the kind of the file at `path`.

    Raises:
        Refusal: "encrypted" for an encrypted Office file, "corrupt" for bytes that
            contradict a binary kind the hints claim.
    """
    with path.open("rb") as file:
        head = file.read(_HEAD_BYTES)
    hint = hinted_kind(content_type, file_name)
    if b"%PDF-" in head[:1024]:
        return _sniffed("pdf")
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _sniff_zip(path, hint)
    if head.startswith(_OLE_MAGIC):
        return _sniff_ole(path, hint)
    image = _image_mime(head)
    if image is not None:
        return Sniffed("image", image)
    if _looks_textual(head):
        return _sniff_text(head, hint, content_type, file_name)
    if hint in _BINARY_KINDS:
        raise Refusal("corrupt", f"the file is declared as {hint} but its bytes are not", hint)
    return _sniffed("binary")


def _sniffed(kind: DocumentKind) -> Sniffed:
    return Sniffed(kind, _MIME_OF[kind])


def _sniff_zip(path: Path, hint: DocumentKind | None) -> Sniffed:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            mimetype = archive.read("mimetype")[:100] if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as e:
        kind = hint if hint in ("docx", "xlsx", "ods", "pptx") else "archive"
        raise Refusal("corrupt", f"the zip container is damaged: {e}", kind) from e
    if "word/document.xml" in names:
        return _sniffed("docx")
    if "xl/workbook.xml" in names or "xl/workbook.bin" in names:
        return _sniffed("xlsx")
    if "ppt/presentation.xml" in names:
        return _sniffed("pptx")
    if mimetype.startswith(b"application/vnd.oasis.opendocument.spreadsheet"):
        return _sniffed("ods")
    if hint in ("docx", "xlsx", "ods"):
        raise Refusal("corrupt", f"the {hint} lacks its main part", hint)
    return _sniffed("archive")


def _sniff_ole(path: Path, hint: DocumentKind | None) -> Sniffed:
    """Legacy Office files and encrypted OOXML share the OLE2 container; its stream names tell."""
    found = _find_any(path, (_ENCRYPTED_PACKAGE, _WORKBOOK_STREAM, _WORD_STREAM))
    if _ENCRYPTED_PACKAGE in found:
        kind = hint if hint in ("docx", "xlsx", "pptx") else "office"
        raise Refusal("encrypted", "the Office file is encrypted with a password", kind)
    if _WORKBOOK_STREAM in found or hint == "xls":
        return _sniffed("xls")
    if _WORD_STREAM in found:
        return _sniffed("doc")
    return _sniffed("office")


def _find_any(path: Path, needles: tuple[bytes, ...]) -> set[bytes]:
    """Which of `needles` occur anywhere in the file, read in 1 MiB windows that overlap."""
    found: set[bytes] = set()
    overlap = max(len(n) for n in needles) - 1
    tail = b""
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            window = tail + chunk
            found.update(n for n in needles if n in window)
            tail = window[-overlap:]
    return found


def _image_mime(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"BM") and head[6:10] == b"\x00\x00\x00\x00" and len(head) > 26:
        return "image/bmp"
    return None


def _looks_textual(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a byte-order mark
        return True
    if b"\x00" in head:
        return False
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return controls <= len(head) // 100


def _sniff_text(
    head: bytes, hint: DocumentKind | None, content_type: str | None, file_name: str | None
) -> Sniffed:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith(b"{\\rtf"):
        return _sniffed("rtf")
    if hint == "html" or start.startswith((b"<!doctype html", b"<html")):
        return _sniffed("html")
    if hint == "csv":
        tab = (content_type or "").lower().startswith("text/tab-separated-values") or (
            (file_name or "").lower().endswith(".tsv")
        )
        return Sniffed("csv", "text/tab-separated-values" if tab else "text/csv", tab)
    if hint == "markdown":
        return _sniffed("markdown")
    return _sniffed("text")  # also when declared as a binary kind: its text is worth more
