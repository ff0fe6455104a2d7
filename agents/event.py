"""The calendar event agent: raw calendar events become CalendarEvent shards."""

from __future__ import annotations

import faust

from agents.consume import define_tenant_agent
from agents.deps import AgentDeps
from normalisers.event import normalise_calendar_event

__all__ = ["register"]


def register(app: faust.App, deps: AgentDeps) -> str:
    """Define `process_calendar_events` on `app`; its name."""
    return define_tenant_agent(
        app,
        deps,
        name="process_calendar_events",
        data_type="event",
        normalise=normalise_calendar_event,
        doc="Normalise raw calendar events (generic, Google, Graph) into CalendarEvent shards.",
    )
