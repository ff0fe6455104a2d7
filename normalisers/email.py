"""Raw emails (generic, Gmail, Microsoft Graph) become Email drafts; their files, document events.

`event.provider` picks the payload shape: `gmail` is a Gmail API `users.messages.get`
message in format=full, `outlook` a Microsoft Graph `message`, `generic` (and any other
provider whose payload has the generic keys) the email shape of CONTRACT §1.

Attachment bytes are never read here. integration-sync stores them and names the blob
per attachment with a `blob` key (`{container, path, contentType?, size?}`) beside the
attachment: generic `attachments[].blob`, on the Gmail MessagePart of the file (beside
`body`), on the Graph attachment object (beside `contentBytes`). The envelope's `blob`
stands for an attachment when its path ends with the attachment's file name, or when the
message has exactly one attachment and the blob has that attachment's content type. An
attachment with a blob becomes a `document` event (`attachment_events`); one without is
only listed.

Bodies: text/plain is preferred, else HTML made text; the result is split into the new
`text`, the `quotedText` of earlier messages and a `signature` (normalisers.reply). A
body over `MAX_TEXT_CHARS` (or HTML over core.html.MAX_HTML_BYTES) is cut and
`bodyTruncated` set, never refused. Charsets: see normalisers.mime.

The headers that tell bulk mail (List-Unsubscribe, List-Id, Precedence, marketing
platforms' X- headers: core.bulk_mail) are kept as `bulkHeaders`; a generic payload may
carry its headers as `headers` (`{name: value}` or `[{name, value}]`), Gmail and Graph
have theirs (`payload.headers`, `internetMessageHeaders`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import PurePosixPath
from typing import Any, Final

from pydantic import ValidationError

from core.bulk_mail import bulk_headers
from core.exceptions import MappingError, ShardValidationError
from core.html import html_to_text
from core.tenants import TenantConfig
from core.validation import describe_validation_error
from normalisers.common import as_id as _id
from normalisers.common import build_draft, require, utc_iso
from normalisers.common import optional_id as _optional_id
from normalisers.mime import MimeFile, decode_words, header_value, read_message
from normalisers.people import Person, parse_address_header, person, unique_people
from normalisers.reply import normalize_subject, split_reply
from shards.ids import shard_id
from shards.model import ShardDraft
from shards.participants import build_participants
from streams.models import BlobRef, RawEvent

__all__ = ["MAX_TEXT_CHARS", "attachment_events", "normalise_email"]

#: Characters of body text kept (after HTML is made text); more is cut and flagged.
MAX_TEXT_CHARS: Final = 1_000_000

_GENERIC_KEYS: Final = ("messageId", "from")


@dataclass(slots=True)
class _Message:
    """One email read from any shape, before it becomes structured data."""

    message_id: str
    thread_id: str | None
    subject: str | None
    sender: Person | None
    to: list[Person]
    cc: list[Person]
    bcc: list[Person]
    sent_at: str | None
    body: str
    truncated: bool
    attachments: list[dict[str, Any]]
    on_behalf_of: Person | None = None
    received_at: str | None = None
    unique_body: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    labels: list[str] | None = None
    #: the headers that tell bulk mail (core.bulk_mail), as sent
    bulk_headers: dict[str, str] = field(default_factory=dict)


def normalise_email(event: RawEvent, tenant: TenantConfig) -> ShardDraft:
    """The Email draft of one raw email; `MappingError` with the reason when it cannot be read."""
    if event.data_type != "email":
        message = f"not an email event: dataType {event.data_type!r}"
        raise MappingError(message)
    if event.provider == "gmail":
        mail = _gmail(event.payload)
    elif event.provider == "outlook":
        mail = _graph(event.payload)
    elif event.provider == "generic" or all(k in event.payload for k in _GENERIC_KEYS):
        mail = _generic(event.payload)
    else:
        message = (
            f"unknown email payload shape for provider {event.provider!r}: "
            "expected gmail, outlook or the generic shape (messageId, from, ...)"
        )
        raise MappingError(message)
    _attach_envelope_blob(mail.attachments, event.blob)
    structured = _structured(mail, tenant)
    try:
        return build_draft(event, "Email", structured, _unstructured(mail), kind="email")
    except ShardValidationError as e:
        raise MappingError(str(e)) from e


def attachment_events(event: RawEvent, draft: ShardDraft) -> list[RawEvent]:
    """A raw `document` event for each attachment of the draft that has a blob.

    Ids are deterministic in the email's `externalId` and the attachment's stable key
    (Gmail `partId`, Graph attachment id, else its index), so a replayed or re-synced
    email yields the same events and the document agent does its work once.
    """
    sender = draft.structured_data.get("from") or {}
    events = []
    for index, attachment in enumerate(draft.structured_data.get("attachments") or []):
        blob = attachment.get("blob")
        if not blob:
            continue
        key = str(attachment.get("partId") or attachment.get("attachmentId") or index)
        external_id = f"{event.external_id}/attachments/{key}"
        payload: dict[str, Any] = {
            "documentId": external_id,
            "fileName": attachment.get("fileName") or f"attachment-{index + 1}",
            "contentType": attachment.get("contentType") or blob.get("contentType"),
            "size": blob.get("size") if attachment.get("size") is None else attachment["size"],
            "source": "email",
            "parentEmailShardId": draft.id,
        }
        if sender.get("email"):
            payload["owner"] = {"email": sender["email"]}
        if draft.structured_data.get("sentAt"):
            payload["createdAt"] = draft.structured_data["sentAt"]
        events.append(
            RawEvent(
                event_id=f"evt-email-attachment-{_attachment_event_id(event, external_id)}",
                event_type="integration.data.raw",
                data_type="document",
                tenant_id=event.tenant_id,
                integration_id=event.integration_id,
                provider=event.provider,
                external_id=external_id,
                sync_task_id=event.sync_task_id,
                occurred_at=event.occurred_at,
                payload=payload,
                blob=BlobRef.model_validate(blob),
            )
        )
    return events


def _attachment_event_id(event: RawEvent, document_external_id: str) -> str:
    # A uuid keeps the id short (Graph ids alone are ~150 characters) and still the same
    # for the same email and attachment on every replay.
    return shard_id(event.tenant_id, event.provider, "email-attachment", document_external_id)


# --- structured and unstructured data --------------------------------------------------------


def _structured(mail: _Message, tenant: TenantConfig) -> dict[str, Any]:
    to = unique_people(mail.to)
    cc = _without(unique_people(mail.cc), to)
    bcc = _without(unique_people(mail.bcc), [*to, *cc])
    people = {"from": mail.sender, "sender": mail.on_behalf_of, "to": to, "cc": cc, "bcc": bcc}
    participants = [p for p in build_participants("Email", people) if p.get("email")]
    if tenant.internal_domains:
        for p in participants:
            p["internal"] = tenant.is_internal(p["email"])
    structured: dict[str, Any] = {
        "messageId": mail.message_id,
        "threadId": mail.thread_id,
        "subject": mail.subject,
        "normalizedSubject": normalize_subject(mail.subject),
        "from": mail.sender,
        "to": to,
        "cc": cc,
        "bcc": bcc,
        "participants": participants,
        "sentAt": mail.sent_at,
        "direction": _direction(mail.sender, [*to, *cc, *bcc], tenant),
        "attachments": mail.attachments,
        "bodyTruncated": mail.truncated,
    }
    if mail.on_behalf_of is not None and mail.on_behalf_of.get("email") != (
        (mail.sender or {}).get("email")
    ):
        structured["sender"] = mail.on_behalf_of
    if mail.received_at:
        structured["receivedAt"] = mail.received_at
    if mail.in_reply_to:
        structured["inReplyTo"] = mail.in_reply_to
    if mail.references:
        structured["references"] = mail.references
    if mail.labels is not None:
        structured["labels"] = mail.labels
    if mail.bulk_headers:
        structured["bulkHeaders"] = mail.bulk_headers
    return structured


def _unstructured(mail: _Message) -> dict[str, Any]:
    reply = split_reply(mail.body)
    text, signature, quoted = reply.text, reply.signature, reply.quoted
    if mail.unique_body is not None:
        # Graph's uniqueBody is the part new to this message: its text and signature are
        # authoritative; the quotes still come from the whole body.
        unique = split_reply(mail.unique_body)
        text, signature = unique.text, unique.signature
        quoted = quoted or unique.quoted
    unstructured: dict[str, Any] = {"text": text}
    if quoted:
        unstructured["quotedText"] = quoted
    if signature:
        unstructured["signature"] = signature
    return unstructured


def _direction(sender: Person | None, recipients: list[Person], tenant: TenantConfig) -> str | None:
    """outbound: internal sender, some external recipient; inbound: external sender;
    internal: everyone internal. Unknown without a sender address."""
    address = (sender or {}).get("email")
    if not address:
        return None
    if not tenant.is_internal(address):
        return "inbound"
    external = any(p.get("email") and not tenant.is_internal(p["email"]) for p in recipients)
    return "outbound" if external else "internal"


def _without(people: list[Person], earlier: list[Person]) -> list[Person]:
    """People not already listed earlier (To wins over Cc, Cc over Bcc)."""
    seen = {p["email"] for p in earlier if p.get("email")}
    return [p for p in people if not p.get("email") or p["email"] not in seen]


# --- generic (CONTRACT §1) --------------------------------------------------------------------


def _generic(payload: dict[str, Any]) -> _Message:
    body, truncated = _body_text(
        _optional_str(payload.get("bodyText"), "bodyText"),
        _optional_str(payload.get("bodyHtml"), "bodyHtml"),
    )
    attachments = payload.get("attachments") or []
    if not isinstance(attachments, list):
        message = "attachments: not a list"
        raise MappingError(message)
    return _Message(
        message_id=_id(require(payload, "messageId"), "messageId"),
        thread_id=_optional_id(payload.get("threadId"), "threadId"),
        subject=_optional_str(payload.get("subject"), "subject"),
        sender=_one_person(payload.get("from"), "from"),
        to=_people(payload.get("to"), "to"),
        cc=_people(payload.get("cc"), "cc"),
        bcc=_people(payload.get("bcc"), "bcc"),
        sent_at=utc_iso(payload.get("sentAt"), field="sentAt"),
        received_at=utc_iso(payload.get("receivedAt"), field="receivedAt"),
        body=body,
        truncated=truncated,
        attachments=[_generic_attachment(a, i) for i, a in enumerate(attachments)],
        in_reply_to=_optional_str(payload.get("inReplyTo"), "inReplyTo"),
        references=_references(payload.get("references"), "references"),
        bulk_headers=bulk_headers(payload.get("headers")),
    )


def _generic_attachment(entry: Any, index: int) -> dict[str, Any]:
    where = f"attachments[{index}]"
    if not isinstance(entry, Mapping):
        message = f"{where}: not an object"
        raise MappingError(message)
    return _attachment(
        where,
        file_name=_optional_str(entry.get("fileName"), f"{where}.fileName"),
        content_type=_optional_str(entry.get("contentType"), f"{where}.contentType"),
        size=entry.get("size"),
        blob=entry.get("blob"),
        attachment_id=_optional_id(entry.get("attachmentId"), f"{where}.attachmentId"),
    )


# --- Gmail (users.messages.get, format=full) --------------------------------------------------


def _gmail(payload: dict[str, Any]) -> _Message:
    gmail_id = _id(require(payload, "id"), "id")
    if "payload" not in payload and "raw" in payload:
        message = "gmail message in format=raw; expected format=full"
        raise MappingError(message)
    mime = read_message(payload.get("payload"))
    headers = payload["payload"].get("headers")
    received_at = _epoch_ms(payload.get("internalDate"))
    sent_at = _rfc2822(header_value(headers, "Date")) or received_at
    body, truncated = _body_text("\n".join(mime.plain) or None, "\n".join(mime.html) or None)
    senders = _address_header(headers, "From")
    on_behalf = _address_header(headers, "Sender")
    labels = payload.get("labelIds")
    return _Message(
        message_id=_message_id(header_value(headers, "Message-ID")) or gmail_id,
        thread_id=_optional_id(payload.get("threadId"), "threadId"),
        subject=header_value(headers, "Subject"),
        sender=senders[0] if senders else None,
        on_behalf_of=on_behalf[0] if on_behalf else None,
        to=_address_header(headers, "To"),
        cc=_address_header(headers, "Cc"),
        bcc=_address_header(headers, "Bcc"),
        sent_at=sent_at,
        received_at=received_at,
        body=body,
        truncated=truncated or mime.truncated,
        attachments=[_gmail_attachment(f) for f in mime.files],
        in_reply_to=_message_id(header_value(headers, "In-Reply-To")),
        references=_references(header_value(headers, "References"), "References"),
        labels=[str(label) for label in labels] if isinstance(labels, list) else None,
        bulk_headers=bulk_headers(headers),
    )


def _gmail_attachment(file: MimeFile) -> dict[str, Any]:
    where = f"part {file.part_id or '?'}"
    attachment = _attachment(
        where,
        file_name=file.file_name,
        content_type=file.content_type,
        size=file.size,
        blob=file.blob,
        attachment_id=file.attachment_id,
        inline=file.inline,
    )
    if file.part_id is not None:
        attachment["partId"] = file.part_id
    return attachment


def _address_header(headers: Any, name: str) -> list[Person]:
    people = parse_address_header(header_value(headers, name, decode=False))
    for p in people:
        if p.get("name"):
            p["name"] = decode_words(p["name"])
    return people


def _epoch_ms(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not str(value).isdigit():
        message = f"internalDate: not epoch milliseconds: {value!r}"
        raise MappingError(message)
    return utc_iso(int(value), field="internalDate")


def _rfc2822(value: str | None) -> str | None:
    """A Date header in UTC; None when absent or unreadable (internalDate stands in)."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    try:
        return utc_iso(parsed, field="Date")
    except MappingError:
        return None


