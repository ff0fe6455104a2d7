"""CRM records read once per batch of evaluations (issue 15: look-ups batched per batch).

A backlog evaluates many activities of the same customers in one batch; each evaluation
looked up the same contacts, accounts, opportunities and users again, one store round
trip each. `CrmReads` (one per batch) keeps what was read of those four types, per
look-up value, so a look-up for several values asks the store only for the values not
yet read.

Safe for a batch: every shard event of a batch was written before the batch was
fetched, so what is read during the batch is at least that new; a CRM record written
while the batch runs announces itself in a later batch, whose evaluations read afresh.
Activities (a thread's messages, the activity itself) are never cached: linking writes
them during the batch. Nothing here mutates a shard, and the linking rules only read.
"""

from __future__ import annotations

from collections.abc import Iterable

from shards.keys import index_keys
from shards.model import Shard
from shards.store import ShardStore

__all__ = ["CRM_TYPES", "CrmReads"]

#: The CRM shard types linking reads but never writes; their arrival or change can change
#: the links of activities (`Linker.requested`).
CRM_TYPES = frozenset({"Contact", "Account", "Opportunity", "User"})


class CrmReads:
    """`get` and `find` of CRM shards through a cache that lives as long as it does."""

    def __init__(self, store: ShardStore) -> None:
        self._store = store
        self._shards: dict[tuple[str, str], Shard] = {}
        self._found: dict[tuple[str, str, str, str], list[str]] = {}

    async def get(self, tenant_id: str, shard_id: str) -> Shard | None:
        """The shard, from the cache when a CRM shard of this batch."""
        cached = self._shards.get((tenant_id, shard_id))
        if cached is not None:
            return cached
        shard = await self._store.get(tenant_id, shard_id)
        if shard is not None and shard.shard_type in CRM_TYPES:
            self._shards[(tenant_id, shard_id)] = shard
        return shard

    async def find(
        self, tenant_id: str, shard_type: str, key: str, values: Iterable[str]
    ) -> list[Shard]:
        """`ShardStore.find` of a CRM type; the store is asked only for unseen values."""
        wanted = sorted(set(values))
        if shard_type not in CRM_TYPES:
            return await self._store.find(tenant_id, shard_type, key, wanted)
        missing = [v for v in wanted if (tenant_id, shard_type, key, v) not in self._found]
        if missing:
            for v in missing:
                self._found[(tenant_id, shard_type, key, v)] = []
            asked = set(missing)
            for shard in await self._store.find(tenant_id, shard_type, key, missing):
                self._shards[(tenant_id, shard.id)] = shard
                for k, v in index_keys(shard):
                    if k == key and v in asked:
                        self._found[(tenant_id, shard_type, key, v)].append(shard.id)
        ids = dict.fromkeys(
            shard_id for v in wanted for shard_id in self._found[(tenant_id, shard_type, key, v)]
        )
        return [self._shards[(tenant_id, shard_id)] for shard_id in ids]
