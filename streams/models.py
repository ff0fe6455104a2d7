"""Models of the values on the contract's topics; JSON with camelCase keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from core.exceptions import BadEventError
from core.validation import describe_validation_error
from shards.model import WriteOutcome
from streams.topics import DataType

__all__ = [
    "BlobRef",
    "DataType",
    "LinkEvent",
    "RawEvent",
    "RecalculateRequest",
    "RelinkRequest",
    "ShardEvent",
    "ValidationError",
    "parse_raw_event",
    "shard_event",
]


class _Wire(BaseModel):
    """Base of wire models: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict, camelCase keys, unset optionals left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class BlobRef(_Wire):
    """Where integration-sync put a file's bytes."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    container: str = Field(min_length=1)
    path: str = Field(min_length=1)
    content_type: str | None = None
    size: int | None = Field(default=None, ge=0)


class RawEvent(_Wire):
    """The raw integration envelope of CONTRACT §1; unknown keys are kept."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True
    )

    event_id: str = Field(min_length=1)
    event_type: Literal["integration.data.raw"]
    data_type: DataType
    tenant_id: str = Field(min_length=1)
    integration_id: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    entity_type: str | None = None
    external_id: str = Field(min_length=1)
    sync_task_id: str | None = None
    occurred_at: datetime | None = None
    payload: dict[str, Any]
    blob: BlobRef | None = None

    @model_validator(mode="after")
    def _crm_names_its_entity(self) -> RawEvent:
        if self.data_type == "crm" and not self.crm_entity_type:
            message = "a crm event needs entityType (or payload.attributes.type)"
            raise ValueError(message)
        if self.occurred_at is not None and self.occurred_at.tzinfo is None:
            message = "occurredAt must carry a time zone (RFC 3339)"
            raise ValueError(message)
        return self

    @property
    def crm_entity_type(self) -> str | None:
        """The provider's object name, from the envelope or Salesforce's `attributes`."""
        if self.entity_type:
            return self.entity_type
        attributes = self.payload.get("attributes")
        if isinstance(attributes, dict) and isinstance(attributes.get("type"), str):
            return str(attributes["type"])
        return None


def parse_raw_event(value: bytes | dict[str, Any], data_type: str, *, where: str = "") -> RawEvent:
    """The envelope of a raw record (its bytes or its decoded JSON object) that must be of
    `data_type`; `BadEventError` saying what is wrong when it is not a valid one.

    `where` names what fixed the data type in the mismatch message (default: the topic).
    """
    try:
        if isinstance(value, dict):
            event = RawEvent.model_validate(value)
        else:
            event = RawEvent.model_validate_json(value)
    except ValidationError as e:
        message = f"invalid envelope: {describe_validation_error(e)}"
        raise BadEventError(message) from e
    except (ValueError, RecursionError) as e:  # nesting deeper than any parser goes
        message = f"invalid envelope: {type(e).__name__}: {e}"
        raise BadEventError(message) from e
    if event.data_type != data_type:
        message = f"dataType {event.data_type!r} does not match {where or f'the {data_type} topic'}"
        raise BadEventError(message)
    return event


ShardEventType = Literal["shard.created", "shard.updated"]


class ShardEvent(_Wire):
    """`shard.created` / `shard.updated` on `shard.events`."""

    type: ShardEventType
    event_id: str
    tenant_id: str
    shard_id: str
    shard_type: str
    version: int
    source_event_id: str | None = None
    changed_fields: list[str] = Field(default_factory=list)
    occurred_at: datetime


#: `link.withdrawn`: a pending suggestion linking no longer makes (status `withdrawn`).
LinkEventType = Literal[
    "link.created", "link.suggested", "link.approved", "link.rejected", "link.withdrawn"
]


class LinkEvent(_Wire):
    """A link decision on `link.events`."""

    type: LinkEventType
    event_id: str
    tenant_id: str
    shard_id: str
    target_shard_id: str
    target_shard_type: str
    confidence: float = Field(ge=0, le=1)
    method: str
    status: str
    occurred_at: datetime


class RelinkRequest(_Wire):
    """A request on `linking.requests` to re-evaluate one activity's links."""

    tenant_id: str
    shard_id: str
    reason: str = ""


class RecalculateRequest(_Wire):
    """A request on `ml_fields.recalculate` to recompute one opportunity's fields."""

    tenant_id: str
    opportunity_shard_id: str
    reason: str
    requested_at: datetime


def shard_event(outcome: WriteOutcome) -> ShardEvent:
    """The `shard.created`/`shard.updated` event of a write: `shard_event_value`'s
    bytes, read as the model (the reader's view of it)."""
    return ShardEvent.model_validate_json(shard_event_value(outcome))


def shard_event_value(outcome: WriteOutcome) -> bytes:
    """The wire bytes of a write's `shard.created`/`shard.updated` event (`ShardEvent`);
    its id names the version. Written without the model: a model built and dumped per
    shard was 7 µs of the CRM agent's ~100 on the event loop, the dict dumped by
    pydantic's serialiser 2.5."""
    shard = outcome.shard
    return pydantic_core.to_json(
        {
            "type": "shard.created" if shard.version == 1 else "shard.updated",
            "eventId": f"{shard.id}:v{shard.version}",
            "tenantId": shard.tenant_id,
            "shardId": shard.id,
            "shardType": shard.shard_type,
            "version": shard.version,
            "sourceEventId": shard.source.event_id,
            "changedFields": list(outcome.changed_fields),
            "occurredAt": shard.updated_at,
        }
    )
