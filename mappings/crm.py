"""Field mappings as data, and how a CRM record becomes a shard draft through one.

A source is a path into the provider's record (the syntax is `parse_path`'s); a field
with several sources hands the transform a list, or with `coalesce: true` the first
value that is not blank. A record that maps to `deleted: true` (a tombstone) need not
carry its required fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from core.exceptions import ConfigurationError, MappingError
from core.html import html_to_text
from mappings.transforms import (
    REFERENCE_TRANSFORMS,
    TRANSFORMS,
    Transform,
    TransformContext,
    apply_transform,
)
from shards.ids import shard_id
from shards.model import ShardDraft, ShardSource
from shards.types import SHARD_TYPES, definition, validate_structured_data
from streams.models import RawEvent

__all__ = [
    "EntityMapping",
    "FieldMapping",
    "ProviderMapping",
    "external_field",
    "load_mapping_file",
    "lookup",
    "map_crm_event",
    "parse_path",
    "shipped_mappings",
]

#: One step of a path: a key (or list index) and whether to collect across a list.
PathStep = tuple[str, bool]

T = TypeVar("T")

_INDEX: Final = re.compile(r"^-?\d+$")
_BLANK: Final[tuple[Any, ...]] = (None, "", [])


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
    coalesce: bool = False

    @field_validator("source")
    @classmethod
    def _valid_paths(cls, source: str | list[str]) -> str | list[str]:
        for path in source if isinstance(source, list) else [source]:
            parse_path(path)
        return source

    @model_validator(mode="after")
    def _coalesce_needs_sources(self) -> FieldMapping:
        if self.coalesce and not isinstance(self.source, list):
            message = "coalesce needs a list of sources"
            raise ValueError(message)
        return self

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
    #: The `text` paths whose value is HTML (HubSpot's rich-text `hs_task_body`): read as
    #: readable text, without tags.
    html: list[str] = Field(default_factory=list)

    @field_validator("text", "html")
    @classmethod
    def _valid_text_paths(cls, paths: list[str]) -> list[str]:
        for path in paths:
            parse_path(path)
        return paths

    @model_validator(mode="after")
    def _html_is_text(self) -> EntityMapping:
        stray = [p for p in self.html if p not in self.text]
        if stray:
            message = f"html paths must be text paths too: {', '.join(stray)}"
            raise ValueError(message)
        return self

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
        return _entities_of(self).get(entity_type.casefold())


#: each provider mapping's entities by case-folded name (`_compiled`): the loop over its
#: entities was 1.6 µs of every CRM record
_ENTITIES: dict[int, tuple[object, dict[str, EntityMapping]]] = {}


def _entities_of(provider: ProviderMapping) -> dict[str, EntityMapping]:
    def folded() -> dict[str, EntityMapping]:
        found: dict[str, EntityMapping] = {}
        for name, mapping in provider.entities.items():
            found.setdefault(name.casefold(), mapping)  # the first of names equal but case
        return found

    return _compiled(_ENTITIES, provider, folded)


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
    texts = (_text(event.payload, path, html=path in entity.html) for path in entity.text)
    text = "\n\n".join(t for t in texts if t)
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


def _text(payload: dict[str, Any], path: str, *, html: bool) -> str:
    value = lookup(payload, path)
    if value in _BLANK:
        return ""
    return html_to_text(str(value))[0] if html else str(value)


def _map_fields(event: RawEvent, entity: EntityMapping) -> dict[str, Any]:
    structured: dict[str, Any] = {}
    missing: list[FieldMapping] = []
    payload = event.payload
    plan = _plan_of(entity)
    for step, ctx in zip(plan.fields, plan.contexts(event.tenant_id, event.provider), strict=True):
        field = step.field
        if step.coalesce:
            value = next((v for v in (r(payload) for r in step.readers) if v not in _BLANK), None)
        elif step.many:
            value = [read(payload) for read in step.readers]
        else:
            value = step.readers[0](payload)
        try:
            result = step.transform(value, ctx)
        except MappingError as e:
            message = f"field {field.target} from {field.source}: {e}"
            raise MappingError(message) from e
        if result is None:
            result = field.default
        if result is None and field.required:
            missing.append(field)
        if result is not None:
            structured[field.target] = result
            if step.keeps_ids:
                _keep_provider_ids(structured, field, value, ctx)
    if missing and structured.get("deleted") is not True:
        first = missing[0]
        message = f"required field {first.target} (from {first.source}) is missing"
        raise MappingError(message)
    return structured


@dataclass(frozen=True, slots=True)
class _FieldStep:
    """One field mapping, ready to run: its sources' readers and its transform."""

    field: FieldMapping
    readers: tuple[Callable[[Any], Any], ...]
    many: bool
    coalesce: bool
    transform: Transform
    keeps_ids: bool


class _Plan:
    """An entity mapping compiled once (issue 15: mapping was a fifth of a CRM worker's
    time): each source path a reader, each transform a function, and the transform
    contexts of a (tenant, provider) made once."""

    def __init__(self, entity: EntityMapping) -> None:
        self.fields = tuple(
            _FieldStep(
                field=f,
                readers=tuple(_reader(p) for p in (f.source if isinstance(f.source, list)
                                                   else [f.source])),
                many=isinstance(f.source, list),
                coalesce=f.coalesce,
                transform=TRANSFORMS[f.transform],
                keeps_ids=f.transform in REFERENCE_TRANSFORMS or f.transform == "contact_roles",
            )
            for f in entity.fields
        )  # fmt: skip
        self._contexts: dict[tuple[str, str], tuple[TransformContext, ...]] = {}

    def contexts(self, tenant_id: str, provider: str) -> tuple[TransformContext, ...]:
        """Each field's transform context for records of this tenant and provider."""
        key = (tenant_id, provider)
        found = self._contexts.get(key)
        if found is None:
            if len(self._contexts) >= _MAX_CONTEXTS:
                self._contexts.clear()
            found = tuple(
                TransformContext(tenant_id, provider, f.field.options) for f in self.fields
            )
            self._contexts[key] = found
        return found


