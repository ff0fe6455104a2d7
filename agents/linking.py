"""The linking agent: `shard.events` and `linking.requests` → links, suggested links and
`link.events`.

Every evaluation of an activity runs in the worker that owns the activity's partition:
a shard event of the activity itself is evaluated where it arrives; the activities a CRM
change concerns, and the later messages of a thread whose links changed, are asked for on
`linking.requests`, keyed like their own shard events (the same partition, and Faust
assigns the same partition of both topics to the same worker). One agent reads both
topics, one event after another, so two evaluations of one activity never overlap and
none overwrites a newer one with what it read before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import faust
from faust.types import StreamT

from agents.deps import AgentDeps
from core.exceptions import WritesLostError
from core.retries import retry_store
from linking.reads import CRM_TYPES
from linking.service import Linker
from shards.kinds import ACTIVITY_TYPES
from streams.consuming import batches, parse_each
from streams.dead_letters import DeadLetter
from streams.incoming import IncomingEvent
from streams.models import RelinkRequest, ShardEvent
from streams.topics import LINKING_REQUESTS_TOPIC, SHARD_EVENTS_TOPIC

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
    inputs = app.topic(
        SHARD_EVENTS_TOPIC,
        LINKING_REQUESTS_TOPIC,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    @app.agent(inputs, name="link_activities")
    async def link_activities(stream: StreamT[bytes]) -> None:
        """Link activities to contacts, accounts and opportunities; re-link what changes."""
        linker = Linker(deps.store, deps.tenants, deps.writer)
        retried = partial(
            retry_store, attempts=settings.AGENT_RETRIES, max_delay=settings.AGENT_RETRY_MAX_DELAY
        )
        async for batch in batches(stream, settings.AGENT_BATCH_SIZE, settings.AGENT_BATCH_WINDOW):
            asked = [e for e in batch if e.topic == LINKING_REQUESTS_TOPIC]
            requests, letters = parse_each(asked, RelinkRequest, "link")
            events, bad = parse_each([e for e in batch if e not in asked], ShardEvent, "link")
            letters += bad
            # A backlog asks for the same activity many times in one batch (its account,
            # contact and opportunity arrive together; a thread's messages each ask for
            # their followers): each evaluation reads what is stored, so one per activity
            # and batch does, and each follow-up is asked for once.
            follow_ups: dict[tuple[str, str], RelinkRequest] = {}
            failed: list[DeadLetter] = []
            work = partial(_evaluate, linker, requests, events, retried)
            try:
                # the evaluations' writes committed together (`held_writes`), before the
                # batch's follow-ups go out and the batch is acknowledged
                with deps.store.held_writes():
                    await work(failed, follow_ups)
            except WritesLostError:
                logger.warning("a commit of linking's writes failed: the batch again")
                follow_ups, failed = {}, []
                await work(failed, follow_ups)
            letters += failed
            await deps.writer.relink(list(follow_ups.values()))
            if after_linking is not None:
                try:
                    await after_linking([event for _, event in events])
                except Exception as exc:  # never let one batch stop the agent
                    logger.exception("routing %d shard events after linking failed", len(events))
                    letters.extend(incoming.letter(exc, "ml_route") for incoming, _ in events)
            await deps.writer.dead_letter(letters)

    return str(link_activities.name)


async def _evaluate(
    linker: Linker,
    requests: Sequence[tuple[IncomingEvent, RelinkRequest]],
    events: Sequence[tuple[IncomingEvent, ShardEvent]],
    retried: Callable[..., Awaitable[list[RelinkRequest]]],
    letters: list[DeadLetter],
    follow_ups: dict[tuple[str, str], RelinkRequest],
) -> None:
    """A batch's evaluations: those asked for, those its CRM changes concern, its
    activities; what fails is a dead letter, what follows a follow-up."""
    with linker.batch():  # the batch's CRM look-ups read once (`linking.reads`)
        await linker.prefetch(
            [(r.tenant_id, r.shard_id) for _, r in requests]
            + [(e.tenant_id, e.shard_id) for _, e in events if e.shard_type in ACTIVITY_TYPES]
        )
        for incoming, request in _last_per_activity(requests):
            await _step(incoming, partial(linker.evaluate, request), retried, letters, follow_ups)
        crm = [(i, e) for i, e in events if e.shard_type in CRM_TYPES]
        if crm:  # what the batch's CRM changes concern, looked up together
            await _crm_changes(crm, linker, retried, letters, follow_ups)
        for incoming, event in events:
            if event.shard_type not in CRM_TYPES:
                await _step(
                    incoming, partial(_on_shard_event, linker, event), retried, letters,
                    follow_ups,
                )  # fmt: skip


async def _on_shard_event(linker: Linker, event: ShardEvent) -> list[RelinkRequest]:
    """The activity itself is evaluated here (its partition); the rest is asked for."""
    follow_ups: list[RelinkRequest] = []
    for request in await linker.requested([event]):
        if request.shard_id == event.shard_id:
            follow_ups += await linker.evaluate(request)
        else:
            follow_ups.append(request)
    return follow_ups


async def _crm_changes(
    crm: Sequence[tuple[IncomingEvent, ShardEvent]],
    linker: Linker,
    retried: Callable[..., Awaitable[list[RelinkRequest]]],
    letters: list[DeadLetter],
    follow_ups: dict[tuple[str, str], RelinkRequest],
) -> None:
    """The evaluations a batch's CRM changes ask for, looked up once for all of them (one
    index read per key and activity type); should that fail, one change at a time, so a
    bad one is its own dead letter."""
    try:
        asked = await retried(partial(linker.requested, [event for _, event in crm]))
    except Exception:  # never let one event stop the agent
        logger.exception("linking %d CRM changes together failed; one at a time", len(crm))
        for incoming, event in crm:
            await _step(incoming, partial(_on_shard_event, linker, event), retried, letters,
                        follow_ups)  # fmt: skip
        return
    await _follow(asked, follow_ups)


def _last_per_activity(
    requests: Sequence[tuple[IncomingEvent, RelinkRequest]],
) -> list[tuple[IncomingEvent, RelinkRequest]]:
    """One request per activity: its last in the batch (the batch is acknowledged whole)."""
    last = {(r.tenant_id, r.shard_id): (i, r) for i, r in requests}
    return list(last.values())


async def _step(
    incoming: IncomingEvent,
    work: Callable[[], Awaitable[list[RelinkRequest]]],
    retried: Callable[..., Awaitable[list[RelinkRequest]]],
    letters: list[DeadLetter],
    follow_ups: dict[tuple[str, str], RelinkRequest],
) -> None:
    """One event's linking, retried while the store is unavailable; its follow-up requests
    join the batch's (sent before the batch is acknowledged); any other failure is that
    event's dead letter."""
    try:
        asked = await retried(work)
    except Exception as exc:  # never let one event stop the agent
        logger.exception("linking failed for %s", incoming.where())
        letters.append(incoming.letter(exc, "link"))
        return
    await _follow(asked, follow_ups)


async def _follow(
    asked: list[RelinkRequest], follow_ups: dict[tuple[str, str], RelinkRequest]
) -> None:
    """Add the requests to the batch's follow-ups, then let the rest of the worker run: the
    store's reads and most writes complete without yielding (`shards.sqlite`), so a batch
    of evaluations would otherwise hold the event loop, and the worker's other agents (and
    Faust's own tasks) would wait for it."""
    for request in asked:
        follow_ups[(request.tenant_id, request.shard_id)] = request
    await asyncio.sleep(0)
