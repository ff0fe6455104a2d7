"""Text-like files: plain text, CSV/TSV as tab-separated rows, HTML to text, Markdown as is."""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path
from typing import Final

from selectolax.lexbor import LexborHTMLParser

from core.html import html_to_text
from documents.formats.draft import Draft

__all__ = ["decode", "read_plain"]

#: UTF-8 needs at most 4 bytes a character: reading this many bytes per character kept
#: is enough to fill the budget without reading a huge file whole
_BYTES_PER_CHAR: Final = 4
_BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SPACES: Final = re.compile(r"\s+")
_MARKDOWN_TITLE: Final = re.compile(r"^#\s+(.+)$", re.MULTILINE)
_SNIFF_CHARS: Final = 8192


def read_plain(path: Path, draft: Draft, *, tab_separated: bool = False) -> None:
    """Write the text of a text, CSV, HTML or Markdown file."""
    budget = draft.limits.max_chars * _BYTES_PER_CHAR
    with path.open("rb") as file:
        data = file.read(budget + 1)
    if len(data) > budget:
        data = data[:budget]
        draft.leave_out(f"first {budget:,} bytes read")
    text = decode(data)
    if draft.kind == "csv":
        _write_csv(text, draft, tab_separated=tab_separated)
    elif draft.kind == "html":
        _write_html(text, draft)
    else:
        if draft.kind == "markdown":
            title = _MARKDOWN_TITLE.search(text)
            if title:
                draft.metadata["title"] = title.group(1).strip()[:500]
        draft.sink.write(text)


def decode(data: bytes) -> str:
    """Text of `data`: by its byte-order mark, else UTF-8, else Windows-1252."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return _normalise(data.decode(codec, errors="replace"))
    try:
        return _normalise(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        if e.start >= len(data) - 3:  # a character cut by the byte budget
            return _normalise(data[: e.start].decode("utf-8", errors="replace"))
    return _normalise(data.decode("cp1252", errors="replace"))


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _write_csv(text: str, draft: Draft, *, tab_separated: bool) -> None:
    delimiter = "\t" if tab_separated else _delimiter_of(text[:_SNIFF_CHARS])
    limit = draft.limits.max_sheet_rows
    rows = 0
    columns = 0
    for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
        if rows >= limit:
            draft.leave_out(f"first {limit:,} rows read")
            break
        rows += 1
        cells = [_SPACES.sub(" ", cell).strip() for cell in row]
        while cells and not cells[-1]:
            cells.pop()
        columns = max(columns, len(cells))
        if cells:
            draft.sink.line("\t".join(cells))
            if draft.sink.full:
                break
    draft.metadata["rowCount"] = rows
    draft.metadata["columnCount"] = columns


def _delimiter_of(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _write_html(html: str, draft: Draft) -> None:
    tree = LexborHTMLParser(html)
    title = tree.css_first("title")
    if title is not None and title.text(strip=True):
        draft.metadata["title"] = title.text(strip=True)[:500]
    root = tree.css_first("html")
    if root is not None and root.attributes.get("lang"):
        draft.metadata["language"] = str(root.attributes["lang"])
    author = tree.css_first('meta[name="author"]')
    if author is not None and author.attributes.get("content"):
        draft.metadata["author"] = str(author.attributes["content"])[:500]
    text, _ = html_to_text(html, max_chars=len(html))
    draft.sink.write(text)
