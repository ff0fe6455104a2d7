"""Per-tenant, per-integration changes to the shipped CRM mappings (CONTRACT §7 `mappings`).

A tenant's `mappings` entry, keyed by integration id:

```yaml
mappings:
  int-hubspot-1:
    provider: hubspot
    entities:
      deals:
        mode: extend            # default: add fields, or replace those with the same target
        fields:
          - {source: properties.hs_forecast_amount, target: forecastAmount, transform: number}
      tickets:
        mode: replace           # the whole entity; shardType and fields required
        shardType: Opportunity
        fields: [...]
```

`parse_overrides` validates once when the tenant file is read; `effective_mappings` is
pure and cheap, and its result is what `map_crm_event` takes for that integration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from core.exceptions import ConfigurationError
from core.validation import describe_validation_error
from mappings.crm import EntityMapping, FieldMapping, ProviderMapping, shipped_mappings
from shards.types import SHARD_TYPES

__all__ = [
    "EntityOverride",
    "IntegrationOverride",
    "Overrides",
    "effective_mappings",
    "parse_overrides",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class EntityOverride(_Strict):
    """A change to one provider object's mapping."""

    mode: Literal["extend", "replace"] = "extend"
    shard_type: str | None = Field(default=None, alias="shardType")
    fields: list[FieldMapping] = Field(default_factory=list)
    text: list[str] | None = None
    html: list[str] | None = None

    @model_validator(mode="after")
    def _complete(self) -> EntityOverride:
        if self.shard_type is not None and self.shard_type not in SHARD_TYPES:
            message = f"unknown shard type {self.shard_type!r}; known: {', '.join(SHARD_TYPES)}"
            raise ValueError(message)
        if self.mode == "replace" and (self.shard_type is None or not self.fields):
            message = "mode replace needs shardType and fields (the whole entity)"
            raise ValueError(message)
        stray = [p for p in self.html or [] if p not in (self.text or [])]
        if stray:
            message = f"html paths must be among this override's text paths: {', '.join(stray)}"
            raise ValueError(message)
        return self


class IntegrationOverride(_Strict):
    """The changes of one integration: which provider it is, and per object."""

    provider: str = Field(min_length=1)
    entities: dict[str, EntityOverride] = Field(default_factory=dict)


_ADAPTER: TypeAdapter[dict[str, IntegrationOverride]] = TypeAdapter(dict[str, IntegrationOverride])


@dataclass(frozen=True, slots=True)
class Overrides:
    """One tenant's overrides, by integration id."""

    integrations: Mapping[str, IntegrationOverride] = field(default_factory=dict)

    def of(self, integration_id: str) -> IntegrationOverride | None:
        """The overrides of one integration, if it has any."""
        return self.integrations.get(integration_id)


def parse_overrides(raw: dict[str, Any] | None, source: str) -> Overrides:
    """Validate a tenant's `mappings`; a bad entry names `source`, its path and the problem.

    An `extend` of an object the provider's shipped mapping lacks needs `shardType`.
    """
    if raw is None:
        return Overrides()
    if not isinstance(raw, dict):
        message = f"mapping overrides {source}: expected a mapping by integration id"
        raise ConfigurationError(message)
    try:
        integrations = _ADAPTER.validate_python(raw)
    except ValidationError as e:
        problems = describe_validation_error(e, root="(overrides)")
        message = f"mapping overrides {source}: {problems}"
        raise ConfigurationError(message) from e
    shipped = shipped_mappings()
    for integration_id, override in integrations.items():
        for name, entity in override.entities.items():
            problem = _unanchored(shipped.get(override.provider), name, entity)
            if problem:
                message = f"mapping overrides {source}: {integration_id}.entities.{name}: {problem}"
                raise ConfigurationError(message)
    return Overrides(integrations)


def effective_mappings(
    shipped: dict[str, ProviderMapping], overrides: Overrides, integration_id: str
) -> dict[str, ProviderMapping]:
    """The mappings for one integration: `shipped` with that integration's overrides applied.

    `shipped` itself when the integration has none. `extend` adds fields, or replaces
    those with the same target in place, and appends `text` and `html`; `replace` swaps
    the whole object. Object names match without regard to case, as in
    `ProviderMapping.entity`.
    """
    override = overrides.of(integration_id)
    if override is None or not override.entities:
        return shipped
    base = shipped.get(override.provider)
    entities = dict(base.entities) if base is not None else {}
    for name, change in override.entities.items():
        key = next((k for k in entities if k.casefold() == name.casefold()), name)
        current = entities.get(key)
        problem = _unanchored(base, name, change)
        if problem:
            message = f"mapping overrides of {integration_id}: entities.{name}: {problem}"
            raise ConfigurationError(message)
        entities[key] = _apply(current, change)
    if base is None:
        provider = ProviderMapping(provider=override.provider, entities=entities)
    else:
        provider = base.model_copy(update={"entities": entities})
    return {**shipped, override.provider: provider}


def _apply(current: EntityMapping | None, change: EntityOverride) -> EntityMapping:
    if change.mode == "replace" or current is None:
        return EntityMapping(
            shardType=change.shard_type or "",
            fields=change.fields,
            text=change.text or [],
            html=change.html or [],
        )
    fields = list(current.fields)
    for new in change.fields:
        at = next((i for i, f in enumerate(fields) if f.target == new.target), None)
        if at is None:
            fields.append(new)
        else:
            fields[at] = new
    text = current.text + [t for t in change.text or [] if t not in current.text]
    html = current.html + [t for t in change.html or [] if t not in current.html]
    return EntityMapping(
        shardType=change.shard_type or current.shard_type, fields=fields, text=text, html=html
    )


def _unanchored(base: ProviderMapping | None, name: str, change: EntityOverride) -> str | None:
    """Why an override cannot apply to what ships, or None when it can."""
    if change.mode == "replace" or change.shard_type is not None:
        return None
    if base is None or base.entity(name) is None:
        provider = base.provider if base is not None else "the provider"
        return f"{provider} ships no mapping of {name!r} to extend; give shardType or mode replace"
    return None
