"""The shard store interface; the embedded SQLite store and Cosmos DB are siblings."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shards.model import Link, Shard, ShardDraft, WriteOutcome
from shards.suggestions import Decision, SuggestedLink
from shards.types import ShardTypeDefinition

__all__ = [
    "FIELD_PATH",
    "MAX_CURSOR_CHARS",
    "LinkingWrite",
    "LinkingWritten",
    "Page",
    "ShardStore",
    "ShardView",
    "decode_cursor",
    "encode_cursor",
    "view_of",
    "write_linking_stepwise",
]

#: A queryable field: `structuredData.email`, `source.externalId`, `shardType` ...
FIELD_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a query; `continuation` fetches the next, None at the end."""

    items: list[Shard]
    continuation: str | None


@dataclass(frozen=True, slots=True)
class LinkingWrite:
    """What one linking evaluation of an activity writes (`ShardStore.write_linking`)."""

    tenant_id: str
    shard_id: str
    #: what the evaluation looked at (`put_link_context`)
    looked_at: Mapping[str, str]
    #: the activity with its new links, written only if the stored one is still at its
    #: etag (the version the evaluation read); None: its links stay as they are
    relinked: Shard | None
    #: the suggestions it makes (`put_suggestion`)
    suggestions: Sequence[SuggestedLink]
    #: targets of the pending suggestions it keeps; the others it withdraws
    keep: frozenset[str]
    at: datetime
    #: the activity as the evaluation read it, when `relinked` (a store may work out what
    #: the write replaces from it instead of reading it again)
    read: Shard | None = None

    def __post_init__(self) -> None:
        if self.relinked is not None and self.relinked.etag is None:
            message = "relinked without the etag it was decided from"
            raise ValueError(message)

    def relink(self) -> tuple[Shard, str] | None:
        """The activity to write and the etag the stored one must still have; None."""
        if self.relinked is None or self.relinked.etag is None:
            return None
        return self.relinked, self.relinked.etag


@dataclass(frozen=True, slots=True)
class ShardView:
    """Part of a stored shard (`ShardStore.find_views`): its id and type, the structured
    fields asked for (those it has, not null), when its record last changed at the
    provider, and its links."""

    id: str
    shard_type: str
    structured_data: dict[str, Any]
    source_occurred_at: datetime | None
    links: list[Link]


def view_of(shard: Shard, fields: Sequence[str]) -> ShardView:
    """The view of a whole shard with `fields` of its structured data."""
    data = shard.structured_data
    return ShardView(
        shard.id,
        shard.shard_type,
        {f: data[f] for f in fields if data.get(f) is not None},
        shard.source.occurred_at,
        list(shard.links),
    )


