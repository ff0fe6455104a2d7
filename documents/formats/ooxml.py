"""The zip container of DOCX, XLSX and ODS: a decompression-bomb guard and document properties."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Final

from lxml import etree

from documents.formats.draft import Draft, Refusal

__all__ = ["app_pages", "check_container", "document_properties"]

_CHUNK: Final = 1 << 20
#: no entities, no network, no huge trees: property parts are tiny and untrusted
_PARSER: Final = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True
)
#: local element names of OOXML `docProps/core.xml` and ODF `meta.xml`, to metadata keys;
#: ODF's `initial-creator` is the author, its `creator` the last editor
_PROPERTIES: Final = {
    "title": "title",
    "subject": "subject",
    "keywords": "keywords",
    "keyword": "keywords",
    "creator": "author",
    "initial-creator": "author",
    "lastModifiedBy": "lastModifiedBy",
    "created": "created",
    "creation-date": "created",
    "modified": "modified",
    "date": "modified",
    "language": "language",
}
_PROPERTY_PARTS: Final = ("docProps/core.xml", "meta.xml")


def check_container(path: Path, draft: Draft) -> int:
    """Refuse a zip that expands past the limit, holds too many members or is encrypted.

    Every member is decompressed once, in 1 MiB chunks, and counted: the sizes a zip
    declares in its headers can lie, the bytes that come out cannot.

    Returns:
        The bytes the members expand to.

    Raises:
        Refusal: "too_large", "encrypted" or "corrupt".
    """
    limits = draft.limits
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > limits.max_zip_members:
                reason = f"the zip holds {len(members):,} members, over {limits.max_zip_members:,}"
                raise Refusal("too_large", reason)
            if any(member.flag_bits & 0x1 for member in members):
                raise Refusal("encrypted", "the zip's members are encrypted")
            declared = sum(member.file_size for member in members)
            if declared > limits.max_unzipped_bytes:
                raise Refusal("too_large", _bomb_reason(declared, limits.max_unzipped_bytes))
            expanded = 0
            for member in members:
                with archive.open(member) as stream:
                    while chunk := stream.read(_CHUNK):
                        expanded += len(chunk)
                        if expanded > limits.max_unzipped_bytes:
                            reason = _bomb_reason(expanded, limits.max_unzipped_bytes)
                            raise Refusal("too_large", reason + " (its headers understate it)")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as e:
        raise Refusal("corrupt", f"the zip container is damaged: {e}") from e
    return expanded


def _bomb_reason(size: int, limit: int) -> str:
    return f"the zip expands to more than {size:,} bytes, over the limit of {limit:,}"


def document_properties(path: Path) -> dict[str, Any]:
    """Title, author, dates, language ... from the container's property part, if any."""
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        for part in _PROPERTY_PARTS:
            if part in names:
                return _properties_of(archive.read(part))
    return {}


def app_pages(path: Path) -> int | None:
    """The page count Word stored in `docProps/app.xml` when it last saved the file."""
    with zipfile.ZipFile(path) as archive:
        if "docProps/app.xml" not in archive.namelist():
            return None
        root = etree.fromstring(archive.read("docProps/app.xml"), _PARSER)
    for element in root.iter():
        if isinstance(element.tag, str) and etree.QName(element).localname == "Pages":
            text = (element.text or "").strip()
            return int(text) if text.isdigit() else None
    return None


def _properties_of(xml: bytes) -> dict[str, Any]:
    try:
        root = etree.fromstring(xml, _PARSER)
    except etree.XMLSyntaxError:
        return {}
    found: dict[str, Any] = {}
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        name = etree.QName(element).localname
        key = _PROPERTIES.get(name)
        text = (element.text or "").strip()
        if key and text and (key not in found or name.startswith("initial")):
            found[key] = text[:500]
    return found
