"""The email agent: raw emails become Email shards; attachments become document events."""

from __future__ import annotations

import faust

from agents.consume import define_tenant_agent
from agents.deps import AgentDeps
from normalisers.email import attachment_events, normalise_email

__all__ = ["register"]


def register(app: faust.App, deps: AgentDeps) -> str:
    """Define `process_emails` on `app`; its name."""
    return define_tenant_agent(
        app,
        deps,
        name="process_emails",
        data_type="email",
        normalise=normalise_email,
        follow_ups=attachment_events,
        doc="Normalise raw emails (generic, Gmail, Graph) into Email shards.",
    )
