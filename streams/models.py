"""Models of the values on the contract's topics; JSON with camelCase keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from streams.topics import DATA_TYPES

__all__ = [
    "BlobRef",
    "DataType",
    "LinkEvent",
    "RawEvent",
    "RecalculateRequest",
    "ShardEvent",
    "ValidationError",
]

DataType = Literal["crm", "document", "email", "message", "meeting", "event"]
assert set(DataType.__args__) == set(DATA_TYPES)  # type: ignore[attr-defined]


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


LinkEventType = Literal["link.created", "link.suggested", "link.approved", "link.rejected"]


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


class RecalculateRequest(_Wire):
    """A request on `ml_fields.recalculate` to recompute one opportunity's fields."""

    tenant_id: str
    opportunity_shard_id: str
    reason: str
    requested_at: datetime
