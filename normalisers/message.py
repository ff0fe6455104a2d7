"""Chat messages (generic, Slack, Microsoft Teams) become drafts of Message shards.

Shard identity: an edit or a delete is about a message, and the payload says which,
whatever `externalId` the envelope carries (the message's id, or the edit's or
delete's own): Slack `<channel>:<ts>` of the message (`message.ts` of a
`message_changed`, `deleted_ts` of a `message_deleted`), the Teams message id (the
`chatMessage`'s `id`, or the `resourceData.id` / `resource` path of a Graph change
notification). An edit or a delete therefore updates the shard of the message it
changes and never makes one of its own; a delete keeps that shard with `deleted: true`
and empties its text, mentions and attachments. The generic shape is the message
itself (no edit or delete events): its envelope's `externalId` is the message's.
A payload's own time (an edit's `edited.ts`, a delete's `event_ts`, Graph's
`lastModifiedDateTime`) orders versions when the envelope has no `occurredAt`, so an
edit that arrives before its original still wins.

People: Slack and Teams name users by id only. integration-sync may add
`payload.userDirectory`, `{"<user id>": {"email": ..., "name": ...}}`, for the users
the message names (sender and mentions); without an entry a person keeps `userId`
and whatever name the record itself carries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote

from core.exceptions import MappingError, ShardValidationError
from core.html import MAX_HTML_BYTES, html_to_text
from core.tenants import TenantConfig
from normalisers.common import as_id as _id
from normalisers.common import as_list as _list
from normalisers.common import as_object as _object
from normalisers.common import build_draft, require, utc_iso
from normalisers.common import optional_id as _optional_id
from normalisers.people import Person, person, unique_people
from shards.model import ShardDraft
from shards.participants import build_participants
from streams.models import RawEvent

__all__ = ["normalise_message"]

Directory = Mapping[str, Mapping[str, Any]]

_SLACK_TS: Final = re.compile(r"^(\d{1,12})(?:\.(\d{1,6}))?$")
#: `<@U123>`, `<#C123|general>`, `<!here>`, `<https://x|label>`: Slack's escapes in `text`.
_SLACK_ENTITY: Final = re.compile(r"<([^<>]+)>")
#: Teams wraps each mention in `<at id="0">Name</at>`; an `@` makes it read as one.
_TEAMS_AT: Final = re.compile(r"(<at\b[^<>]{0,200}>)", re.IGNORECASE)
#: `messages('1616990032035')`, `replies('…')`, `chats('19:…')`, `channels('…')`, `teams('…')`
#: in a Graph change notification's `resource` (or the slash form `messages/1616990032035`).
_GRAPH_SEGMENT: Final = re.compile(
    r"(teams|channels|chats|messages|replies)(?:\('([^']+)'\)|/([^/]+))"
)
#: What a delete empties on the message's shard (its text goes with the draft's own).
_CLEARED_BY_DELETE: Final = frozenset({"mentions", "participants", "attachments"})


@dataclass(slots=True)
class _Chat:
    """One read chat record: the Message's data and which message it is, when it says."""

    structured: dict[str, Any]
    text: str
    truncated: bool = False
    #: the message's own id (`<channel>:<ts>`, the Teams id); None: the envelope's
    external_id: str | None = None
    #: when this version of the message was made, from the payload (RFC 3339)
    version_at: str | None = None


def normalise_message(event: RawEvent, tenant: TenantConfig) -> ShardDraft:
    """The Message draft of one raw chat message; `MappingError` when it cannot be read.

    `event.provider` picks the shape: `slack` (Events API `message` event), `teams`
    (Graph `chatMessage`, or a Graph change notification about one), anything else the
    generic shape of CONTRACT §1.
    """
    if event.provider == "slack":
        chat = _slack(event.payload)
    elif event.provider == "teams":
        chat = _teams(event.payload)
    else:
        chat = _generic(event.payload)
    structured = chat.structured
    structured["participants"] = build_participants("Message", structured)
    _classify(structured, tenant)
    unstructured: dict[str, Any] = {"text": chat.text}
    if chat.truncated:
        unstructured["truncated"] = True
    deleted = structured.get("deleted") is True
    try:
        return build_draft(
            event,
            "Message",
            structured,
            unstructured,
            external_id=chat.external_id,
            occurred_at=chat.version_at,
            cleared=_CLEARED_BY_DELETE if deleted else frozenset(),
        )
    except ShardValidationError as e:
        raise MappingError(str(e)) from e


