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
from collections import Counter
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
from streams.models import RawEvent, parse_raw_event

__all__ = ["ShardPipeline"]

logger = logging.getLogger(__name__)

#: an event of the batch, its envelope and its draft
Drafted = tuple[IncomingEvent, RawEvent, ShardDraft]


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
        letters: list[DeadLetter] = []
        parsed: list[tuple[IncomingEvent, RawEvent]] = []
        for incoming in batch:
            try:
                parsed.append((incoming, parse_raw_event(incoming.value, self._data_type)))
            except Exception as e:  # noqa: BLE001  # BadEventError, or whatever a hostile value provokes
                letters.append(self._letter(incoming, e, "validate"))
        drafted = await self._drafts(parsed, letters)
        written = await self._written(drafted, letters) if drafted else []
        outcomes = [outcome for _, _, outcome in written]
        announced = [
            (event, draft, outcome)
            for event, draft, outcome in written
            if outcome.changed or _is_replay(outcome, draft)
        ]
        derived = await self._derive(outcomes)
        await self._writer.announce([*(o for _, _, o in announced), *derived])
        if self._follow_ups is not None:
            # Derived raw events (an email's attachments → documents) go out with the
            # announcement, so a redelivery re-sends them; their ids are deterministic.
            follow_ups: list[RawEvent] = []
            for event, draft, _ in announced:
                follow_ups.extend(self._follow_ups(event, draft))
            await self._writer.send_raw(follow_ups)
        await self._writer.dead_letter(letters)
        self._count(outcomes, letters)
        AGENT_BATCH_SECONDS.labels(self._agent).observe(time.perf_counter() - started)
        return outcomes

    async def _drafts(
        self, parsed: Sequence[tuple[IncomingEvent, RawEvent]], letters: list[DeadLetter]
    ) -> list[Drafted]:
        """The events' drafts; each event that cannot be one becomes its letter. Mapping is
        called in line; heavy work it hands back (an awaitable) runs `concurrency` at once."""
        done: list[Drafted | None] = []
        waiting: list[tuple[int, IncomingEvent, RawEvent, Awaitable[ShardDraft]]] = []
        for incoming, event in parsed:
            try:
                draft = self._to_draft(event)
            except Exception as e:  # noqa: BLE001  # its letter (a bug in mapping code: logged)
                letters.append(self._failed(incoming, event, e))
                continue
            if inspect.isawaitable(draft):
                waiting.append((len(done), incoming, event, draft))
                done.append(None)
            else:
                done.append((incoming, event, draft))
        if waiting:
            results = await asyncio.gather(*(self._bounded(w[3]) for w in waiting))
            for (i, incoming, event, _), result in zip(waiting, results, strict=True):
                if isinstance(result, BaseException):
                    letters.append(self._failed(incoming, event, result))
                else:
                    done[i] = (incoming, event, result)
        return [d for d in done if d is not None]

    async def _bounded(self, work: Awaitable[ShardDraft]) -> ShardDraft | BaseException:
        """`work` awaited with at most `concurrency` at once; its exception returned."""
        try:
            async with self._slots:
                return await work
        except Exception as e:  # noqa: BLE001  # the caller letters it
            return e

    def _failed(self, incoming: IncomingEvent, event: RawEvent, exc: BaseException) -> DeadLetter:
        """The letter of an event whose draft failed; logged unless the event was bad (a
        bug in normalising code must not stop the agent, nor go unnoticed)."""
        if not isinstance(exc, BadEventError):
            logger.error(
                "%s failed on event %s of tenant %s at %s",
                self._agent, event.event_id, event.tenant_id, incoming.where(),
                exc_info=exc,
            )  # fmt: skip
        return self._letter(incoming, exc, self._stage)

    async def _written(
        self, drafted: list[Drafted], letters: list[DeadLetter]
    ) -> list[tuple[RawEvent, ShardDraft, WriteOutcome]]:
        """The drafts written, with their outcomes; their events' letters (stage `store`)
        when the retries ran out."""
        try:
            outcomes = await self._write([d for _, _, d in drafted])
        except Exception as e:  # retries exhausted: keep the events, in the DLQ
            logger.exception("%s could not write %d shards", self._agent, len(drafted))
            letters.extend(self._letter(incoming, e, "store") for incoming, _, _ in drafted)
            return []
        return [(event, draft, o) for (_, event, draft), o in zip(drafted, outcomes, strict=True)]

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
        kinds = Counter((o.shard.shard_type, o.kind.value) for o in outcomes)
        for (shard_type, kind), n in kinds.items():  # one increment per label, not per shard
            EVENTS_PROCESSED.labels(self._agent, kind).inc(n)
            SHARD_WRITES.labels(shard_type, kind).inc(n)
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
