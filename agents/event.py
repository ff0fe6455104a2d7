"""The calendar event agent: raw calendar events become CalendarEvent shards."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents.consume import define_shard_agent
from normalisers.event import normalise_calendar_event
from shards.model import ShardDraft
from streams.models import RawEvent

if TYPE_CHECKING:
    from processors.app import ProcessorsApp

__all__ = ["register"]


def register(app: ProcessorsApp) -> str:
    """Define `process_calendar_events` on `app`; its name."""
    tenants = app.deps.tenants

    def to_draft(event: RawEvent) -> ShardDraft:
        return normalise_calendar_event(event, tenants.of(event.tenant_id))

    return define_shard_agent(
        app,
        name="process_calendar_events",
        data_type="event",
        to_draft=to_draft,
        doc="Normalise raw calendar events (generic, Google, Graph) into CalendarEvent shards.",
    )
