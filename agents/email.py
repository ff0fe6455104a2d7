"""The email agent: raw emails become Email shards; attachments become document events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents.consume import define_shard_agent
from normalisers.email import attachment_events, normalise_email
from shards.model import ShardDraft
from streams.models import RawEvent

if TYPE_CHECKING:
    from processors.app import ProcessorsApp

__all__ = ["register"]


def register(app: ProcessorsApp) -> str:
    """Define `process_emails` on `app`; its name."""
    tenants = app.deps.tenants

    def to_draft(event: RawEvent) -> ShardDraft:
        return normalise_email(event, tenants.of(event.tenant_id))

    return define_shard_agent(
        app,
        name="process_emails",
        data_type="email",
        to_draft=to_draft,
        follow_ups=attachment_events,
        doc="Normalise raw emails (generic, Gmail, Graph) into Email shards.",
    )
