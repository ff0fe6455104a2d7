"""Suggested links: uncertain links waiting for a person, and what people decided."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = ["Decision", "SuggestedLink", "SuggestionStatus", "suggestion_id"]

#: `withdrawn`: linking no longer proposes it (a re-evaluation changed its mind); it is
#: raised again, pending, if linking proposes it later.
SuggestionStatus = Literal["pending_review", "approved", "rejected", "withdrawn"]
Decision = Literal["changed", "unchanged", "conflict"]

_NAMESPACE = uuid.UUID("0b6f3f5e-4f7e-4e0c-9d55-6f3f0c2a7b11")


def suggestion_id(tenant_id: str, source_shard_id: str, target_shard_id: str) -> str:
    """The same source and target always give the same suggestion (it is raised once)."""
    return str(uuid.uuid5(_NAMESPACE, f"{tenant_id}\x1f{source_shard_id}\x1f{target_shard_id}"))


class SuggestedLink(BaseModel):
    """One suggestion: a source communication, a proposed target, the evidence, alternatives."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    id: str
    tenant_id: str
    source_shard_id: str
    source_shard_type: str
    target_shard_id: str
    target_shard_type: str
    target_name: str | None = None
    confidence: float = Field(ge=0, le=1)
    method: str
    evidence: list[dict[str, Any]] = Field(default_factory=list)
    alternatives: list[dict[str, Any]] = Field(default_factory=list)
    reason: str = ""
    source_summary: dict[str, Any] = Field(default_factory=dict)
    status: SuggestionStatus = "pending_review"
    #: who raised it: "linking" for the linker's own (only those can it withdraw)
    raised_by: str | None = None
    created_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    decision_reason: str | None = None

    def to_doc(self) -> dict[str, Any]:
        """The JSON document, camelCase keys."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
