"""The message agent: raw chat messages become Message shards."""

from __future__ import annotations

import faust

from agents.consume import define_tenant_agent
from agents.deps import AgentDeps
from normalisers.message import normalise_message

__all__ = ["register"]


def register(app: faust.App, deps: AgentDeps) -> str:
    """Define `process_messages` on `app`; its name."""
    return define_tenant_agent(
        app,
        deps,
        name="process_messages",
        data_type="message",
        normalise=normalise_message,
        doc="Normalise raw chat messages (generic, Slack, Teams) into Message shards.",
    )
