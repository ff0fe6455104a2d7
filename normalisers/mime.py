"""MIME as the Gmail API gives it (`users.messages.get`, format=full): headers, bodies, files.

The API has already undone each part's Content-Transfer-Encoding; `body.data` holds the
part's bytes in its own charset, base64url-encoded (padding optional). Decoding policy:
bytes that are not valid in the declared charset are replaced with U+FFFD rather than
failing the whole email (one stray byte in a declared-UTF-8 part is common in the wild);
an unknown or missing charset is read as UTF-8, falling back to windows-1252 as browsers
do. Malformed base64 is a `MappingError`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from typing import Any, Final

from core.exceptions import MappingError

__all__ = [
    "MAX_PART_BYTES",
    "MimeBody",
    "MimeFile",
    "decode_base64url",
    "decode_text",
    "decode_words",
    "header_value",
    "read_message",
]

#: Body bytes decoded from one part at most; more is cut (and flagged): the HTML or text
#: would be cut later anyway, so a 10 MB body costs no more than this.
MAX_PART_BYTES: Final = 8_000_000
#: Deeper nesting than any mail client writes; a payload nested deeper is refused.
MAX_DEPTH: Final = 32

_BASE64: Final = re.compile(r"[A-Za-z0-9+/_-]*")
_WHITESPACE: Final = re.compile(r"\s+")
_TO_STANDARD: Final = str.maketrans("-_", "+/")
_CHARSET: Final = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.IGNORECASE)
#: Labels whose bytes are read as a superset: US-ASCII mail often carries 8-bit UTF-8, and
#: Latin-1 labels mean windows-1252 in practice (the WHATWG Encoding Standard does the same).
_CHARSET_ALIASES: Final = {
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
}


@dataclass(frozen=True, slots=True)
class MimeFile:
    """A part that is a file: named, or marked as an attachment, or stored apart."""

    part_id: str | None
    file_name: str | None
    content_type: str | None
    size: int | None
    attachment_id: str | None
    inline: bool
    blob: Any


@dataclass(slots=True)
class MimeBody:
    """What a message says: its plain text and HTML (each may be empty), and its files."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    files: list[MimeFile] = field(default_factory=list)
    truncated: bool = False


def header_value(headers: Any, name: str, *, decode: bool = True) -> str | None:
    """The first header called `name` (any case), RFC 2047 encoded words decoded.

    Address headers are read with `decode=False` and their names decoded one by one
    (`decode_words`): a decoded name may hold the comma that separates addresses.
    """
    if not isinstance(headers, list):
        return None
    wanted = name.casefold()
    for header in headers:
        if isinstance(header, Mapping) and str(header.get("name", "")).casefold() == wanted:
            value = header.get("value")
            if value is None:
                return None
            return decode_words(str(value)) if decode else str(value)
    return None