#: (tenant, provider) pairs whose contexts a plan keeps
_MAX_CONTEXTS: Final = 10_000
#: mappings a compiled cache keeps (`_compiled`)
_MAX_COMPILED: Final = 10_000
_PLANS: dict[int, tuple[object, _Plan]] = {}


def _plan_of(entity: EntityMapping) -> _Plan:
    return _compiled(_PLANS, entity, lambda: _Plan(entity))


def _compiled(cache: dict[int, tuple[object, T]], mapping: object, build: Callable[[], T]) -> T:
    """What `build` makes of `mapping`, made once per mapping object: kept by its identity
    (the object kept beside it, so a new object at a freed address is not taken for it),
    at most `_MAX_COMPILED` (tenants' overrides reloaded many times)."""
    found = cache.get(id(mapping))
    if found is None or found[0] is not mapping:
        if len(cache) >= _MAX_COMPILED:
            cache.clear()
        found = cache[id(mapping)] = (mapping, build())
    return found[1]


def _reader(path: str) -> Callable[[Any], Any]:
    """`lookup` of one path as a function; plain keys read straight from dicts."""
    steps = parse_path(path)
    if any(each for _, each in steps) or any(_INDEX.match(key) for key, _ in steps):
        return lambda payload: _walk(payload, steps)
    keys = tuple(key for key, _ in steps)

    def read(payload: Any) -> Any:
        value = payload
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return read


def external_field(target: str) -> str:
    """Where a reference field's provider id goes: `accountId` → `accountExternalId`,
    `contactIds` → `contactExternalIds`, `parentId` → `parentExternalId`."""
    for suffix in ("Ids", "Id"):
        if target.endswith(suffix) and len(target) > len(suffix):
            return f"{target[: -len(suffix)]}External{suffix}"
    return f"{target}ExternalId"


def _keep_provider_ids(
    structured: dict[str, Any], field: FieldMapping, value: Any, ctx: TransformContext
) -> None:
    """Beside each reference (a shard id), the provider's id of the record it names.

    The same transform picks the same record (a polymorphic lookup's id of the wanted
    type, a list without repeats), so the two stand in step: `accountIds[i]` is the shard
    of `accountExternalIds[i]`; a contact role carries `contactExternalId`.
    """
    raw = apply_transform(field.transform, value, replace(ctx, provider_ids=True))
    if field.transform == "contact_roles":
        for entry, provider in zip(structured[field.target], raw or [], strict=True):
            entry["contactExternalId"] = provider["contactId"]
    elif raw is not None:
        structured[external_field(field.target)] = raw


@cache
def parse_path(path: str) -> tuple[PathStep, ...]:
    """The steps of a source path; `ValueError` naming what is wrong with it.

    - `properties.dealname`: keys separated by dots.
    - `associations.companies.results.0.id`: a whole-number step indexes a list
      (`-1` is the last element).
    - `associations.contacts.results[].id`: `[]` after a key takes every element of that
      list and follows the rest of the path in each, giving a list (None where an
      element lacks it; a second `[]` flattens).
    - `_ownerid_value@OData.Community.Display.V1.FormattedValue`, `@odata.etag`: from an
      `@` to the end is an OData annotation, part of the last key (dots and all).
    """
    head, at, annotation = path.partition("@")
    parts = head.split(".") if head else []
    if at:
        if parts and parts[-1]:
            parts[-1] += f"@{annotation}"
        else:
            parts[-1:] = [f"@{annotation}"]
    steps: list[PathStep] = []
    for part in parts:
        if "@" in part:  # an annotated key is taken whole
            steps.append((part, False))
            continue
        each = part.endswith("[]")
        key = part[:-2] if each else part
        if not key or "[" in key or "]" in key:
            message = f"bad source path {path!r}: step {part!r}"
            raise ValueError(message)
        steps.append((key, each))
    if not steps:
        message = f"bad source path {path!r}: empty"
        raise ValueError(message)
    return tuple(steps)


def lookup(payload: dict[str, Any], path: str) -> Any:
    """The value at a source path in a record (see `parse_path`); None when absent."""
    return _walk(payload, parse_path(path))


def _walk(value: Any, steps: tuple[PathStep, ...]) -> Any:
    for i, (key, each) in enumerate(steps):
        value = _step(value, key)
        if each:
            if not isinstance(value, list):
                return None
            rest = steps[i + 1 :]
            nested = any(e for _, e in rest)
            collected: list[Any] = []
            for item in value:
                found = _walk(item, rest)
                if nested and isinstance(found, list):
                    collected.extend(found)
                else:
                    collected.append(found)
            return collected
    return value


def _step(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return value.get(key)
    if isinstance(value, list) and _INDEX.match(key):
        index = int(key)
        return value[index] if -len(value) <= index < len(value) else None
    return None
