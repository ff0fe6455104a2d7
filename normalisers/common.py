"""What every communication normaliser shares: the draft's id and source, time parsing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dateutil import parser as date_parser

from core.exceptions import MappingError
from shards.ids import shard_id
from shards.model import ShardDraft, ShardSource
from shards.threads import namespace_thread
from shards.types import definition, validate_structured_data
from streams.models import RawEvent

__all__ = ["as_id", "as_list", "as_object", "build_draft", "optional_id", "require", "utc_iso"]


def require(payload: dict[str, Any], *names: str) -> Any:
    """The first of `names` present and non-empty in the payload; `MappingError` if none."""
    for name in names:
        value = payload.get(name)
        if value not in (None, "", [], {}):
            return value
    message = f"payload has no {' or '.join(names)}"
    raise MappingError(message)


def utc_iso(value: Any, *, field: str = "time") -> str | None:
    """Any ISO 8601 date-time (or epoch milliseconds, or a `datetime`) to UTC RFC 3339;
    None stays None. A date-time without a zone is taken as UTC."""
    if value in (None, ""):
        return None
    try:
        if isinstance(value, datetime):  # as its `isoformat()` would read (twice as fast)
            parsed = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            parsed = datetime.fromtimestamp(value / 1000, tz=UTC)
        else:
            text = str(value)
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                parsed = date_parser.isoparse(text)
    except (ValueError, OverflowError, OSError) as e:
        message = f"{field}: not an ISO 8601 date-time: {value!r}"
        raise MappingError(message) from e
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    utc = parsed.astimezone(UTC)
    text = utc.isoformat(timespec="milliseconds" if utc.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def build_draft(
    event: RawEvent,
    shard_type: str,
    structured: dict[str, Any],
    unstructured: dict[str, Any] | None = None,
    *,
    kind: str | None = None,
    external_id: str | None = None,
    occurred_at: str | None = None,
    cleared: frozenset[str] = frozenset(),
) -> ShardDraft:
    """A validated draft whose id is deterministic in (tenant, provider, kind, externalId).

    `kind` defaults to the data type (`email`, `message`, `event` ...), as CONTRACT §3 says.
    `external_id` is the id of the record the event is about when the payload names it
    (a chat edit or delete names the message it changes), else the envelope's;
    `occurred_at` (RFC 3339, from the payload) stands in for an envelope without one;
    `cleared` names the fields a delete empties instead of keeping (`ShardDraft.cleared`).
    A `threadId` is namespaced by the integration (`shards.threads`).
    """
    namespace_thread(shard_type, event.integration_id, structured)
    validate_structured_data(shard_type, structured)
    kind = kind or event.data_type
    external_id = external_id or event.external_id
    at = event.occurred_at
    if at is None and occurred_at is not None:
        at = datetime.fromisoformat(occurred_at)
    return ShardDraft(
        id=shard_id(event.tenant_id, event.provider, kind, external_id),
        tenant_id=event.tenant_id,
        shard_type=shard_type,
        schema_version=definition(shard_type).schema_version,
        structured_data=structured,
        unstructured_data=unstructured or {},
        source=ShardSource(
            provider=event.provider,
            integration_id=event.integration_id,
            entity_type=event.entity_type or kind,
            external_id=external_id,
            event_id=event.event_id,
            sync_task_id=event.sync_task_id,
            occurred_at=at,
        ),
        cleared=cleared,
    )


def as_object(payload: Mapping[str, Any], field: str, *, required: bool = False) -> dict[str, Any]:
    """`payload[field]` as an object (`{}` when absent and not required)."""
    value = payload.get(field)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        message = f"{field}: expected an object, got {type(value).__name__}"
        raise MappingError(message)
    return value


def as_list(payload: Mapping[str, Any], field: str) -> list[Any]:
    """`payload[field]` as a list (`[]` when absent)."""
    value = payload.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        message = f"{field}: expected a list, got {type(value).__name__}"
        raise MappingError(message)
    return value


def as_id(value: Any, field: str) -> str:
    """A provider id (text or number, never empty) as text."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        message = f"{field}: expected an id, got {type(value).__name__}"
        raise MappingError(message)
    text = str(value).strip()
    if not text:
        message = f"{field}: empty id"
        raise MappingError(message)
    return text


def optional_id(value: Any, field: str) -> str | None:
    """An id, or None for a missing or empty value."""
    return None if value in (None, "") else as_id(value, field)
