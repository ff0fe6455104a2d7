"""The production shard store: Azure Cosmos DB (NoSQL API) on the async `azure-cosmos` client.

Same semantics as `shards.sqlite`: every write is a read-merge-write guarded by the
item's etag (`If-Match`, retried on 412), so two workers merging one shard never lose
an update. Partitioning and its request-unit arithmetic: docs/decisions.md.

Containers (created at start with their indexing policies):

- `shards`, partition key `/pk` = `<tenantId>|<bucket>`, the bucket a hash of the shard
  id (`SHARD_BUCKETS` of them): a tenant spreads over that many logical partitions, and
  a shard id alone gives its partition, so `get` is a point read. The look-up keys
  (`shards.keys.index_keys`) live on the document (`lookup`), written with it atomically.
- `suggested_links`, partition key `/tenantId` (suggestions are few per tenant).
- `link_context`, partition key `/pk`: one item per (record, activity that looked at
  it) in `<tenantId>|t|<record>`, and per activity the list of records it looked at in
  `<tenantId>|s|<activity>` (point reads and single-partition queries only).
- `shard_types`, partition key `/id`; `tenants`, partition key `/shardType`: which
  tenants have shards of a type (the timers' list), written once per process and pair.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext, suppress
from datetime import UTC, datetime
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import AzureError
from azure.cosmos import PartitionKey, exceptions
from azure.cosmos.aio import ContainerProxy, CosmosClient, DatabaseProxy

from core.exceptions import (
    ConcurrencyError,
    ConfigurationError,
    ShardTypeMissingError,
    StoreError,
)
from shards.keys import index_keys
from shards.model import Shard, ShardDraft, WriteOutcome, merge
from shards.store import (
    FIELD_PATH,
    LinkingWrite,
    LinkingWritten,
    Page,
    ShardView,
    decode_cursor,
    encode_cursor,
    view_of,
    write_linking_stepwise,
)
from shards.suggestions import Decision, SuggestedLink
from shards.types import ShardTypeDefinition

__all__ = ["SHARD_BUCKETS", "CosmosShardStore", "shard_partition_key"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Logical partitions per tenant in `shards`. Fixed for the life of a database: a shard's
#: partition is computed from its id, so changing it would hide every stored shard.
SHARD_BUCKETS: Final = 16
#: Values per `IN` / `ARRAY_CONTAINS` list in one query (Cosmos allows more; this keeps
#: a query's text and its request charge small).
_CHUNK: Final = 100
#: Read-merge-write rounds before a shard that keeps changing raises `ConcurrencyError`
#: (the agent's retry policy then retries the batch).
_MERGE_ATTEMPTS: Final = 8
#: Operations per transactional batch (the service's limit).
_BATCH: Final = 100
#: Bytes of documents per transactional batch: the service refuses a request over 2 MB
#: (413); this leaves room for the envelope. A larger single shard goes alone.
_BATCH_BYTES: Final = 1_500_000
#: System and store-only properties that are not part of a shard or suggestion.
_SYSTEM: Final = frozenset({"_rid", "_self", "_ts", "_attachments", "_etag", "pk", "lookup"})

_SHARDS_INDEXING: Final = {
    "indexingMode": "consistent",
    "automatic": True,
    "includedPaths": [{"path": "/*"}],
    # Bodies, extracted text and transcripts are never filtered on: not indexing them
    # is most of a large shard's write charge.
    "excludedPaths": [
        {"path": "/unstructuredData/*"},
        {"path": "/mlFields/*"},
        {"path": '/"_etag"/?'},
    ],
}
_SMALL_INDEXING: Final = {
    "indexingMode": "consistent",
    "automatic": True,
    "includedPaths": [{"path": "/*"}],
    "excludedPaths": [{"path": '/"_etag"/?'}],
}
_SUGGESTIONS_INDEXING: Final = {
    **_SMALL_INDEXING,
    "excludedPaths": [
        {"path": "/evidence/*"},
        {"path": "/alternatives/*"},
        {"path": "/sourceSummary/*"},
        {"path": '/"_etag"/?'},
    ],
}
_CONTAINERS: Final = {
    "shards": ("/pk", _SHARDS_INDEXING),
    "suggested_links": ("/tenantId", _SUGGESTIONS_INDEXING),
    "link_context": ("/pk", _SMALL_INDEXING),
    "shard_types": ("/id", _SMALL_INDEXING),
    "tenants": ("/shardType", _SMALL_INDEXING),
}


def shard_partition_key(tenant_id: str, shard_id: str) -> str:
    """The partition of a shard: its tenant and a bucket from its id."""
    digest = hashlib.blake2b(shard_id.encode(), digest_size=4).digest()
    return f"{tenant_id}|{int.from_bytes(digest) % SHARD_BUCKETS:02d}"


def _tenant_partitions(tenant_id: str) -> list[str]:
    return [f"{tenant_id}|{b:02d}" for b in range(SHARD_BUCKETS)]


class CosmosShardStore:
    """A `ShardStore` in one Cosmos DB database."""

    def __init__(
        self,
        endpoint: str,
        key: str,
        database: str,
        *,
        verify_tls: bool = True,
        throttle_retries: int = 9,
        throttle_max_wait: float = 30.0,
        concurrency: int = 32,
    ) -> None:
        self._endpoint = endpoint
        self._key = key
        self._database_name = database
        self._verify_tls = verify_tls
        self._throttle_retries = throttle_retries
        self._throttle_max_wait = throttle_max_wait
        self._concurrency = concurrency
        self._client: CosmosClient | None = None
        self._db: DatabaseProxy | None = None
        self._containers: dict[str, ContainerProxy] = {}
        self._known_types: set[str] = set()
        self._tenant_types: set[tuple[str, str]] = set()
        self._limit = asyncio.Semaphore(concurrency)

    def __repr__(self) -> str:  # never the key
        return f"CosmosShardStore({self._endpoint!r}, database={self._database_name!r})"

    @classmethod
    def from_url(
        cls,
        url: str,
        key: str,
        *,
        verify_tls: bool = True,
        throttle_retries: int = 9,
        throttle_max_wait: float = 30.0,
    ) -> CosmosShardStore:
        """`cosmos://<account host>[:port]/<database>`: the account's HTTPS endpoint."""
        parts = urlsplit(url)
        database = parts.path.strip("/")
        if parts.scheme != "cosmos" or not parts.hostname or not database or "/" in database:
            message = f"STORE_URL {url!r}: expected cosmos://<account host>[:port]/<database>"
            raise ConfigurationError(message)
        port = f":{parts.port}" if parts.port else ""
        return cls(
            f"https://{parts.hostname}{port}/",
            key,
            database,
            verify_tls=verify_tls,
            throttle_retries=throttle_retries,
            throttle_max_wait=throttle_max_wait,
        )

    async def __aenter__(self) -> CosmosShardStore:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._client is not None:
            return
        # The SDK logs every request's headers at INFO (some 20 lines a call): a
        # worker at INFO would log little else. Unless someone chose its level, warnings only.
        sdk_logger = logging.getLogger("azure.cosmos._cosmos_http_logging_policy")
        if sdk_logger.level == logging.NOTSET:
            sdk_logger.setLevel(logging.WARNING)
        # 429s: the SDK waits the server's x-ms-retry-after-ms, up to this budget, then
        # raises; we raise StoreError and the agent's retry policy retries the batch.
        client = CosmosClient(
            self._endpoint,
            credential=self._key,
            connection_verify=self._verify_tls,
            retry_throttle_total=self._throttle_retries,
            retry_throttle_backoff_max=self._throttle_max_wait,
        )
        try:
            async with _errors("open database"):
                db = await client.create_database_if_not_exists(self._database_name)
                for name, (path, indexing) in _CONTAINERS.items():
                    self._containers[name] = await db.create_container_if_not_exists(
                        name,
                        PartitionKey(path),
                        indexing_policy=indexing,  # type: ignore[arg-type]  # the SDK's hint is too narrow
                    )
        except BaseException:
            await client.close()
            self._containers.clear()
            raise
        self._client, self._db = client, db

    async def stop(self) -> None:
        client, self._client = self._client, None
        self._db = None
        self._containers.clear()
        if client is not None:
            await client.close()

    async def ping(self) -> None:
        async with _errors("ping"):
            await self._database().read()

    # --- shards ---------------------------------------------------------------------

    async def get(self, tenant_id: str, shard_id: str) -> Shard | None:
        doc = await self._read("shards", shard_id, shard_partition_key(tenant_id, shard_id))
        return _shard(doc) if doc is not None else None

    async def get_many(self, tenant_id: str, shard_ids: Iterable[str]) -> dict[str, Shard]:
        ids = list(dict.fromkeys(shard_ids))
        found = await asyncio.gather(*(self.get(tenant_id, i) for i in ids))
        return {i: shard for i, shard in zip(ids, found, strict=True) if shard is not None}

    async def upsert_many(self, drafts: Sequence[ShardDraft]) -> list[WriteOutcome]:
        if not drafts:
            return []
        await self._check_types({d.shard_type for d in drafts})
        await self._register_tenants({(d.tenant_id, d.shard_type) for d in drafts})
        # One transactional batch per partition (docs/decisions.md: measured against
        # concurrent point writes): a single-partition read of the partition's shards,
        # the merge, then creates and etag-guarded replaces, all-or-nothing per batch.
        partitions: dict[str, dict[str, list[int]]] = {}
        for i, draft in enumerate(drafts):
            pk = shard_partition_key(draft.tenant_id, draft.id)
            partitions.setdefault(pk, {}).setdefault(draft.id, []).append(i)
        now = datetime.now(UTC)
        outcomes: list[WriteOutcome | None] = [None] * len(drafts)

        async def one(pk: str, shards: dict[str, list[int]]) -> None:
            async with self._limit:
                merged = await self._merge_partition(
                    pk, {sid: [drafts[i] for i in indexes] for sid, indexes in shards.items()}, now
                )
            for sid, indexes in shards.items():
                for i, outcome in zip(indexes, merged[sid], strict=True):
                    outcomes[i] = outcome

        await _gather([one(pk, shards) for pk, shards in partitions.items()])
        return [o for o in outcomes if o is not None]

    async def _merge_partition(
        self, pk: str, drafts: dict[str, list[ShardDraft]], now: datetime
    ) -> dict[str, list[WriteOutcome]]:
        """Merge the drafts of one partition's shards; shards another writer changed in
        between (a 412 or 409 fails their batch) are read and merged again."""
        done: dict[str, list[WriteOutcome]] = {}
        pending = sorted(drafts)
        for _ in range(_MERGE_ATTEMPTS):
            stored = await self._read_partition(pk, pending)
            writes: list[_Write] = []
            merged: dict[str, list[WriteOutcome]] = {}
            for sid in pending:
                current = stored.get(sid)
                outcomes, state = [], current
                for draft in drafts[sid]:
                    outcome = merge(state, draft, now)
                    outcomes.append(outcome)
                    state = outcome.shard
                merged[sid] = outcomes
                if state is not None and any(o.persist for o in outcomes):
                    etag = None if current is None else current.etag
                    writes.append(_Write(sid, state, etag, _shard_doc(state)))
                else:
                    done[sid] = outcomes
            lost: list[str] = []
            for chunk in _batches(writes):
                etags = await self._write_batch(pk, chunk)
                if etags is None:
                    lost.extend(w.shard_id for w in chunk)
                    continue
                for w, etag in zip(chunk, etags, strict=True):
                    done[w.shard_id] = _stamped(
                        merged[w.shard_id], w.shard.model_copy(update={"etag": etag})
                    )
            if not lost:
                return done
            pending = lost  # another writer won: merge again onto what it wrote
        message = f"shards {pending[:5]} kept changing; not merged"
        raise ConcurrencyError(message)

    async def _read_partition(self, pk: str, ids: list[str]) -> dict[str, Shard]:
        """The stored shards of one partition among `ids` (single-partition queries)."""
        found: dict[str, Shard] = {}
        for start in range(0, len(ids), _CHUNK):
            params = _Params()
            sql = (
                f"SELECT * FROM c WHERE c.pk = {params.add(pk)} "  # noqa: S608  # placeholders only
                f"AND c.id IN ({params.many(ids[start : start + _CHUNK])})"
            )
            for doc in await self._query("shards", sql, params.values, partition_key=pk):
                shard = _shard(doc)
                found[shard.id] = shard
        return found

    async def _write_batch(self, pk: str, writes: list[_Write]) -> list[str] | None:
        """Creates and etag-guarded replaces in one transactional batch: the new etags, or
        None when a shard changed since it was read (nothing of the batch is written)."""
        operations: list[Any] = [
            ("create", (w.doc,))
            if w.if_match is None
            else ("replace", (w.shard_id, w.doc), {"if_match_etag": w.if_match})
            for w in writes
        ]
        try:
            async with _errors(f"write {len(writes)} shard(s)", passthrough=(404, 409, 412)):
                results = await self._container("shards").execute_item_batch(
                    operations, partition_key=pk
                )
        except exceptions.CosmosBatchOperationError as e:
            if e.status_code in (404, 409, 412):
                return None
            message = f"cosmos store: batch of {len(writes)}: HTTP {e.status_code}"
            raise StoreError(message) from e
        except exceptions.CosmosHttpResponseError:
            return None  # 404, 409, 412 (passed through): a lost race
        return [str(r["eTag"]) for r in results]

    async def replace(self, shard: Shard, *, if_match: str) -> Shard:
        return await self._write_shard(shard, if_match)

    async def _write_shard(self, shard: Shard, if_match: str | None) -> Shard:
        """Create (if_match None: fails if it exists) or replace if the etag still matches."""
        doc = _shard_doc(shard)
        container = self._container("shards")
        try:
            async with _errors(f"write shard {shard.id}", passthrough=(404, 409, 412)):
                if if_match is None:
                    stored = await container.create_item(doc)
                else:
                    stored = await container.replace_item(
                        shard.id,
                        doc,
                        etag=if_match,
                        match_condition=MatchConditions.IfNotModified,
                    )
        except exceptions.CosmosHttpResponseError as e:
            message = f"shard {shard.id} changed since it was read (etag {if_match})"
            raise ConcurrencyError(message) from e
        return _shard(stored)

    async def query(
        self,
        tenant_id: str,
        *,
        shard_type: str | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int = 100,
        continuation: str | None = None,
    ) -> Page:
        params = _Params()
        clauses = [f"c.pk IN ({params.many(_tenant_partitions(tenant_id))})"]
        clauses.append(f"c.tenantId = {params.add(tenant_id)}")
        if shard_type is not None:
            clauses.append(f"c.shardType = {params.add(shard_type)}")
        for path, value in (where or {}).items():
            if not FIELD_PATH.match(path):
                message = f"not a field path: {path!r}"
                raise ValueError(message)
            field = "c" + "".join(f'["{part}"]' for part in path.split("."))
            clauses.append(f"{field} = {params.add(value)}")
        if continuation is not None:
            clauses.append(f"c.id > {params.add(decode_cursor(continuation))}")
        sql = (
            f"SELECT TOP {int(limit) + 1} * FROM c WHERE {' AND '.join(clauses)} "  # noqa: S608  # fixed clauses, values bound
            "ORDER BY c.id"
        )
        docs = await self._query("shards", sql, params.values)
        items = [_shard(doc) for doc in docs[:limit]]
        more = len(docs) > limit and items
        return Page(items, encode_cursor(items[-1].id) if more else None)

    async def find(
        self, tenant_id: str, shard_type: str, key: str, values: Iterable[str]
    ) -> list[Shard]:
        """Shards of a type whose look-up `key` has one of `values` (the `lookup` index)."""
        wanted = sorted({f"{key}:{v}" for v in values})
        found: dict[str, Shard] = {}
        for start in range(0, len(wanted), _CHUNK):
            params = _Params()
            sql = (
                "SELECT VALUE c FROM c JOIN k IN c.lookup "  # noqa: S608  # placeholders only
                f"WHERE c.pk IN ({params.many(_tenant_partitions(tenant_id))}) "
                f"AND c.shardType = {params.add(shard_type)} "
                f"AND k IN ({params.many(wanted[start : start + _CHUNK])})"
            )
            for doc in await self._query("shards", sql, params.values):
                shard = _shard(doc)
                found[shard.id] = shard
        return list(found.values())

    async def find_views(
        self,
        tenant_id: str,
        shard_type: str,
        key: str,
        values: Iterable[str],
        fields: Sequence[str],
    ) -> list[ShardView]:
        """`find`, each shard as its view (the documents are read whole)."""
        return [view_of(s, fields) for s in await self.find(tenant_id, shard_type, key, values)]

    async def get_views(
        self, tenant_id: str, shard_ids: Iterable[str], fields: Sequence[str]
    ) -> dict[str, ShardView]:
        """`get_many`, each shard as its view (the documents are read whole)."""
        found = await self.get_many(tenant_id, shard_ids)
        return {i: view_of(s, fields) for i, s in found.items()}

    async def tenant_ids(self, shard_type: str) -> list[str]:
        docs = await self._query(
            "tenants",
            "SELECT c.id FROM c WHERE c.shardType = @t ORDER BY c.id",
            {"@t": shard_type},
            partition_key=shard_type,
        )
        return [d["id"] for d in docs]

    # --- shard types ----------------------------------------------------------------

    async def get_shard_type(self, type_id: str) -> ShardTypeDefinition | None:
        doc = await self._read("shard_types", type_id, type_id)
        return ShardTypeDefinition.from_doc(doc) if doc is not None else None

    async def put_shard_type(self, definition: ShardTypeDefinition) -> None:
        async with _errors(f"put shard type {definition.id}"):
            await self._container("shard_types").upsert_item(definition.to_doc())
        self._known_types.add(definition.id)

    async def known_shard_types(self) -> set[str]:
        """Ids of the stored shard types."""
        docs = await self._query("shard_types", "SELECT c.id FROM c", {})
        return {d["id"] for d in docs}

    async def _check_types(self, wanted: set[str]) -> None:
        if wanted <= self._known_types:
            return
        self._known_types |= await self.known_shard_types()
        missing = wanted - self._known_types
        if missing:
            message = f"shard types not in the store: {sorted(missing)}"
            raise ShardTypeMissingError(message)

    async def _register_tenants(self, pairs: set[tuple[str, str]]) -> None:
        new = pairs - self._tenant_types
        if not new:
            return
        container = self._container("tenants")

        async def put(tenant_id: str, shard_type: str) -> None:
            async with _errors(f"register tenant {tenant_id}"):
                await container.upsert_item({"id": tenant_id, "shardType": shard_type})

        # Before the shards: a tenant with shards is always listed.
        await _gather([put(*pair) for pair in new])
        self._tenant_types |= new

    # --- suggested links ------------------------------------------------------------

    async def put_suggestion(self, suggestion: SuggestedLink) -> bool:
        """Store a suggestion; True when it is new (or raised again after a withdrawal).
        A decided one is never touched."""
        for _ in range(_MERGE_ATTEMPTS):
            doc = await self._read("suggested_links", suggestion.id, suggestion.tenant_id)
            if doc is not None and doc["status"] not in ("pending_review", "withdrawn"):
                return False
            try:
                await self._write_doc(
                    "suggested_links", suggestion.to_doc(), doc.get("_etag") if doc else None
                )
            except ConcurrencyError:
                continue
            return doc is None or doc["status"] == "withdrawn"
        message = f"suggestion {suggestion.id} kept changing"
        raise ConcurrencyError(message)

    async def get_suggestion(self, tenant_id: str, suggestion_id: str) -> SuggestedLink | None:
        doc = await self._read("suggested_links", suggestion_id, tenant_id)
        return _suggestion(doc) if doc is not None else None

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
        params = _Params()
        clauses = [f"c.tenantId = {params.add(tenant_id)}"]
        for field, value in (
            ("status", status),
            ("targetShardId", target_shard_id),
            ("sourceShardType", source_shard_type),
        ):
            if value:
                clauses.append(f"c.{field} = {params.add(value)}")
        if continuation is not None:
            clauses.append(f"c.id > {params.add(decode_cursor(continuation))}")
        sql = (
            f"SELECT TOP {int(limit) + 1} * FROM c WHERE {' AND '.join(clauses)} "  # noqa: S608  # fixed clauses
            "ORDER BY c.id"
        )
        docs = await self._query("suggested_links", sql, params.values, partition_key=tenant_id)
        items = [_suggestion(d) for d in docs[:limit]]
        more = len(docs) > limit and items
        return items, encode_cursor(items[-1].id) if more else None

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
        """Approve or reject: changed, unchanged (same decision again) or conflict; None: absent."""
        for _ in range(_MERGE_ATTEMPTS):
            doc = await self._read("suggested_links", suggestion_id, tenant_id)
            if doc is None:
                return None
            current = _suggestion(doc)
            if current.status == status:
                return "unchanged", current
            if current.status != "pending_review":
                return "conflict", current
            decided = current.model_copy(
                update={
                    "status": status,
                    "decided_at": at,
                    "decided_by": user_id,
                    "decision_reason": reason,
                }
            )
            try:
                await self._write_doc("suggested_links", decided.to_doc(), doc["_etag"])
            except ConcurrencyError:
                continue  # linking withdrew it, or another person decided: look again
            return "changed", decided
        message = f"suggestion {suggestion_id} kept changing"
        raise ConcurrencyError(message)

    async def withdraw_suggestions(
        self, tenant_id: str, source_shard_id: str, keep: Collection[str], at: datetime
    ) -> list[SuggestedLink]:
        kept = set(keep)
        docs = await self._query(
            "suggested_links",
            "SELECT * FROM c WHERE c.tenantId = @t AND c.sourceShardId = @s "
            "AND c.status = 'pending_review'",
            {"@t": tenant_id, "@s": source_shard_id},
            partition_key=tenant_id,
        )
        withdrawn = []
        for doc in docs:
            current = _suggestion(doc)
            etag = doc["_etag"]
            for _ in range(_MERGE_ATTEMPTS):
                if (
                    current.status != "pending_review"
                    or current.target_shard_id in kept
                    or current.raised_by != "linking"
                ):
                    break
                gone = current.model_copy(update={"status": "withdrawn", "decided_at": at})
                try:
                    await self._write_doc("suggested_links", gone.to_doc(), etag)
                except ConcurrencyError:
                    fresh = await self._read("suggested_links", current.id, tenant_id)
                    if fresh is None:
                        break
                    current, etag = _suggestion(fresh), fresh["_etag"]
                    continue
                withdrawn.append(gone)
                break
        return withdrawn

    async def decisions_for(self, tenant_id: str, source_shard_id: str) -> dict[str, str]:
        docs = await self._query(
            "suggested_links",
            "SELECT c.targetShardId, c.status FROM c WHERE c.tenantId = @t "
            "AND c.sourceShardId = @s AND c.status IN ('approved', 'rejected')",
            {"@t": tenant_id, "@s": source_shard_id},
            partition_key=tenant_id,
        )
        return {d["targetShardId"]: d["status"] for d in docs}

    # --- link context ---------------------------------------------------------------

    def held_writes(self) -> AbstractContextManager[None]:
        """A plain block: every write is committed when it returns."""
        return nullcontext()

    async def write_linking(self, write: LinkingWrite) -> LinkingWritten:
        """One write after another: Cosmos DB's transactions stay within one partition key,
        and an evaluation's records (activity, suggestions, link context) are in several."""
        return await write_linking_stepwise(self, write)

    async def put_link_context(
        self, tenant_id: str, source_shard_id: str, seen: Mapping[str, str]
    ) -> None:
        """Replace the records an activity's last linking looked at (id → what it saw).

        The activity's own list is first widened to old and new together, then readers are written
        and stale ones deleted, then the list narrowed: a crash at any point leaves a
        list that still names every reader item, so none is orphaned.
        """
        list_pk = f"{tenant_id}|s|{source_shard_id}"
        doc = await self._read("link_context", "targets", list_pk)
        old = set(doc["targets"]) if doc else set()
        new = set(seen)
        container = self._container("link_context")

        async def put_list(targets: set[str]) -> None:
            async with _errors("link context"):
                await container.upsert_item(
                    {
                        "id": "targets",
                        "pk": list_pk,
                        "tenantId": tenant_id,
                        "sourceId": source_shard_id,
                        "targets": sorted(targets),
                    }
                )

        async def put_reader(target: str) -> None:
            async with _errors("link context"):
                await container.upsert_item(
                    {
                        "id": source_shard_id,
                        "pk": f"{tenant_id}|t|{target}",
                        "tenantId": tenant_id,
                        "targetId": target,
                        "sourceId": source_shard_id,
                        "seen": seen[target],
                    }
                )

        async def drop_reader(target: str) -> None:
            async with _errors("link context", passthrough=(404,)):
                with suppress(exceptions.CosmosResourceNotFoundError):
                    await container.delete_item(source_shard_id, f"{tenant_id}|t|{target}")

        if not new <= old:
            await put_list(old | new)
        await _gather([put_reader(t) for t in new])
        await _gather([drop_reader(t) for t in old - new])
        if old != new:
            await put_list(new)

    async def shard_types_present(self, tenant_id: str, shard_types: Collection[str]) -> set[str]:
        present: set[str] = set()
        for shard_type in sorted(set(shard_types)):
            params = _Params()
            sql = (
                "SELECT TOP 1 c.id FROM c "  # noqa: S608  # placeholders only
                f"WHERE c.pk IN ({params.many(_tenant_partitions(tenant_id))}) "
                f"AND c.tenantId = {params.add(tenant_id)} "
                f"AND c.shardType = {params.add(shard_type)}"
            )
            if await self._query("shards", sql, params.values):
                present.add(shard_type)
        return present

    async def link_context_sources(self, tenant_id: str, target_ids: Collection[str]) -> list[str]:
        wanted = sorted({f"{tenant_id}|t|{t}" for t in target_ids})
        found: set[str] = set()
        for start in range(0, len(wanted), _CHUNK):
            params = _Params()
            chunk = params.many(wanted[start : start + _CHUNK])
            sql = f"SELECT c.sourceId FROM c WHERE c.pk IN ({chunk})"  # noqa: S608  # placeholders only
            docs = await self._query("link_context", sql, params.values)
            found.update(d["sourceId"] for d in docs)
        return sorted(found)

    async def link_readers(self, tenant_id: str, target_id: str) -> dict[str, str]:
        pk = f"{tenant_id}|t|{target_id}"
        docs = await self._query(
            "link_context",
            "SELECT c.sourceId, c.seen FROM c WHERE c.pk = @pk",
            {"@pk": pk},
            partition_key=pk,
        )
        return {d["sourceId"]: d.get("seen", "") for d in docs}

    # --- plumbing -------------------------------------------------------------------

    def _database(self) -> DatabaseProxy:
        if self._db is None:
            message = "the store is not started"
            raise StoreError(message)
        return self._db

    def _container(self, name: str) -> ContainerProxy:
        self._database()
        return self._containers[name]

    async def _read(
        self, container: str, item_id: str, partition_key: str
    ) -> dict[str, Any] | None:
        """A point read; None when the item does not exist."""
        try:
            async with _errors(f"read {container}/{item_id}", passthrough=(404,)):
                doc: dict[str, Any] = await self._container(container).read_item(
                    item_id, partition_key=partition_key
                )
        except exceptions.CosmosResourceNotFoundError:
            return None
        return doc

    async def _write_doc(self, container: str, doc: dict[str, Any], if_match: str | None) -> None:
        """Create (if_match None) or replace if unchanged; `ConcurrencyError` on a lost race."""
        target = self._container(container)
        try:
            async with _errors(f"write {container}/{doc['id']}", passthrough=(404, 409, 412)):
                if if_match is None:
                    await target.create_item(doc)
                else:
                    await target.replace_item(
                        doc["id"], doc, etag=if_match, match_condition=MatchConditions.IfNotModified
                    )
        except exceptions.CosmosHttpResponseError as e:
            message = f"{container}/{doc['id']} changed since it was read"
            raise ConcurrencyError(message) from e

    async def _query(
        self,
        container: str,
        sql: str,
        parameters: Mapping[str, Any],
        *,
        partition_key: str | None = None,
    ) -> list[dict[str, Any]]:
        params = [{"name": k, "value": v} for k, v in parameters.items()]
        items = self._container(container).query_items(
            sql, parameters=params, partition_key=partition_key
        )
        async with _errors(f"query {container}"):
            return [doc async for doc in items]


