"""An opportunity's `contactRoles`, recomputed from its OpportunityContactRole shards.

Salesforce `OpportunityContactRole` and Dynamics connections arrive as records of their
own, before or after their opportunity. Recomputing the whole list from the stored role
shards (rather than applying each change) makes the result independent of arrival
order and of replays.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.exceptions import ConcurrencyError
from shards.model import WriteKind, WriteOutcome
from shards.store import ShardStore

__all__ = ["ROLE_TYPE", "sync_contact_roles"]

ROLE_TYPE = "OpportunityContactRole"


async def sync_contact_roles(
    store: ShardStore, tenant_id: str, opportunity_id: str, *, attempts: int = 5
) -> WriteOutcome | None:
    """Write the opportunity's roles when they differ; the update, or None (no change)."""
    roles = await _roles_of(store, tenant_id, opportunity_id)
    if roles is None:
        return None  # no role records (HubSpot carries its contacts on the deal itself)
    for _ in range(attempts):
        opportunity = await store.get(tenant_id, opportunity_id)
        if opportunity is None or opportunity.etag is None:
            return None  # the opportunity's own creation syncs its roles
        if opportunity.structured_data.get("contactRoles") == roles:
            return None
        updated = opportunity.model_copy(
            update={
                "structured_data": {**opportunity.structured_data, "contactRoles": roles},
                "version": opportunity.version + 1,
                "updated_at": datetime.now(UTC),
            }
        )
        try:
            written = await store.replace(updated, if_match=opportunity.etag)
        except ConcurrencyError:
            continue  # changed meanwhile: read again
        return WriteOutcome(WriteKind.UPDATED, written, ("contactRoles",))
    message = f"opportunity {opportunity_id} kept changing; contact roles not synced"
    raise ConcurrencyError(message)


async def _roles_of(
    store: ShardStore, tenant_id: str, opportunity_id: str
) -> list[dict[str, Any]] | None:
    """The live roles of an opportunity; None when it has no role records at all."""
    roles: list[dict[str, Any]] = []
    found = False
    continuation = None
    while True:
        page = await store.query(
            tenant_id,
            shard_type=ROLE_TYPE,
            where={"structuredData.opportunityId": opportunity_id},
            limit=500,
            continuation=continuation,
        )
        for shard in page.items:
            found = True
            data = shard.structured_data
            if data.get("deleted") or not data.get("contactId"):
                continue
            # every reference with the provider's id beside it (the role record's own too)
            entry = {"contactId": data["contactId"], "roleShardId": shard.id}
            keep = ("contactExternalId", "role", "isPrimary")
            entry.update({k: data[k] for k in keep if data.get(k) is not None})
            entry["roleExternalId"] = shard.source.external_id
            roles.append(entry)
        continuation = page.continuation
        if continuation is None:
            if not found:
                return None
            return sorted(roles, key=lambda r: (not r.get("isPrimary"), r["contactId"]))
