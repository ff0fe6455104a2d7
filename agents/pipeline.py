"""The steps every shard-producing agent shares: parse, map, write once, announce.

One policy for every agent: an event that can never be processed (not an envelope,
wrong data type, cannot be mapped, breaks its schema) goes to `integration.dlq`
with the reason; a store failure is retried with exponential backoff and, when the
retries run out, the batch is dead-lettered with stage `store` rather than lost;
no exception leaves the agent (Faust would ack the event and lose it).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from tenacity import RetryCallState

from core.exceptions import (
    BadEventError,
    ConcurrencyError,
    ShardTypeMissingError,
    StoreError,
)
from core.metrics import AGENT_BATCH_SECONDS, EVENTS_PROCESSED, SHARD_WRITES
from core.retries import retry_store
from shards.model import ShardDraft, WriteKind, WriteOutcome
from shards.store import ShardStore
from shards.types import definition
from streams.channels import StreamWriter
from streams.dead_letters import DeadLetter
from streams.incoming import IncomingEvent
from streams.models import RawEvent, parse_raw_event, shard_event

__all__ = ["ShardPipeline"]

logger = logging.getLogger(__name__)


class ShardPipeline:
    """Turns a batch of raw events of one data type into shards, events and dead letters."""

    def __init__(
        self,
        *,
        agent: str,
        data_type: str,
        to_draft: Callable[[RawEvent], ShardDraft | Awaitable[ShardDraft]],
        follow_ups: Callable[[RawEvent, ShardDraft], list[RawEvent]] | None = None,
        after_write: Callable[[list[WriteOutcome]], Awaitable[list[WriteOutcome]]] | None = None,
        store: ShardStore,
        writer: StreamWriter,
        retries: int,
        retry_max_delay: float,
        concurrency: int = 1,
        stage: str = "map",
    ) -> None:
        self._agent = agent
        self._data_type = data_type
        self._to_draft = to_draft
        self._follow_ups = follow_ups
        self._after_write = after_write
        self._store = store
        self._writer = writer
        self._retries = retries
        self._retry_max_delay = retry_max_delay
        self._slots = asyncio.Semaphore(concurrency)
        self._stage = stage

    async def process(self, batch: Sequence[IncomingEvent]) -> list[WriteOutcome]:
        """Process one batch; never raises except on cancellation."""
        started = time.perf_counter()
        drafts: list[tuple[IncomingEvent, ShardDraft]] = []
        events: dict[int, RawEvent] = {}
        letters: list[DeadLetter] = []
        parsed: list[tuple[IncomingEvent, RawEvent]] = []
        for incoming in batch:
            try:
                parsed.append((incoming, parse_raw_event(incoming.value, self._data_type)))
            except Exception as e:  # noqa: BLE001  # BadEventError, or whatever a hostile value provokes
                letters.append(self._letter(incoming, e, "validate"))
        results = await asyncio.gather(*(self._draft(i, e) for i, e in parsed))
        for (incoming, event), result in zip(parsed, results, strict=True):
            if isinstance(result, DeadLetter):
                letters.append(result)
            else:
                drafts.append((incoming, result))
                events[len(drafts) - 1] = event
        outcomes: list[WriteOutcome] = []
        if drafts:
            try:
                outcomes = await self._write([d for _, d in drafts])
            except Exception as e:  # retries exhausted: keep the events, in the DLQ
                logger.exception("%s could not write %d shards", self._agent, len(drafts))
                letters.extend(self._letter(incoming, e, "store") for incoming, _ in drafts)
        announced = [
            (i, outcome)
            for i, ((_, draft), outcome) in enumerate(zip(drafts, outcomes, strict=False))
            if outcome.changed or _is_replay(outcome, draft)
        ]
        derived = await self._derive(outcomes)
        await self._writer.announce(
            shard_event(outcome) for outcome in [*(o for _, o in announced), *derived]
        )
        if self._follow_ups is not None:
            # Derived raw events (an email's attachments → documents) go out with the
            # announcement, so a redelivery re-sends them; their ids are deterministic.
            follow_ups: list[RawEvent] = []
            for i, _ in announced:
                follow_ups.extend(self._follow_ups(events[i], drafts[i][1]))
            await self._writer.send_raw(follow_ups)
        await self._writer.dead_letter(letters)
        self._count(outcomes, letters)
        AGENT_BATCH_SECONDS.labels(self._agent).observe(time.perf_counter() - started)
        return outcomes

    async def _draft(self, incoming: IncomingEvent, event: RawEvent) -> ShardDraft | DeadLetter:
        """The event's draft (heavy work awaited, at most `concurrency` at once) or its letter."""
        try:
            async with self._slots:
                draft = self._to_draft(event)
                return await draft if inspect.isawaitable(draft) else draft
        except BadEventError as e:
            return self._letter(incoming, e, self._stage)
        except Exception as e:  # a bug in normalising code must not stop the agent
            logger.exception(
                "%s failed on event %s of tenant %s at %s",
                self._agent,
                event.event_id,
                event.tenant_id,
                incoming.where(),
            )
            return self._letter(incoming, e, self._stage)

    async def _derive(self, outcomes: list[WriteOutcome]) -> list[WriteOutcome]:
        """Writes that follow from this batch's (an opportunity's contact roles)."""
        if self._after_write is None or not outcomes:
            return []
        try:
            return await self._after_write(outcomes)
        except Exception:  # derived fields are recomputed by the next change; keep going
            logger.exception("%s: a derived write failed", self._agent)
            return []

    async def _write(self, drafts: list[ShardDraft]) -> list[WriteOutcome]:
        async def attempt() -> list[WriteOutcome]:
            try:
                return await self._store.upsert_many(drafts)
            except ShardTypeMissingError:
                await self._create_missing_types(drafts)
                raise

        def warn(state: RetryCallState) -> None:
            logger.warning(
                "%s: store write failed (attempt %d of %d)",
                self._agent,
                state.attempt_number,
                self._retries,
                exc_info=state.outcome.exception() if state.outcome else None,
            )

        return await retry_store(
            attempt,
            attempts=self._retries,
            max_delay=self._retry_max_delay,
            # ConcurrencyError: a server store (Cosmos) whose etag-guarded merge kept losing
            # races to other workers; the next attempt merges onto what they wrote.
            retry_on=(StoreError, ConcurrencyError, ShardTypeMissingError),
            before_sleep=warn,
        )

    async def _create_missing_types(self, drafts: list[ShardDraft]) -> None:
        for type_id in {d.shard_type for d in drafts}:
            if await self._store.get_shard_type(type_id) is None:
                logger.warning("shard type %s was missing; creating it", type_id)
                await self._store.put_shard_type(definition(type_id))

    def _letter(self, incoming: IncomingEvent, exc: BaseException, stage: str) -> DeadLetter:
        return incoming.letter(exc, stage)

    def _count(self, outcomes: list[WriteOutcome], letters: list[DeadLetter]) -> None:
        for outcome in outcomes:
            EVENTS_PROCESSED.labels(self._agent, outcome.kind.value).inc()
            SHARD_WRITES.labels(outcome.shard.shard_type, outcome.kind.value).inc()
        if letters:
            EVENTS_PROCESSED.labels(self._agent, "dead_lettered").inc(len(letters))


def _is_replay(outcome: WriteOutcome, draft: ShardDraft) -> bool:
    """True when the stored version came from this very event.

    Re-announcing it keeps `shard.events` at-least-once: a worker that died after the
    write but before its events were flushed gets them out on the redelivery.
    Consumers tell duplicates by the event id (`<shardId>:v<version>`).
    """
    return (
        outcome.kind is WriteKind.UNCHANGED
        and outcome.shard.source.event_id == draft.source.event_id
    )