class _Params:
    """Numbered query parameters: `@p0`, `@p1` ...; values are always bound, never inlined."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> str:
        name = f"@p{len(self.values)}"
        self.values[name] = value
        return name

    def many(self, values: Iterable[Any]) -> str:
        return ", ".join(self.add(v) for v in values)


@asynccontextmanager
async def _errors(doing: str, *, passthrough: tuple[int, ...] = ()) -> AsyncIterator[None]:
    """SDK errors become `StoreError` (retried by the agent's policy), except the statuses
    the caller handles itself. A 429 here means the SDK's throttle budget is spent."""
    try:
        yield
    except exceptions.CosmosHttpResponseError as e:
        if e.status_code in passthrough:
            raise
        message = f"cosmos store: {doing}: HTTP {e.status_code} {_first_line(e.message)}"
        raise StoreError(message) from e
    except AzureError as e:
        message = f"cosmos store: {doing}: {type(e).__name__}: {_first_line(str(e))}"
        raise StoreError(message) from e


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0][:200] if lines else ""


async def _gather(work: Iterable[Awaitable[T]]) -> list[T]:
    """Run concurrently; the first error propagates after every task has finished."""
    results = await asyncio.gather(*work, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]  # no exceptions left


@dataclasses.dataclass(frozen=True, slots=True)
class _Write:
    """One shard to write in a batch: create when `if_match` is None, else replace."""

    shard_id: str
    shard: Shard
    if_match: str | None
    doc: dict[str, Any]