# --- Microsoft Graph message -------------------------------------------------------------------


def _graph(payload: dict[str, Any]) -> _Message:
    graph_id = _id(require(payload, "id"), "id")
    body, truncated = _graph_body(payload.get("body"), "body")
    unique_body = None
    if payload.get("uniqueBody") is not None:
        unique_body, unique_truncated = _graph_body(payload.get("uniqueBody"), "uniqueBody")
        truncated = truncated or unique_truncated
    headers = payload.get("internetMessageHeaders")
    attachments = payload.get("attachments") or []
    if not isinstance(attachments, list):
        message = "attachments: not a list"
        raise MappingError(message)
    sender = _graph_recipient(payload.get("from"), "from") or _graph_recipient(
        payload.get("sender"), "sender"
    )
    return _Message(
        message_id=_message_id(_optional_str(payload.get("internetMessageId"), "internetMessageId"))
        or graph_id,
        thread_id=_optional_id(payload.get("conversationId"), "conversationId"),
        subject=_optional_str(payload.get("subject"), "subject"),
        sender=sender,
        on_behalf_of=_graph_recipient(payload.get("sender"), "sender"),
        to=_graph_recipients(payload.get("toRecipients"), "toRecipients"),
        cc=_graph_recipients(payload.get("ccRecipients"), "ccRecipients"),
        bcc=_graph_recipients(payload.get("bccRecipients"), "bccRecipients"),
        sent_at=utc_iso(payload.get("sentDateTime"), field="sentDateTime"),
        received_at=utc_iso(payload.get("receivedDateTime"), field="receivedDateTime"),
        body=body,
        truncated=truncated,
        unique_body=unique_body,
        attachments=[_graph_attachment(a, i) for i, a in enumerate(attachments)],
        in_reply_to=_message_id(header_value(headers, "In-Reply-To")),
        references=_references(header_value(headers, "References"), "References"),
        bulk_headers=bulk_headers(headers),
    )


