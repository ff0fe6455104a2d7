"""The shard store interface; the embedded SQLite store and Cosmos DB are siblings."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shards.model import Shard, ShardDraft, WriteOutcome
from shards.suggestions import Decision, SuggestedLink
from shards.types import ShardTypeDefinition

__all__ = ["FIELD_PATH", "Page", "ShardStore", "decode_cursor", "encode_cursor"]

#: A queryable field: `structuredData.email`, `source.externalId`, `shardType` ...
FIELD_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a query; `continuation` fetches the next, None at the end."""

    items: list[Shard]
    continuation: str | None


class ShardStore(Protocol):
    """What the processors need from a shard store.

    Every read and write is scoped by tenant (the partition key). `upsert_many`
    applies `shards.model.merge` to each draft atomically per shard; `replace`
    is an optimistic write that fails with `ConcurrencyError` when the shard's
    etag changed since it was read.
    """

    async def start(self) -> None:
        """Open connections and create what the store needs."""

    async def stop(self) -> None:
        """Close; safe to call twice."""

    async def ping(self) -> None:
        """Return when the store answers, else raise `StoreError`."""

    async def get(self, tenant_id: str, shard_id: str) -> Shard | None:
        """One shard of a tenant, or None."""

    async def upsert_many(self, drafts: Sequence[ShardDraft]) -> list[WriteOutcome]:
        """Merge each draft into its shard (idempotent), in one round trip where possible."""

    async def replace(self, shard: Shard, *, if_match: str) -> Shard:
        """Write a whole shard if its stored etag is still `if_match`; return it, new etag."""

    async def query(
        self,
        tenant_id: str,
        *,
        shard_type: str | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int = 100,
        continuation: str | None = None,
    ) -> Page:
        """A tenant's shards, optionally of one type and with fields equal to values."""

    async def find(
        self, tenant_id: str, shard_type: str, key: str, values: Iterable[str]
    ) -> list[Shard]:
        """Shards of a type whose look-up key (`shards.keys.index_keys`) has one of `values`."""

    async def tenant_ids(self, shard_type: str) -> list[str]:
        """Tenants that have shards of `shard_type`."""

    async def put_suggestion(self, suggestion: SuggestedLink) -> bool:
        """Store a suggestion; True when new; a decided one is never changed."""

    async def get_suggestion(self, tenant_id: str, suggestion_id: str) -> SuggestedLink | None:
        """One suggestion of a tenant, or None."""

    async def list_suggestions(
        self,
        tenant_id: str,
        *,
        status: str | None = None,
        target_shard_id: str | None = None,
        source_shard_type: str | None = None,
        limit: int = 50,
        continuation: str | None = None,
    ) -> tuple[list[SuggestedLink], str | None]:
        """A tenant's suggestions, one page, and the cursor of the next."""

    async def decide_suggestion(
        self,
        tenant_id: str,
        suggestion_id: str,
        status: str,
        *,
        user_id: str,
        reason: str | None,
        at: datetime,
    ) -> tuple[Decision, SuggestedLink] | None:
        """Record a person's decision atomically."""

    async def decisions_for(self, tenant_id: str, source_shard_id: str) -> dict[str, str]:
        """Target id → decided status for one source shard."""

    async def get_shard_type(self, type_id: str) -> ShardTypeDefinition | None:
        """A stored shard type, or None."""

    async def put_shard_type(self, definition: ShardTypeDefinition) -> None:
        """Create or replace a shard type."""


def encode_cursor(last_id: str) -> str:
    """An opaque continuation token for the page after `last_id`."""
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> str:
    """The last id a continuation token names; ValueError when it is not one of ours."""
    padded = token + "=" * (-len(token) % 4)
    return base64.urlsafe_b64decode(padded.encode()).decode()