# --- generic -------------------------------------------------------------------------------


def _generic(payload: dict[str, Any]) -> _Chat:
    sender = _generic_person(payload.get("sender"), "sender")
    if not any(sender.values()):
        message = "sender: names no one (no email, name or userId)"
        raise MappingError(message)
    mentions = [_generic_person(m, "mentions") for m in _list(payload, "mentions")]
    text, truncated = _plain_text(payload.get("text"), "text")
    sent_at = utc_iso(require(payload, "sentAt"), field="sentAt")
    edited_at = utc_iso(payload.get("editedAt"), field="editedAt")
    structured: dict[str, Any] = {
        "messageId": _id(require(payload, "messageId"), "messageId"),
        "threadId": _optional_id(payload.get("threadId"), "threadId"),
        "channelId": _id(require(payload, "channelId"), "channelId"),
        "channelName": _optional_str(payload.get("channelName"), "channelName"),
        "sender": sender,
        "mentions": unique_people(mentions),
        "sentAt": sent_at,
        "editedAt": edited_at,
        "deleted": _flag(payload.get("deleted"), "deleted"),
    }
    if structured["deleted"]:
        return _Chat(_tombstone(structured), "", version_at=edited_at)
    return _Chat(structured, text, truncated, version_at=edited_at or sent_at)


def _generic_person(value: Any, field: str) -> Person:
    if isinstance(value, str):
        return person(value)
    if isinstance(value, dict):
        user_id = _optional_id(value.get("userId"), f"{field}.userId")
        return person(value.get("email"), value.get("name"), userId=user_id)
    message = f"{field}: expected a person object or an address, got {type(value).__name__}"
    raise MappingError(message)


# --- Slack ---------------------------------------------------------------------------------


def _slack(payload: dict[str, Any]) -> _Chat:
    body = payload
    # integration-sync normally sends the event itself; a whole Events API callback is unwrapped.
    if payload.get("type") == "event_callback":
        body = _object(payload, "event", required=True)
    directory = _directory(payload)
    channel = _id(require(body, "channel"), "channel")
    subtype = body.get("subtype")
    deleted = False
    if subtype in ("message_changed", "message_replied"):
        # `message` is the message as it now is; `ts` and `event_ts` are the event's own
        message = _object(body, "message", required=True)
    elif subtype == "message_deleted":
        deleted_ts = require(body, "deleted_ts")
        message = {**_object(body, "previous_message"), "ts": deleted_ts}
        deleted = True
    else:
        message = body
    ts = _id(require(message, "ts"), "ts")
    sent_at = _slack_time(ts, "ts")
    thread_ts = _optional_id(message.get("thread_ts"), "thread_ts")
    edited = _object(message, "edited")
    edited_at = _slack_time(edited["ts"], "edited.ts") if edited.get("ts") else None
    event_ts = body.get("event_ts") or body.get("ts")
    changes = subtype in ("message_changed", "message_replied", "message_deleted")
    event_at = _slack_time(event_ts, "event_ts") if changes and event_ts else None

    sender = _slack_sender(message, directory)
    raw_text, truncated = _plain_text(message.get("text"), "text")
    text, mentioned = _slack_text(raw_text, directory)
    mentions = [_directory_person(user_id, directory, label) for user_id, label in mentioned]

    structured = {
        "messageId": ts,
        "threadId": thread_ts or ts,
        "channelId": channel,
        "channelName": _optional_str(payload.get("channelName"), "channelName"),
        "channelType": _optional_str(body.get("channel_type"), "channel_type"),
        "sender": sender,
        "mentions": unique_people(mentions),
        "sentAt": sent_at,
        "editedAt": edited_at,
        "deleted": deleted,
        "attachments": [_slack_file(f) for f in _list(message, "files")],
    }
    external_id = f"{channel}:{ts}"
    if deleted:
        structured["deletedAt"] = event_at
        return _Chat(_tombstone(structured), "", external_id=external_id, version_at=event_at)
    version_at = event_at or edited_at or sent_at
    return _Chat(structured, text, truncated, external_id=external_id, version_at=version_at)


