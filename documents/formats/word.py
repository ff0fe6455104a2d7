"""DOCX text with python-docx: headings as `#` lines, tables as tab-separated rows."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import docx
from docx.document import Document
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml import etree

from documents.formats.draft import Draft
from documents.formats.ooxml import app_pages, check_container, document_properties

__all__ = ["read_docx"]

_HEADING: Final = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)
_W: Final = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_SPACES: Final = re.compile(r"\s+")


def read_docx(path: Path, draft: Draft) -> None:
    """Write the body in order, then text boxes, footnotes, headers and footers.

    Raises:
        Refusal: "too_large" for a decompression bomb, "encrypted", "corrupt".
    """
    check_container(path, draft)
    draft.metadata.update(document_properties(path))
    pages = app_pages(path)
    if pages is not None:
        draft.metadata["pageCount"] = pages
    document = docx.Document(str(path))
    sink = draft.sink
    for block in document.iter_inner_content():
        if sink.full:
            return
        if isinstance(block, Paragraph):
            line = _paragraph_line(block)
            if line:
                sink.line(line)
        elif isinstance(block, Table):
            _write_table(block, draft)
    _write_section("text boxes", _text_box_lines(document), draft)
    _write_section("footnotes", _footnote_lines(document), draft)
    _write_section("headers and footers", _header_footer_lines(document), draft)


def _paragraph_line(paragraph: Paragraph) -> str:
    text = paragraph.text.strip()
    if not text:
        return ""
    style = paragraph.style.name if paragraph.style is not None else ""
    heading = _HEADING.match(style or "")
    if heading:
        return "#" * int(heading.group(1)) + " " + text
    if style == "Title":
        return "# " + text
    if (style or "").startswith("List"):
        return "- " + text
    return text


def _write_table(table: Table, draft: Draft) -> None:
    draft.sink.line()
    for row in table.rows:
        if draft.sink.full:
            return
        cells: list[str] = []
        previous: Any = None
        for cell in row.cells:
            if cell._tc is previous:  # a merged cell repeats across the columns it spans
                continue
            previous = cell._tc
            cells.append(_SPACES.sub(" ", cell.text).strip())
        if any(cells):
            draft.sink.line("\t".join(cells))
    draft.sink.line()


def _write_section(title: str, lines: Iterable[str], draft: Draft) -> None:
    unique = list(dict.fromkeys(line for line in lines if line))
    if unique and not draft.sink.full:
        draft.sink.line()
        draft.sink.marker(title)
        for line in unique:
            draft.sink.line(line)


def _text_of(paragraph: Any) -> str:
    return "".join(t.text or "" for t in paragraph.iter(f"{{{_W}}}t")).strip()


def _text_box_lines(document: Document) -> Iterator[str]:
    """Text boxes live inside runs, out of reach of `iter_inner_content`."""
    body = document.element.body
    for box in body.iter(f"{{{_W}}}txbxContent"):
        for paragraph in box.iter(f"{{{_W}}}p"):
            yield _text_of(paragraph)


def _footnote_lines(document: Document) -> Iterator[str]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    for part in document.part.package.iter_parts():
        if str(part.partname) not in ("/word/footnotes.xml", "/word/endnotes.xml"):
            continue
        root = etree.fromstring(part.blob, parser)
        for note in root:
            if note.get(f"{{{_W}}}type") in ("separator", "continuationSeparator"):
                continue
            for paragraph in note.iter(f"{{{_W}}}p"):
                yield _text_of(paragraph)


def _header_footer_lines(document: Document) -> Iterator[str]:
    for section in document.sections:
        for part in (
            section.header,
            section.first_page_header,
            section.even_page_header,
            section.footer,
            section.first_page_footer,
            section.even_page_footer,
        ):
            if part.is_linked_to_previous:
                continue
            for paragraph in part.paragraphs:
                yield paragraph.text.strip()
            for table in part.tables:
                for row in table.rows:
                    yield "\t".join(_SPACES.sub(" ", c.text).strip() for c in row.cells)
