"""Field mappings as data, and how a CRM record becomes a shard draft through one."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mappings.transforms import TRANSFORMS, TransformContext, apply_transform
from processors.exceptions import ConfigurationError, MappingError
from shards.ids import shard_id
from shards.model import ShardDraft, ShardSource
from shards.types import SHARD_TYPES, definition, validate_structured_data
from streams.models import RawEvent

__all__ = [
    "EntityMapping",
    "FieldMapping",
    "ProviderMapping",
    "load_mapping_file",
    "map_crm_event",
    "shipped_mappings",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FieldMapping(_Strict):
    """One target field: from a source field (or several) through a transform."""

    source: str | list[str] = Field(min_length=1)
    target: str = Field(min_length=1)
    transform: str = "none"
    options: dict[str, Any] = Field(default_factory=dict)
    required: bool = False
    default: Any = None

    @field_validator("transform")
    @classmethod
    def _known_transform(cls, name: str) -> str:
        if name not in TRANSFORMS:
            message = f"unknown transform {name!r}; known: {', '.join(sorted(TRANSFORMS))}"
            raise ValueError(message)
        return name


class EntityMapping(_Strict):
    """How one provider object becomes one shard type."""

    shard_type: str = Field(alias="shardType")
    fields: list[FieldMapping]
    text: list[str] = Field(default_factory=list)

    @field_validator("shard_type")
    @classmethod
    def _known_type(cls, name: str) -> str:
        if name not in SHARD_TYPES:
            message = f"unknown shard type {name!r}; known: {', '.join(SHARD_TYPES)}"
            raise ValueError(message)
        return name


class ProviderMapping(_Strict):
    """Every object of one provider that maps to a shard."""

    provider: str
    entities: dict[str, EntityMapping]
    mode: Literal["replace", "extend"] = "replace"

    def entity(self, entity_type: str) -> EntityMapping | None:
        """The mapping of an object name, matched without regard to case."""
        wanted = entity_type.casefold()
        for name, mapping in self.entities.items():
            if name.casefold() == wanted:
                return mapping
        return None


def load_mapping_file(path: Path | str, text: str | None = None) -> ProviderMapping:
    """Read and validate one mapping file; a bad file names itself, the entry and the problem."""
    try:
        raw = yaml.safe_load(text if text is not None else Path(path).read_text(encoding="utf-8"))
        return ProviderMapping.model_validate(raw)
    except (OSError, yaml.YAMLError) as e:
        message = f"mapping file {path}: {e}"
        raise ConfigurationError(message) from e
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        message = f"mapping file {path}: {problems}"
        raise ConfigurationError(message) from e


@cache
def shipped_mappings() -> dict[str, ProviderMapping]:
    """The mappings that ship with the processors, by provider."""
    folder = resources.files("mappings") / "providers"
    found = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".yaml"):
            mapping = load_mapping_file(f"mappings/providers/{entry.name}", entry.read_text())
            found[mapping.provider] = mapping
    return found


def map_crm_event(event: RawEvent, mappings: dict[str, ProviderMapping]) -> ShardDraft:
    """The shard draft of one raw CRM event; `MappingError` when it cannot be mapped."""
    entity_type = event.crm_entity_type or ""
    provider = mappings.get(event.provider)
    if provider is None:
        message = f"no CRM mapping for provider {event.provider!r}"
        raise MappingError(message)
    entity = provider.entity(entity_type)
    if entity is None:
        message = f"no {event.provider} mapping for entity type {entity_type!r}"
        raise MappingError(message)
    structured = _map_fields(event, entity)
    validate_structured_data(entity.shard_type, structured)
    text = "\n\n".join(str(event.payload[f]) for f in entity.text if event.payload.get(f))
    return ShardDraft(
        id=shard_id(event.tenant_id, event.provider, entity_type, event.external_id),
        tenant_id=event.tenant_id,
        shard_type=entity.shard_type,
        schema_version=definition(entity.shard_type).schema_version,
        structured_data=structured,
        unstructured_data={"text": text} if text else {},
        source=ShardSource(
            provider=event.provider,
            integration_id=event.integration_id,
            entity_type=entity_type,
            external_id=event.external_id,
            event_id=event.event_id,
            sync_task_id=event.sync_task_id,
            occurred_at=event.occurred_at,
        ),
    )


def _map_fields(event: RawEvent, entity: EntityMapping) -> dict[str, Any]:
    structured: dict[str, Any] = {}
    for field in entity.fields:
        sources = field.source if isinstance(field.source, list) else [field.source]
        values = [_lookup(event.payload, s) for s in sources]
        value = values if isinstance(field.source, list) else values[0]
        ctx = TransformContext(event.tenant_id, event.provider, field.options)
        try:
            result = apply_transform(field.transform, value, ctx)
        except MappingError as e:
            message = f"field {field.target} from {field.source}: {e}"
            raise MappingError(message) from e
        if result is None:
            result = field.default
        if result is None and field.required:
            message = f"required field {field.target} (from {field.source}) is missing"
            raise MappingError(message)
        if result is not None:
            structured[field.target] = result
    return structured


def _lookup(payload: dict[str, Any], path: str) -> Any:
    """A dotted path into the record: `Owner.Email`, `properties.dealname`."""
    value: Any = payload
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
