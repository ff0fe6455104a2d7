"""CRM records read once per batch of evaluations (issue 15: look-ups batched per batch).

A backlog evaluates many activities of the same customers in one batch; each evaluation
looked up the same contacts, accounts, opportunities and users again, one store round
trip each. `CrmReads` (one per batch) keeps what was read of those four types, per
look-up value, so a look-up for several values asks the store only for the values not
yet read.

What is read is kept for `MAX_AGE` seconds, not for the whole batch. A CRM record
written after an evaluation read the store is found by its own fan-out only if that
evaluation's link context is already written (`Linker._concerned` reads the contexts);
an evaluation that read a cached value long before the record was written, and wrote
its context after the record's fan-out ran, missed it for good (the long chaos run: 3
of 784 activities without the suggestions of two opportunities that arrived during a
batch, once evaluations yielded to other agents and batches took seconds). Bounding
the age keeps that window as short as an uncached read's. Activities (a thread's
messages, the activity itself) are never cached: linking writes them during the batch.
Nothing here mutates a shard, and the linking rules only read.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from shards.keys import key_values
from shards.model import Shard
from shards.store import ShardStore

__all__ = ["CRM_TYPES", "MAX_AGE", "CrmReads"]

#: The CRM shard types linking reads but never writes; their arrival or change can change
#: the links of activities (`Linker.requested`).
CRM_TYPES = frozenset({"Contact", "Account", "Opportunity", "User"})
#: Seconds a read is reused for.
MAX_AGE = 0.1


class CrmReads:
    """`get` and `find` of CRM shards through a cache that lives as long as it does."""

    def __init__(self, store: ShardStore, max_age: float = MAX_AGE) -> None:
        self._store = store
        self._max_age = max_age
        self._shards: dict[tuple[str, str], Shard] = {}
        self._found: dict[tuple[str, str, str, str], list[str]] = {}
        self._since = time.monotonic()

    def _fresh(self) -> None:
        """Forget what was read more than `max_age` ago (all of it: reads are cheap)."""
        if time.monotonic() - self._since > self._max_age:
            self.restart()

    def restart(self) -> None:
        """Forget everything read and start a new `max_age` window now (before reading
        ahead: what is read then is kept for the whole window)."""
        self._shards.clear()
        self._found.clear()
        self._since = time.monotonic()

    async def get_many(self, tenant_id: str, shard_ids: Iterable[str]) -> None:
        """Read the CRM shards among `shard_ids` not read yet, together (for `get`)."""
        self._fresh()
        missing = sorted({i for i in shard_ids if (tenant_id, i) not in self._shards})
        if missing:
            for shard_id, shard in (await self._store.get_many(tenant_id, missing)).items():
                if shard.shard_type in CRM_TYPES:
                    self._shards[(tenant_id, shard_id)] = shard

    async def get(self, tenant_id: str, shard_id: str) -> Shard | None:
        """The shard, from the cache when a CRM shard of this batch."""
        self._fresh()
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
        self._fresh()
        if shard_type not in CRM_TYPES:
            return await self._store.find(tenant_id, shard_type, key, wanted)
        missing = [v for v in wanted if (tenant_id, shard_type, key, v) not in self._found]
        if missing:
            for v in missing:
                self._found[(tenant_id, shard_type, key, v)] = []
            asked = set(missing)
            for shard in await self._store.find(tenant_id, shard_type, key, missing):
                self._shards[(tenant_id, shard.id)] = shard
                for v in key_values(shard, key) & asked:
                    self._found[(tenant_id, shard_type, key, v)].append(shard.id)
        ids = dict.fromkeys(
            shard_id for v in wanted for shard_id in self._found[(tenant_id, shard_type, key, v)]
        )
        return [self._shards[(tenant_id, shard_id)] for shard_id in ids]
