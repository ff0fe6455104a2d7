"""Document events: what to fetch and how the extraction becomes a Document shard.

The payload is the generic document shape (CONTRACT §1), whatever the provider: the
email agent sends attachments in it too (with `parentEmailShardId`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from core.exceptions import MappingError
from normalisers.common import build_draft, utc_iso
from normalisers.people import person
from shards.model import ShardDraft
from streams.models import BlobRef, RawEvent

__all__ = ["DocumentRequest", "ExtractionLike", "document_draft", "document_request"]


class ExtractionLike(Protocol):
    """What the extraction gives back (`documents.extract.Extraction`)."""

    @property
    def text(self) -> str: ...

    @property
    def truncated(self) -> bool: ...

    @property
    def status(self) -> str: ...

    @property
    def reason(self) -> str | None: ...

    @property
    def metadata(self) -> dict[str, Any]: ...

    @property
    def ocr_pages(self) -> int: ...

    @property
    def kind(self) -> str: ...


@dataclass(frozen=True, slots=True)
class DocumentRequest:
    """A document to fetch and extract."""

    blob: BlobRef
    file_name: str | None
    content_type: str | None
    declared_size: int | None


def document_request(event: RawEvent) -> DocumentRequest:
    """Where the bytes are; `MappingError` when the event names none."""
    if event.blob is None:
        message = "a document event needs the envelope's blob"
        raise MappingError(message)
    payload = event.payload
    file_name = payload.get("fileName")
    content_type = payload.get("contentType") or event.blob.content_type
    return DocumentRequest(
        blob=event.blob,
        file_name=file_name if isinstance(file_name, str) else None,
        content_type=content_type if isinstance(content_type, str) else None,
        declared_size=event.blob.size,
    )


def document_draft(event: RawEvent, extraction: ExtractionLike) -> ShardDraft:
    """The Document shard of an event and its extraction."""
    payload = event.payload
    owner = payload.get("owner")
    structured: dict[str, Any] = {
        "documentId": str(payload.get("documentId") or event.external_id),
        "fileName": payload.get("fileName"),
        "contentType": payload.get("contentType")
        or (event.blob.content_type if event.blob else None),
        "size": payload.get("size") if isinstance(payload.get("size"), int) else None,
        "source": payload.get("source") or event.provider,
        "owner": person(owner.get("email"), owner.get("name")) if isinstance(owner, dict) else None,
        "createdAt": utc_iso(payload.get("createdAt"), field="createdAt"),
        "modifiedAt": utc_iso(payload.get("modifiedAt"), field="modifiedAt"),
        "extractionStatus": extraction.status,
        "extractionReason": extraction.reason,
        "kind": extraction.kind,
        "metadata": extraction.metadata,
        "ocrPages": extraction.ocr_pages,
        "truncated": extraction.truncated,
        "blob": event.blob.to_wire() if event.blob else None,
    }
    if payload.get("parentEmailShardId"):
        structured["parentEmailShardId"] = payload["parentEmailShardId"]
    structured = {k: v for k, v in structured.items() if v is not None}
    unstructured = {"text": extraction.text} if extraction.text else {}
    return build_draft(event, "Document", structured, unstructured)
