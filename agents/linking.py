"""The linking agent: `shard.events` → links, suggested links and `link.events`."""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING

from faust.types import StreamT
from pydantic import ValidationError

from linking.service import Linker
from processors.retries import retry_store
from streams.dead_letters import DeadLetter, event_source
from streams.models import ShardEvent

if TYPE_CHECKING:
    from processors.app import ProcessorsApp

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(app: ProcessorsApp) -> str:
    """Define `link_activities` on `app`; its name."""
    settings, deps = app.settings, app.deps

    @app.agent(app.contract_topics.shard_events_topic, name="link_activities")
    async def link_activities(stream: StreamT[bytes]) -> None:
        """Link communications to contacts, accounts and opportunities; re-link late arrivals."""
        linker = Linker(deps.store, deps.tenants, deps.writer)
        async for batch in stream.take_events(  # type: ignore[attr-defined]  # not in StreamT
            settings.AGENT_BATCH_SIZE, within=settings.AGENT_BATCH_WINDOW
        ):
            events, letters = [], []
            for e in batch:
                where = event_source(e)
                try:
                    events.append((e, ShardEvent.model_validate_json(e.value), where))
                except ValidationError as exc:
                    letters.append(DeadLetter.of(e.value, e.key, exc, "link", **where))
            for e, event, where in events:
                try:
                    await retry_store(settings, partial(linker.process, [event]))
                except Exception as exc:  # never let one event stop the agent
                    logger.exception(
                        "linking failed for %s of tenant %s", event.shard_id, event.tenant_id
                    )
                    letters.append(DeadLetter.of(e.value, e.key, exc, "link", **where))
            ml = getattr(app, "ml_fields", None)
            if ml is not None:
                # The ML fields follow shard changes from here, not from a second agent
                # on `shard.events`: with two consumers of one topic, Faust's revoke
                # waits forever for a message one agent acked and the other's cleared
                # queue never will (seen as a hung rebalance and a hung SIGTERM).
                try:
                    await ml.route([event for _, event, _ in events])
                except Exception as exc:  # never let one batch stop the agent
                    logger.exception("ML-field routing failed for %d shard events", len(events))
                    letters.extend(
                        DeadLetter.of(e.value, e.key, exc, "ml_route", **where)
                        for e, _, where in events
                    )
            await deps.writer.dead_letter(letters)

    return str(link_activities.name)
