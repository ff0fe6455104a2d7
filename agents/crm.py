"""The CRM agent: raw CRM records become Opportunity, Account, Contact and User shards."""

from __future__ import annotations

import faust

from agents.consume import define_shard_agent
from agents.deps import AgentDeps
from mappings.crm import map_crm_event
from shards.contact_roles import ROLE_TYPE, sync_contact_roles
from shards.model import ShardDraft, WriteKind, WriteOutcome
from streams.models import RawEvent

__all__ = ["register"]


def register(app: faust.App, deps: AgentDeps) -> str:
    """Define `process_crm_records` on `app`; its name."""

    def to_draft(event: RawEvent) -> ShardDraft:
        return map_crm_event(event, deps.mappings.of(event.tenant_id, event.integration_id))

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
        synced = [await sync_contact_roles(deps.store, t, o) for t, o in sorted(opportunities)]
        return [s for s in synced if s is not None]

    return define_shard_agent(
        app,
        deps,
        name="process_crm_records",
        data_type="crm",
        to_draft=to_draft,
        after_write=sync_roles,
        doc="Map raw CRM records through field mappings into shards; bad ones to the DLQ.",
    )