@dataclass(frozen=True, slots=True)
class LinkingWritten:
    """What `write_linking` changed."""

    #: the activity as written; None when `relinked` was None
    shard: Shard | None
    #: suggestions that are new, or raised again after a withdrawal
    raised: list[SuggestedLink]
    withdrawn: list[SuggestedLink]


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

    async def get_many(self, tenant_id: str, shard_ids: Iterable[str]) -> dict[str, Shard]:
        """The stored shards among `shard_ids` of a tenant, by id (absent ones left out)."""

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

    async def find_views(
        self,
        tenant_id: str,
        shard_type: str,
        key: str,
        values: Iterable[str],
        fields: Sequence[str],
    ) -> list[ShardView]:
        """`find`, each shard as its view with `fields` of its structured data: what
        linking reads of a thread's other messages (their times and links), without
        reading whole documents where the store can leave them."""

    async def get_views(
        self, tenant_id: str, shard_ids: Iterable[str], fields: Sequence[str]
    ) -> dict[str, ShardView]:
        """`get_many`, each shard as its view with `fields` of its structured data (what
        linking reads of the CRM records a batch changed, without whole documents)."""

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

    async def withdraw_suggestions(
        self, tenant_id: str, source_shard_id: str, keep: Collection[str], at: datetime
    ) -> list[SuggestedLink]:
        """Withdraw the source's pending suggestions raised by linking whose target is not
        in `keep`; those."""

    async def put_link_context(
        self, tenant_id: str, source_shard_id: str, seen: Mapping[str, str]
    ) -> None:
        """Record what an activity's last linking looked at (replacing the last): the CRM
        records and earlier thread messages, each with a digest of what it saw of it."""

    def held_writes(self) -> AbstractContextManager[None]:
        """A block whose small writes (of the task that runs it) the store may commit
        together, durable by the block's end; raises `core.exceptions.WritesLostError` at
        the end when some were lost (do the block's work again). Stores that commit each
        write at once make it a plain block."""

    async def write_linking(self, write: LinkingWrite) -> LinkingWritten:
        """One evaluation's link context, links, suggestions and withdrawals: in one
        transaction where the store has them across records (a changed etag raises
        `ConcurrencyError` and nothing is written), else one after another: context,
        links, suggestions, withdrawals (each idempotent: an evaluation replayed after a
        crash between them writes the rest)."""

    async def shard_types_present(self, tenant_id: str, shard_types: Collection[str]) -> set[str]:
        """Which of `shard_types` the tenant has at least one shard of."""

    async def link_context_sources(self, tenant_id: str, target_ids: Collection[str]) -> list[str]:
        """Activities whose last linking looked at any of these records: a change of one of
        them (even of a value that no longer matches) re-evaluates them."""

    async def link_readers(self, tenant_id: str, target_id: str) -> dict[str, str]:
        """Activities whose last linking looked at `target_id`, and what they saw of it."""

    async def decisions_for(self, tenant_id: str, source_shard_id: str) -> dict[str, str]:
        """Target id → decided status (approved, rejected) for one source shard."""

    async def get_shard_type(self, type_id: str) -> ShardTypeDefinition | None:
        """A stored shard type, or None."""

    async def put_shard_type(self, definition: ShardTypeDefinition) -> None:
        """Create or replace a shard type."""


#: What every cursor starts with (inside the encoding): a token without it is not ours.
_CURSOR_TAG = b"c1:"
_CURSOR_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
#: Longer tokens are refused unread (ids are uuids; this leaves room for any id scheme).
MAX_CURSOR_CHARS = 1024


def encode_cursor(last_id: str) -> str:
    """An opaque continuation token for the page after `last_id`."""
    return _b64(_CURSOR_TAG + last_id.encode())


def decode_cursor(token: str) -> str:
    """The last id a continuation token names; ValueError when it is not one of ours.

    Only what `encode_cursor` produces is taken: unpadded URL-safe base64 in its one
    canonical spelling, of the tag and a UTF-8 id. A lenient decoder would read most
    garbage as some id (dropping the characters outside the alphabet, perhaps all) and
    answer a page instead of saying the cursor is wrong. An id that no longer exists is
    fine: the page starts after where it would be.
    """
    message = "not a continuation token"
    if len(token) > MAX_CURSOR_CHARS or not _CURSOR_TOKEN.fullmatch(token):
        raise ValueError(message)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except binascii.Error:
        raise ValueError(message) from None
    if _b64(raw) != token or not raw.startswith(_CURSOR_TAG):
        raise ValueError(message)  # not canonical (trailing bits), or not tagged
    try:
        last_id = raw[len(_CURSOR_TAG) :].decode()
    except UnicodeDecodeError:
        raise ValueError(message) from None
    if not last_id:
        raise ValueError(message)
    return last_id


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def write_linking_stepwise(store: ShardStore, write: LinkingWrite) -> LinkingWritten:
    """`ShardStore.write_linking` as one write after another, for a store without
    transactions across records."""
    await store.put_link_context(write.tenant_id, write.shard_id, write.looked_at)
    shard = None
    if (relink := write.relink()) is not None:
        shard = await store.replace(relink[0], if_match=relink[1])
    raised = [s for s in write.suggestions if await store.put_suggestion(s)]
    withdrawn = await store.withdraw_suggestions(
        write.tenant_id, write.shard_id, write.keep, write.at
    )
    return LinkingWritten(shard, raised, withdrawn)
