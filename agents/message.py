"""The message agent: raw chat messages become Message shards."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents.consume import define_shard_agent
from normalisers.message import normalise_message
from shards.model import ShardDraft
from streams.models import RawEvent

if TYPE_CHECKING:
    from processors.app import ProcessorsApp

__all__ = ["register"]


def register(app: ProcessorsApp) -> str:
    """Define `process_messages` on `app`; its name."""
    tenants = app.deps.tenants

    def to_draft(event: RawEvent) -> ShardDraft:
        return normalise_message(event, tenants.of(event.tenant_id))

    return define_shard_agent(
        app,
        name="process_messages",
        data_type="message",
        to_draft=to_draft,
        doc="Normalise raw chat messages (generic, Slack, Teams) into Message shards.",
    )