def _slack_time(value: Any, field: str) -> str:
    """Slack's `ts` ("1700000000.000100", epoch seconds and a sequence) as UTC RFC 3339."""
    match = _SLACK_TS.match(value) if isinstance(value, str) else None
    if match is None:
        message = f"{field}: not a Slack timestamp: {value!r}"
        raise MappingError(message)
    seconds, fraction = match.groups()
    try:
        moment = datetime.fromtimestamp(int(seconds), tz=UTC)
    except (OverflowError, OSError, ValueError) as e:
        message = f"{field}: not a Slack timestamp: {value!r}"
        raise MappingError(message) from e
    # The fraction orders messages within a second; milliseconds are precision enough.
    milliseconds = int((fraction or "0").ljust(6, "0")[:3])
    moment = moment.replace(microsecond=milliseconds * 1000)
    return utc_iso(moment, field=field) or ""


def _slack_sender(message: Mapping[str, Any], directory: Directory) -> Person | None:
    user_id = _optional_id(message.get("user") or message.get("bot_id"), "user")
    profile = message.get("user_profile")
    fallback = None
    if isinstance(profile, dict):
        fallback = profile.get("real_name") or profile.get("display_name")
    fallback = fallback or message.get("username")
    if user_id is None:
        return person(None, fallback) if fallback else None
    return _directory_person(user_id, directory, fallback)


