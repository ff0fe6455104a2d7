"""Writing links onto a source shard: optimistic, retried, people's decisions kept."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from core.exceptions import ConcurrencyError
from shards.model import Link, Shard
from shards.store import ShardStore

__all__ = ["HUMAN_STATUSES", "relinked", "write_links"]

#: Link statuses set by a person; automation never removes or changes them.
HUMAN_STATUSES = frozenset({"approved"})


async def write_links(
    store: ShardStore,
    tenant_id: str,
    shard_id: str,
    automatic: Iterable[Link],
    *,
    approved: Iterable[Link] = (),
    attempts: int = 5,
) -> tuple[Shard | None, list[Link], list[Link]]:
    """Replace the shard's automatic links with `automatic`, add `approved` ones, retrying
    from a fresh read while the shard changes under the write.

    Approved links already on the shard stay whatever `automatic` says. Returns the
    shard as written (None when it does not exist), the links that are new and the
    automatic links that are gone (linking changed its mind). Linking itself writes
    through `ShardStore.write_linking`, checked against the version it decided from.
    """
    automatic, approved = list(automatic), list(approved)
    for _ in range(attempts):
        shard = await store.get(tenant_id, shard_id)
        if shard is None or shard.etag is None:
            return None, [], []
        updated, new, removed = relinked(shard, automatic, approved)
        if updated is None:
            return shard, [], []
        try:
            written = await store.replace(updated, if_match=shard.etag)
        except ConcurrencyError:
            continue
        return written, new, removed
    message = f"shard {shard_id} kept changing; links not written"
    raise ConcurrencyError(message)


def relinked(
    shard: Shard, automatic: Iterable[Link], approved: Iterable[Link] = ()
) -> tuple[Shard | None, list[Link], list[Link]]:
    """The shard with its automatic links replaced by `automatic` and `approved` ones
    added (approved links on it stay), None when its links would not change; the links
    that are new and the automatic links that are gone."""
    kept = [link for link in shard.links if link.status in HUMAN_STATUSES]
    kept_targets = {link.target_shard_id for link in kept}
    for link in approved:
        if link.target_shard_id not in kept_targets:
            kept.append(link)
            kept_targets.add(link.target_shard_id)
    links = kept + [a for a in automatic if a.target_shard_id not in kept_targets]
    if _same(shard.links, links):
        return None, [], []
    before = {(link.target_shard_id, link.status) for link in shard.links}
    after = {link.target_shard_id for link in links}
    updated = shard.model_copy(
        update={"links": links, "version": shard.version + 1, "updated_at": datetime.now(UTC)}
    )
    return (
        updated,
        [link for link in links if (link.target_shard_id, link.status) not in before],
        [link for link in shard.links if link.target_shard_id not in after],
    )


def _same(old: list[Link], new: list[Link]) -> bool:
    def key(links: list[Link]) -> list[tuple[str, str, float, str]]:
        return sorted(
            (k.target_shard_id, k.status, round(k.confidence, 4), k.method) for k in links
        )

    return key(old) == key(new)
