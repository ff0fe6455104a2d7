"""Faust agents, one module per data type or concern; `register_agents` picks a role's."""

from __future__ import annotations

import faust

from agents import crm, document, email, event, linking, meeting, message
from agents.deps import AgentDeps
from agents.linking import ShardEventSink
from core.settings import ConsumerType

__all__ = ["AgentDeps", "ShardEventSink", "register_agents"]


def register_agents(
    app: faust.App,
    role: ConsumerType,
    deps: AgentDeps,
    *,
    after_linking: ShardEventSink | None = None,
) -> list[str]:
    """Define the agents of `role` on `app`; their names. `after_linking` follows the
    linked shard events (the ML fields, on roles that run them)."""
    names = []
    if role in (ConsumerType.LIGHT, ConsumerType.ALL):
        names += [
            crm.register(app, deps),
            email.register(app, deps),
            message.register(app, deps),
            event.register(app, deps),
            linking.register(app, deps, after_linking),
        ]
    if role in (ConsumerType.HEAVY, ConsumerType.ALL):
        names += [document.register(app, deps), meeting.register(app, deps)]
    return names