def _graph_body(value: Any, where: str) -> tuple[str, bool]:
    if value is None:
        return "", False
    if not isinstance(value, Mapping):
        message = f"{where}: not an itemBody object"
        raise MappingError(message)
    content = _optional_str(value.get("content"), f"{where}.content")
    kind = str(value.get("contentType") or "text").lower()
    if kind == "html":
        return _body_text(None, content)
    if kind == "text":
        return _body_text(content, None)
    message = f"{where}.contentType: expected html or text, got {kind!r}"
    raise MappingError(message)


def _graph_recipient(value: Any, where: str) -> Person | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not isinstance(value.get("emailAddress"), Mapping):
        message = f"{where}: not a recipient ({{emailAddress: {{name, address}}}})"
        raise MappingError(message)
    address = value["emailAddress"]
    return _lenient_person(address.get("address"), address.get("name"))


def _graph_recipients(value: Any, where: str) -> list[Person]:
    if value is None:
        return []
    if not isinstance(value, list):
        message = f"{where}: not a list"
        raise MappingError(message)
    found = (_graph_recipient(r, f"{where}[{i}]") for i, r in enumerate(value))
    return [p for p in found if p is not None]


def _graph_attachment(entry: Any, index: int) -> dict[str, Any]:
    where = f"attachments[{index}]"
    if not isinstance(entry, Mapping):
        message = f"{where}: not an object"
        raise MappingError(message)
    attachment = _attachment(
        where,
        file_name=_optional_str(entry.get("name"), f"{where}.name"),
        content_type=_optional_str(entry.get("contentType"), f"{where}.contentType"),
        size=entry.get("size"),
        blob=entry.get("blob"),
        attachment_id=_optional_id(entry.get("id"), f"{where}.id"),
        inline=entry.get("isInline") is True,
    )
    kind = str(entry.get("@odata.type") or "").rpartition(".")[2]
    if kind and kind != "fileAttachment":
        attachment["kind"] = kind  # itemAttachment (an attached email), referenceAttachment
    return attachment


