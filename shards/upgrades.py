"""Older shards brought to the current shapes: on their next write, or by a command.

What changed (issue 14): every communication type lists its participants as person
objects with a role (an Email's were bare addresses; a Message's, CalendarEvent's and
Meeting's had no role), and `threadId` is namespaced by the integration
(`shards.threads`). `upgrade_structured` rebuilds both from the fields the shard
already has; it is pure and idempotent, so the merge applies it to the stored shard
before comparing (an unchanged record re-synced still lands in the new shape) and
`integration-processors shards-upgrade` applies it to shards no sync touches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.exceptions import ConcurrencyError
from shards.participants import SOURCES, build_participants, has_participant_shape
from shards.threads import namespace_thread
from shards.types import definition

if TYPE_CHECKING:  # the merge in shards.model upgrades with this module
    from shards.model import Shard
    from shards.store import ShardStore

__all__ = ["UpgradeCount", "upgrade_shard", "upgrade_store", "upgrade_structured"]


def upgrade_structured(
    shard_type: str, integration_id: str, data: dict[str, Any]
) -> dict[str, Any] | None:
    """The structured data in the current shapes; None when it already is."""
    if shard_type not in SOURCES:
        return None
    upgraded = dict(data)
    if "participants" in data and not has_participant_shape(data["participants"]):
        people = build_participants(shard_type, data)
        if shard_type == "Email":
            people = [p for p in people if p.get("email")]
        upgraded["participants"] = people
    if shard_type in ("Email", "Message"):
        namespace_thread(shard_type, integration_id, upgraded)
    return upgraded if upgraded != data else None


def upgrade_shard(shard: Shard) -> Shard | None:
    """The shard in the current shapes and schema version (a new version of it), or None
    when there is nothing to upgrade."""
    data = upgrade_structured(shard.shard_type, shard.source.integration_id, shard.structured_data)
    try:
        current = definition(shard.shard_type).schema_version
    except KeyError:
        return None
    if data is None and shard.schema_version >= current:
        return None
    return shard.model_copy(
        update={
            "structured_data": data if data is not None else shard.structured_data,
            "schema_version": max(shard.schema_version, current),
            "version": shard.version + 1,
        }
    )


@dataclass(slots=True)
class UpgradeCount:
    """What `upgrade_store` found: shards read, and those (to be) rewritten."""

    read: int = 0
    upgraded: int = 0


async def upgrade_store(
    store: ShardStore, *, tenant_id: str | None = None, dry_run: bool = False, attempts: int = 5
) -> UpgradeCount:
    """Rewrite every communication shard (of one tenant, or all) that is not in the current
    shapes, each as a new version with an optimistic write; a shard written meanwhile is
    read again. Idempotent: a second run upgrades nothing."""
    count = UpgradeCount()
    for shard_type in SOURCES:
        tenants = [tenant_id] if tenant_id else await store.tenant_ids(shard_type)
        for tenant in tenants:
            continuation = None
            while True:
                page = await store.query(
                    tenant, shard_type=shard_type, limit=500, continuation=continuation
                )
                for shard in page.items:
                    count.read += 1
                    if upgrade_shard(shard) is None:
                        continue
                    count.upgraded += 1
                    if not dry_run:
                        await _rewrite(store, shard, attempts)
                continuation = page.continuation
                if continuation is None:
                    break
    return count


async def _rewrite(store: ShardStore, shard: Shard, attempts: int) -> None:
    current: Shard | None = shard
    for _ in range(attempts):
        if current is None or current.etag is None:
            return
        upgraded = upgrade_shard(current)
        if upgraded is None:
            return  # upgraded meanwhile (by a write of its record)
        try:
            await store.replace(upgraded, if_match=current.etag)
        except ConcurrencyError:
            current = await store.get(current.tenant_id, current.id)
            continue
        return
    message = f"shard {shard.id} kept changing; not upgraded"
    raise ConcurrencyError(message)
