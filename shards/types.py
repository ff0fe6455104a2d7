"""Shard types: their versioned JSON schemas, validation, and ensuring them in a store."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs

from core.exceptions import ShardValidationError
from shards.kinds import SHARD_TYPES

__all__ = [
    "SHARD_TYPES",
    "ShardTypeDefinition",
    "definition",
    "definitions",
    "validate_structured_data",
]


@dataclass(frozen=True, slots=True)
class ShardTypeDefinition:
    """One shard type: name, schema version and the JSON schema of `structuredData`."""

    id: str
    name: str
    description: str
    schema_version: int
    schema: dict[str, Any] = field(hash=False)

    def to_doc(self) -> dict[str, Any]:
        """The definition as stored."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "schemaVersion": self.schema_version,
            "schema": self.schema,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> ShardTypeDefinition:
        """A definition from its stored document."""
        return cls(
            id=doc["id"],
            name=doc["name"],
            description=doc.get("description", ""),
            schema_version=int(doc["schemaVersion"]),
            schema=doc["schema"],
        )


@cache
def definitions() -> dict[str, ShardTypeDefinition]:
    """The shipped definitions, by type id."""
    folder = resources.files("shards") / "schemas"
    found = {}
    for name in SHARD_TYPES:
        doc = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        found[name] = ShardTypeDefinition.from_doc(doc)
    return found


def definition(shard_type: str) -> ShardTypeDefinition:
    """The shipped definition of one type."""
    return definitions()[shard_type]


@cache
def _validator(shard_type: str) -> jsonschema_rs.Validator:
    # jsonschema-rs (Rust): ~1 µs a shard against 16-19 µs for fastjsonschema's compiled
    # Python (a sixth of normalising a chat message; docs/decisions.md), formats checked
    # as draft 7 asks; it also rejects an invalid schema.
    return jsonschema_rs.validator_for(
        definition(shard_type).schema, validate_formats=True, offline=True
    )


def validate_structured_data(shard_type: str, data: dict[str, Any]) -> None:
    """Raise `ShardValidationError` naming the first field that breaks the type's schema."""
    try:
        _validator(shard_type).validate(data)
    except jsonschema_rs.ValidationError as e:
        field = ".".join(str(p) for p in e.instance_path) or "(root)"
        message = f"{shard_type} does not satisfy its schema: {field}: {e.message}"
        raise ShardValidationError(message) from e
