"""Faust agents, one module per data type or concern; `register_agents` defines the chosen."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Final

import faust

from agents import crm, document, email, event, linking, meeting, message
from agents.deps import AgentDeps
from agents.linking import ShardEventSink

__all__ = ["AGENT_NAMES", "AgentDeps", "ShardEventSink", "register_agents"]

_Registrar = Callable[[faust.App, AgentDeps, ShardEventSink | None], str]

#: Each agent's name and how it is defined, light ones first.
_REGISTRARS: Final[dict[str, _Registrar]] = {
    "process_crm_records": lambda app, deps, _: crm.register(app, deps),
    "process_emails": lambda app, deps, _: email.register(app, deps),
    "process_messages": lambda app, deps, _: message.register(app, deps),
    "process_calendar_events": lambda app, deps, _: event.register(app, deps),
    "link_activities": linking.register,
    "process_documents": lambda app, deps, _: document.register(app, deps),
    "process_meetings": lambda app, deps, _: meeting.register(app, deps),
}

#: The names of the agents this package defines.
AGENT_NAMES: Final = tuple(_REGISTRARS)


def register_agents(
    app: faust.App,
    names: Collection[str],
    deps: AgentDeps,
    *,
    after_linking: ShardEventSink | None = None,
) -> list[str]:
    """Define this package's agents among `names` on `app`; their names. `after_linking`
    follows the linked shard events (the ML fields' router)."""
    return [
        register(app, deps, after_linking)
        for name, register in _REGISTRARS.items()
        if name in names
    ]