# --- shared readers ------------------------------------------------------------------------------


def _body_text(plain: str | None, html: str | None) -> tuple[str, bool]:
    """The body as text: plain preferred, else HTML made text; cut past MAX_TEXT_CHARS."""
    if plain and plain.strip():
        text, truncated = plain, False
    elif html:
        text, truncated = html_to_text(html)
    else:
        return "", False
    if len(text) > MAX_TEXT_CHARS:
        return text[:MAX_TEXT_CHARS], True
    return text, truncated


def _attachment(
    where: str,
    *,
    file_name: str | None,
    content_type: str | None,
    size: Any,
    blob: Any,
    attachment_id: str | None = None,
    inline: bool = False,
) -> dict[str, Any]:
    attachment: dict[str, Any] = {
        "fileName": file_name,
        "contentType": content_type.lower() if content_type else None,
        "size": _size(size, f"{where}.size"),
    }
    if blob is not None:
        attachment["blob"] = _blob(blob, f"{where}.blob")
    if attachment_id:
        attachment["attachmentId"] = attachment_id
    if inline:
        attachment["inline"] = True
    return attachment


def _attach_envelope_blob(attachments: list[dict[str, Any]], blob: BlobRef | None) -> None:
    """Give the envelope's blob to the attachment it stands for (see the module doc)."""
    if blob is None:
        return
    waiting = [a for a in attachments if "blob" not in a]
    name = PurePosixPath(blob.path).name
    match = next((a for a in waiting if a["fileName"] and a["fileName"] == name), None)
    if match is None and len(attachments) == 1 and waiting:
        wanted = (blob.content_type or "").lower()
        if wanted and waiting[0]["contentType"] == wanted:
            match = waiting[0]
    if match is not None:
        match["blob"] = blob.to_wire()