def _batches(writes: list[_Write]) -> Iterator[list[_Write]]:
    """The writes in transactional batches of at most `_BATCH` operations and
    `_BATCH_BYTES` of documents."""
    chunk: list[_Write] = []
    size = 0
    for write in writes:
        doc_size = len(json.dumps(write.doc, separators=(",", ":")).encode())
        if chunk and (len(chunk) == _BATCH or size + doc_size > _BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(write)
        size += doc_size
    if chunk:
        yield chunk


def _stamped(outcomes: list[WriteOutcome], written: Shard) -> list[WriteOutcome]:
    """The outcomes of one shard's drafts after the write: the last persisted one carries
    the stored shard; earlier ones, superseded within the batch, an etag that never matches."""
    last = max(i for i, o in enumerate(outcomes) if o.persist)
    return [
        dataclasses.replace(
            o,
            shard=written if i == last else o.shard.model_copy(update={"etag": uuid.uuid4().hex}),
        )
        if o.persist
        else o
        for i, o in enumerate(outcomes)
    ]


def _shard_doc(shard: Shard) -> dict[str, Any]:
    doc = shard.to_doc()
    doc.pop("_etag", None)
    doc["pk"] = shard_partition_key(shard.tenant_id, shard.id)
    doc["lookup"] = sorted(f"{k}:{v}" for k, v in index_keys(shard))
    return doc


def _shard(doc: dict[str, Any]) -> Shard:
    shard = Shard.model_validate({k: v for k, v in doc.items() if k not in _SYSTEM})
    return shard.model_copy(update={"etag": doc.get("_etag")})


def _suggestion(doc: dict[str, Any]) -> SuggestedLink:
    return SuggestedLink.model_validate({k: v for k, v in doc.items() if k not in _SYSTEM})
