"""The CRM agent: raw CRM records become Opportunity, Account, Contact and User shards."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents.consume import define_shard_agent
from mappings.crm import map_crm_event
from shards.contact_roles import ROLE_TYPE, sync_contact_roles
from shards.model import ShardDraft, WriteKind, WriteOutcome
from streams.models import RawEvent

if TYPE_CHECKING:
    from processors.app import ProcessorsApp

__all__ = ["register"]


def register(app: ProcessorsApp) -> str:
    """Define `process_crm_records` on `app`; its name."""
    mappings, store, tenants = app.deps.mappings, app.deps.store, app.deps.tenants

    def to_draft(event: RawEvent) -> ShardDraft:
        own = tenants.crm_mappings(event.tenant_id, event.integration_id, mappings)
        return map_crm_event(event, own)

    async def sync_roles(outcomes: list[WriteOutcome]) -> list[WriteOutcome]:
        opportunities = set()
        for outcome in outcomes:
            shard = outcome.shard
            if not outcome.changed:
                continue
            if shard.shard_type == ROLE_TYPE and shard.structured_data.get("opportunityId"):
                opportunities.add((shard.tenant_id, shard.structured_data["opportunityId"]))
            elif shard.shard_type == "Opportunity" and outcome.kind is WriteKind.CREATED:
                opportunities.add((shard.tenant_id, shard.id))
        synced = [await sync_contact_roles(store, t, o) for t, o in sorted(opportunities)]
        return [s for s in synced if s is not None]

    return define_shard_agent(
        app,
        name="process_crm_records",
        data_type="crm",
        to_draft=to_draft,
        after_write=sync_roles,
        doc="Map raw CRM records through field mappings into shards; bad ones to the DLQ.",
    )
