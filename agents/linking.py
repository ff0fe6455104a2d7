"""The linking agent: `shard.events` → links, suggested links and `link.events`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import faust
from faust.types import StreamT

from agents.deps import AgentDeps
from core.retries import retry_store
from linking.service import Linker
from streams.consuming import batches, parse_each
from streams.models import ShardEvent

__all__ = ["ShardEventSink", "register"]

logger = logging.getLogger(__name__)

#: What follows shard changes after linking (the ML fields' router): called once per batch.
ShardEventSink = Callable[[Sequence[ShardEvent]], Awaitable[None]]


def register(app: faust.App, deps: AgentDeps, after_linking: ShardEventSink | None = None) -> str:
    """Define `link_activities` on `app`; its name.

    `after_linking` receives every batch's shard events once they are linked. It is the
    one way other parts follow `shard.events`: with two agents on one topic, Faust's
    revoke waits forever for a message one agent acked and the other's cleared queue
    never will (seen as a hung rebalance and a hung SIGTERM).
    """
    settings = deps.settings

    @app.agent(deps.topics.shard_events_topic, name="link_activities")
    async def link_activities(stream: StreamT[bytes]) -> None:
        """Link communications to contacts, accounts and opportunities; re-link late arrivals."""
        linker = Linker(deps.store, deps.tenants, deps.writer)
        link = partial(
            retry_store, attempts=settings.AGENT_RETRIES, max_delay=settings.AGENT_RETRY_MAX_DELAY
        )
        async for batch in batches(stream, settings.AGENT_BATCH_SIZE, settings.AGENT_BATCH_WINDOW):
            events, letters = parse_each(batch, ShardEvent, "link")
            for incoming, event in events:
                try:
                    await link(partial(linker.process, [event]))
                except Exception as exc:  # never let one event stop the agent
                    logger.exception(
                        "linking failed for %s of tenant %s", event.shard_id, event.tenant_id
                    )
                    letters.append(incoming.letter(exc, "link"))
            if after_linking is not None:
                try:
                    await after_linking([event for _, event in events])
                except Exception as exc:  # never let one batch stop the agent
                    logger.exception("routing %d shard events after linking failed", len(events))
                    letters.extend(incoming.letter(exc, "ml_route") for incoming, _ in events)
            await deps.writer.dead_letter(letters)

    return str(link_activities.name)
