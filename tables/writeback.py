"""Writing ML fields onto the opportunity shard, and the coalescing that limits how often.

`Pending` remembers which opportunities changed and since when; the write-back timer
takes those whose delay has passed, so a burst of changes to one deal becomes one
write per delay (default 5 s), and no change waits longer than that.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from core.exceptions import ConcurrencyError
from shards.model import Shard
from shards.store import ShardStore

__all__ = ["Pending", "write_ml_fields"]


class Pending:
    """Keys waiting for a write-back, each with the moment it became due."""

    def __init__(self, delay: float, clock: Any = time.monotonic) -> None:
        self._delay = delay
        self._clock = clock
        self._due: dict[str, float] = {}
        self._forced: set[str] = set()

    def __len__(self) -> int:
        return len(self._due)

    def mark(self, keys: Iterable[str], *, now: bool = False, force: bool = False) -> None:
        """Changed: due `delay` after the first unwritten change (`now`: at once).

        `force`: written even when the fields did not change (a recalculation stamps
        `mlFieldsUpdatedAt`, so readers see the fields are fresh).
        """
        at = self._clock()
        for key in keys:
            if force:
                self._forced.add(key)
            due = at if now else at + self._delay
            self._due[key] = min(self._due.get(key, due), due)

    def take_due(self, limit: int) -> list[str]:
        """Up to `limit` keys whose time has come, oldest first; they leave the set."""
        at = self._clock()
        due = sorted((d, k) for k, d in self._due.items() if d <= at)[:limit]
        for _, key in due:
            del self._due[key]
        return [k for _, k in due]

    def forced(self, key: str) -> bool:
        """Whether `key` (just taken) must be written even if unchanged; asks once."""
        if key in self._forced:
            self._forced.discard(key)
            return True
        return False


async def write_ml_fields(
    store: ShardStore,
    tenant_id: str,
    opportunity_id: str,
    fields: dict[str, Any],
    at: datetime,
    *,
    force: bool = False,
    attempts: int = 5,
) -> Shard | None:
    """Put `fields` on the opportunity; the shard written, or None when nothing changed.

    Optimistic: read, compare, replace if unchanged since read (retried). Equal fields
    are not written again (a re-run or a sweep after restart writes nothing).
    """
    for _ in range(attempts):
        shard = await store.get(tenant_id, opportunity_id)
        if shard is None or shard.etag is None or shard.shard_type != "Opportunity":
            return None
        if shard.ml_fields == fields and not force:
            return None
        updated = shard.model_copy(
            update={
                "ml_fields": fields,
                "ml_fields_updated_at": at,
                "ml_fields_version": (shard.ml_fields_version or 0) + 1,
                "version": shard.version + 1,
                "updated_at": at,
            }
        )
        try:
            return await store.replace(updated, if_match=shard.etag)
        except ConcurrencyError:
            continue
    message = f"opportunity {opportunity_id} kept changing; ML fields not written"
    raise ConcurrencyError(message)