def _slack_text(text: str, directory: Directory) -> tuple[str, list[tuple[str, str | None]]]:
    """Slack's mark-up as plain text, and the users it mentions (id, label), in order."""
    mentioned: list[tuple[str, str | None]] = []

    def readable(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            user_id = target[1:]
            mentioned.append((user_id, label or None))
            entry = directory.get(user_id) or {}
            return f"@{entry.get('name') or label or user_id}"
        if target.startswith("#"):
            return f"#{label or target[1:]}"
        if target.startswith("!"):
            command = target[1:].split("^", 1)[0]
            if command in ("here", "channel", "everyone"):
                return f"@{command}"
            return label
        url = target.removeprefix("mailto:")
        if not label or label in (target, url, target.split("://", 1)[-1]):
            return url
        return f"{label} ({url})"

    plain = _SLACK_ENTITY.sub(readable, text)
    plain = plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return plain, mentioned


def _slack_file(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        message = f"files: expected objects, got {type(value).__name__}"
        raise MappingError(message)
    return {
        "id": value.get("id"),
        "name": value.get("name") or value.get("title"),
        "contentType": value.get("mimetype"),
        "size": value.get("size"),
    }


# --- Microsoft Teams -----------------------------------------------------------------------


def _teams(payload: dict[str, Any]) -> _Chat:
    batch = payload.get("value")
    if isinstance(batch, list) and len(batch) == 1 and isinstance(batch[0], dict):
        payload = {**batch[0], **_extras(payload)}  # a notification collection of one
    if "changeType" in payload and "resource" in payload:
        return _teams_notification(payload)
    return _teams_message(payload)


def _teams_message(payload: dict[str, Any]) -> _Chat:
    """A Graph `chatMessage` resource (GET, delta, or the decrypted content of a notification)."""
    directory = _directory(payload)
    message_id = _id(require(payload, "id"), "id")
    channel_identity = _object(payload, "channelIdentity")
    channel_id = _optional_id(channel_identity.get("channelId"), "channelIdentity.channelId")
    chat_id = _optional_id(payload.get("chatId"), "chatId")
    if channel_id is None and chat_id is None:
        message = "payload has no channelIdentity.channelId or chatId"
        raise MappingError(message)
    reply_to = _optional_id(payload.get("replyToId"), "replyToId")
    # A channel thread is a root message and its replies; a chat is one conversation.
    thread_id = (reply_to or message_id) if channel_id is not None else chat_id

    sender = _teams_sender(_object(payload, "from"), directory)
    mentions = [p for p in (_teams_mention(m, directory) for m in _list(payload, "mentions")) if p]
    text, truncated = _teams_body(_object(payload, "body"))
    deleted_at = utc_iso(payload.get("deletedDateTime"), field="deletedDateTime")
    edited_at = utc_iso(payload.get("lastEditedDateTime"), field="lastEditedDateTime")
    sent_at = utc_iso(require(payload, "createdDateTime"), field="createdDateTime")
    structured = {
        "messageId": message_id,
        "threadId": thread_id,
        "channelId": channel_id or chat_id,
        "channelName": _optional_str(payload.get("channelName"), "channelName"),
        "teamId": _optional_id(channel_identity.get("teamId"), "channelIdentity.teamId"),
        "chatId": chat_id,
        "messageType": _optional_str(payload.get("messageType"), "messageType"),
        "subject": _optional_str(payload.get("subject"), "subject"),
        "sender": sender,
        "mentions": unique_people(mentions),
        "sentAt": sent_at,
        "editedAt": edited_at,
        "deleted": deleted_at is not None,
        "deletedAt": deleted_at,
        "attachments": [_teams_attachment(a) for a in _list(payload, "attachments")],
    }
    modified_at = utc_iso(payload.get("lastModifiedDateTime"), field="lastModifiedDateTime")
    version_at = deleted_at or modified_at or edited_at or sent_at
    if deleted_at is not None:
        return _Chat(_tombstone(structured), "", external_id=message_id, version_at=version_at)
    return _Chat(structured, text, truncated, external_id=message_id, version_at=version_at)


def _teams_notification(payload: dict[str, Any]) -> _Chat:
    """A Graph change notification about a `chatMessage`.

    `resource` names the message (`chats('…')/messages('…')`, `teams('…')/channels('…')/
    messages('…')[/replies('…')]`) and `resourceData.id` its id. A `deleted` one carries
    nothing else: the message's shard is marked deleted and emptied. A `created` or
    `updated` one is read from its content, which integration-sync decrypts into
    `resourceData` (Graph sends it encrypted in `encryptedContent`).
    """
    change = payload.get("changeType")
    resource = payload.get("resource")
    if not isinstance(resource, str) or not resource:
        message = "resource: expected the changed message's path"
        raise MappingError(message)
    data = _object(payload, "resourceData")
    segments: dict[str, str] = {}
    for kind, quoted, bare in _GRAPH_SEGMENT.findall(resource):
        segments.setdefault(kind, unquote(quoted or bare))
        if kind == "replies":
            segments["root"] = segments.get("messages", "")
    message_id = _optional_id(data.get("id"), "resourceData.id") or segments.get(
        "replies", segments.get("messages")
    )
    if message_id is None:
        message = f"resource: names no message: {resource!r}"
        raise MappingError(message)
    if change != "deleted":
        if "createdDateTime" not in data:
            message = (
                f"a {change!r} notification without the message's content "
                "(decrypted resourceData): fetch the message and send it instead"
            )
            raise MappingError(message)
        content = {k: v for k, v in data.items() if not k.startswith("@odata")}
        return _teams_message({**content, **_extras(payload), "id": message_id})
    channel_id = segments.get("channels")
    chat_id = segments.get("chats")
    if channel_id is None and chat_id is None:
        message = f"resource: names no channel or chat: {resource!r}"
        raise MappingError(message)
    # A notification carries no time: the envelope's `occurredAt` orders it.
    at = None
    structured: dict[str, Any] = {
        "messageId": message_id,
        "threadId": (segments.get("root") or message_id) if channel_id else chat_id,
        "channelId": channel_id or chat_id,
        "teamId": segments.get("teams"),
        "chatId": chat_id,
        "mentions": [],
        "attachments": [],
        "deleted": True,
        "deletedAt": at,
    }
    return _Chat(structured, "", external_id=message_id, version_at=at)


def _extras(payload: Mapping[str, Any]) -> dict[str, Any]:
    """What integration-sync adds beside a provider's record (`channelName`, `userDirectory`)."""
    return {k: payload[k] for k in ("channelName", "userDirectory") if k in payload}


def _teams_sender(identity: Mapping[str, Any], directory: Directory) -> Person | None:
    # `from` is null on system event messages; bots send as an `application`.
    for kind in ("user", "application", "device"):
        who = identity.get(kind)
        if isinstance(who, dict) and who.get("id"):
            user_id = _id(who["id"], f"from.{kind}.id")
            return _directory_person(user_id, directory, who.get("displayName"))
    return None


def _teams_mention(mention: Any, directory: Directory) -> Person | None:
    if not isinstance(mention, dict):
        message = f"mentions: expected objects, got {type(mention).__name__}"
        raise MappingError(message)
    mentioned = mention.get("mentioned")
    user = mentioned.get("user") if isinstance(mentioned, dict) else None
    if not isinstance(user, dict) or not user.get("id"):
        return None  # a channel, team, tag or bot: not a person
    user_id = _id(user["id"], "mentions.mentioned.user.id")
    name = user.get("displayName") or mention.get("mentionText")
    return _directory_person(user_id, directory, name)


def _teams_body(body: Mapping[str, Any]) -> tuple[str, bool]:
    content = body.get("content")
    if content is None:
        return "", False
    if not isinstance(content, str):
        message = f"body.content: expected a string, got {type(content).__name__}"
        raise MappingError(message)
    content, truncated = _plain_text(content, "body.content")
    if str(body.get("contentType") or "html").lower() == "text":
        return content, truncated
    text, cut = html_to_text(_TEAMS_AT.sub(r"\1@", content))
    return text, truncated or cut


def _teams_attachment(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        message = f"attachments: expected objects, got {type(value).__name__}"
        raise MappingError(message)
    return {
        "id": value.get("id"),
        "name": value.get("name"),
        "contentType": value.get("contentType"),
        "contentUrl": value.get("contentUrl"),
    }


# --- shared --------------------------------------------------------------------------------


def _tombstone(structured: dict[str, Any]) -> dict[str, Any]:
    """A deleted message: who wrote it, where and when stay; what it said and named go."""
    return {**structured, "deleted": True, "mentions": [], "attachments": []}


def _directory(payload: Mapping[str, Any]) -> Directory:
    """`payload.userDirectory`: user id to `{email, name}`, added by integration-sync."""
    raw = payload.get("userDirectory")
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        message = "userDirectory: expected an object of user id to {email, name}"
        raise MappingError(message)
    return raw


def _directory_person(user_id: str, directory: Directory, fallback_name: Any = None) -> Person:
    entry = directory.get(user_id) or {}
    return person(entry.get("email"), entry.get("name") or fallback_name, userId=user_id)


def _classify(structured: dict[str, Any], tenant: TenantConfig) -> None:
    """Mark people internal or not, and the message's direction, where addresses are known.

    Nothing is marked for a tenant without `internalDomains`: everyone would look external.
    """
    if not tenant.internal_domains:
        structured["direction"] = None
        return
    for p in [structured.get("sender"), *structured["mentions"], *structured["participants"]]:
        if p and p.get("email"):
            p["internal"] = tenant.is_internal(p["email"])
    sender = structured.get("sender") or {}
    if sender.get("internal") is None:
        structured["direction"] = None
    elif not sender["internal"]:
        structured["direction"] = "inbound"
    elif any(p.get("internal") is False for p in structured["participants"]):
        structured["direction"] = "outbound"
    else:
        structured["direction"] = "internal"


def _plain_text(value: Any, field: str) -> tuple[str, bool]:
    """A text field, capped at the size HTML is capped at; `MappingError` if not a string."""
    if value is None:
        return "", False
    if not isinstance(value, str):
        message = f"{field}: expected a string, got {type(value).__name__}"
        raise MappingError(message)
    if len(value) > MAX_HTML_BYTES:
        return value[:MAX_HTML_BYTES], True
    return value, False


def _optional_str(value: Any, field: str) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        message = f"{field}: expected a string, got {type(value).__name__}"
        raise MappingError(message)
    return value


def _flag(value: Any, field: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        message = f"{field}: expected true or false, got {value!r}"
        raise MappingError(message)
    return value