def _blob(value: Any, where: str) -> dict[str, Any]:
    try:
        return BlobRef.model_validate(value).to_wire()
    except ValidationError as e:
        problems = describe_validation_error(e, root="(blob)")
        message = f"{where}: not a blob reference ({problems})"
        raise MappingError(message) from e


def _size(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        message = f"{where}: not a size in bytes: {value!r}"
        raise MappingError(message)
    return value


def _one_person(value: Any, where: str) -> Person | None:
    people = _people(value, where)
    return people[0] if people else None


def _people(value: Any, where: str) -> list[Person]:
    """People from a list of `{email, name}` objects or address strings (or one of them)."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return parse_address_header(value)
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list):
        message = f"{where}: expected people ({{email, name}} objects or addresses)"
        raise MappingError(message)
    found: list[Person] = []
    for i, entry in enumerate(value):
        if isinstance(entry, str):
            found.extend(parse_address_header(entry))
        elif isinstance(entry, Mapping):
            p = _lenient_person(entry.get("email") or entry.get("address"), entry.get("name"))
            if p is not None:
                found.append(p)
        elif entry is not None:
            message = f"{where}[{i}]: expected {{email, name}} or an address, got {entry!r}"
            raise MappingError(message)
    return found


def _lenient_person(address: Any, name: Any) -> Person | None:
    """A person; an address that is no email (an Exchange X.500 path) keeps just the name."""
    try:
        return person(address, name)
    except MappingError:
        return person(None, name) if name else None


def _references(value: Any, where: str) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    message = f"{where}: expected message ids"
    raise MappingError(message)


def _message_id(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _optional_str(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        message = f"{where}: expected a string, got {type(value).__name__}"
        raise MappingError(message)
    return value