def decode_base64url(data: Any, *, where: str, limit: int = MAX_PART_BYTES) -> tuple[bytes, bool]:
    """Bytes of base64url (or standard base64) text, padding optional; and whether cut.

    Raises `MappingError` naming `where` for anything that is not base64.
    """
    if not isinstance(data, str):
        message = f"{where}: body data is not a string"
        raise MappingError(message)
    text = _WHITESPACE.sub("", data).rstrip("=")
    max_chars = (limit // 3) * 4
    truncated = len(text) > max_chars
    if truncated:
        text = text[:max_chars]
    if not _BASE64.fullmatch(text) or len(text) % 4 == 1:
        message = f"{where}: body data is not valid base64url"
        raise MappingError(message)
    try:
        raw = base64.b64decode(text.translate(_TO_STANDARD) + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        message = f"{where}: body data is not valid base64url: {e}"
        raise MappingError(message) from e
    return raw, truncated


def decode_text(raw: bytes, charset: str | None) -> str:
    """Text of a part's bytes in its declared charset, bad bytes replaced (see module doc)."""
    label = (charset or "").strip().strip("\"'").lower()
    label = _CHARSET_ALIASES.get(label, label)
    if label:
        try:
            # Labels that name no text encoding ("base64", "zlib") or that fail even with
            # errors="replace" ("idna", "punycode") fall through to the default.
            return raw.decode(label, errors="replace")
        except (LookupError, UnicodeError, ValueError):
            pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def read_message(payload: Any) -> MimeBody:
    """The texts and files of a Gmail `payload` (the message's top MessagePart)."""
    if not isinstance(payload, Mapping):
        message = "gmail message has no payload (expected format=full)"
        raise MappingError(message)
    body = MimeBody()
    _read_part(payload, body, "payload", 0)
    return body


def _read_part(part: Mapping[str, Any], body: MimeBody, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        message = f"{where}: MIME parts nested deeper than {MAX_DEPTH}"
        raise MappingError(message)
    mime_type = str(part.get("mimeType") or "").lower()
    children = part.get("parts")
    if children is not None and not isinstance(children, list):
        message = f"{where}.parts: not a list"
        raise MappingError(message)
    if _is_file(part):
        body.files.append(_file(part, where))
        return
    if mime_type.startswith("multipart/") or children:
        parts = [
            (f"{where}.parts[{i}]", p) for i, p in enumerate(children or []) if isinstance(p, dict)
        ]
        if mime_type == "multipart/alternative":
            _read_alternative(parts, body, depth)
        else:
            for child_where, child in parts:
                _read_part(child, body, child_where, depth + 1)
        return
    if mime_type in ("text/plain", "text/html"):
        text = _part_text(part, body, where)
        if text is not None:
            (body.plain if mime_type == "text/plain" else body.html).append(text)
    # Other unnamed leaves (calendar invites, delivery reports) carry no readable body.


def _read_alternative(parts: list[tuple[str, dict[str, Any]]], body: MimeBody, depth: int) -> None:
    """Read the plain-text alternative when there is one, else the last (richest) one."""
    renderings = []
    for where, part in parts:
        rendering = MimeBody()
        _read_part(part, rendering, where, depth + 1)
        renderings.append(rendering)
    chosen = next((r for r in renderings if any(t.strip() for t in r.plain)), None)
    if chosen is None:
        chosen = next((r for r in reversed(renderings) if r.plain or r.html), None)
    if chosen is not None:
        body.plain.extend(chosen.plain)
        body.html.extend(chosen.html)
        body.truncated = body.truncated or chosen.truncated
    for rendering in renderings:  # files attached inside any alternative stay listed
        body.files.extend(rendering.files)


def _is_file(part: Mapping[str, Any]) -> bool:
    disposition = (header_value(part.get("headers"), "Content-Disposition") or "").lower()
    if part.get("filename") or disposition.startswith("attachment"):
        return True
    # A text part fetched apart is a large body, not a file; any other part fetched apart is.
    mime_type = str(part.get("mimeType") or "").lower()
    return bool(_part_body(part).get("attachmentId")) and not mime_type.startswith("text/")


def _file(part: Mapping[str, Any], where: str) -> MimeFile:
    part_body = _part_body(part)
    headers = part.get("headers")
    disposition = (header_value(headers, "Content-Disposition") or "").lower()
    size = part_body.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        message = f"{where}.body.size: not a size in bytes: {size!r}"
        raise MappingError(message)
    part_id = part.get("partId")
    attachment_id = part_body.get("attachmentId")
    return MimeFile(
        part_id=str(part_id) if part_id not in (None, "") else None,
        file_name=str(part.get("filename") or "") or None,
        content_type=str(part.get("mimeType") or "") or None,
        size=size,
        attachment_id=str(attachment_id) if attachment_id else None,
        inline=disposition.startswith("inline"),
        blob=part.get("blob"),
    )


def _part_text(part: Mapping[str, Any], body: MimeBody, where: str) -> str | None:
    part_body = _part_body(part)
    data = part_body.get("data")
    if data in (None, ""):
        if part_body.get("attachmentId"):
            body.truncated = True  # the body was too large to come inline; we have none of it
        return None
    raw, truncated = decode_base64url(data, where=f"{where}.body.data")
    body.truncated = body.truncated or truncated
    content_type = header_value(part.get("headers"), "Content-Type") or ""
    charset = _CHARSET.search(content_type)
    return decode_text(raw, charset.group(1) if charset else None)


def _part_body(part: Mapping[str, Any]) -> Mapping[str, Any]:
    part_body = part.get("body")
    return part_body if isinstance(part_body, Mapping) else {}


def decode_words(value: str) -> str:
    """A header value with its RFC 2047 encoded words (`=?UTF-8?Q?...?=`) decoded."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return value
