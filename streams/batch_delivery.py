"""Batch delivery beneath the agents: one Faust event per (partition, fetch) batch.

Faust spends ~250 µs of framework CPU on every record it hands an agent (three
event-loop passes, four tasks, eleven callbacks: PLATFORM-NOTES), which bounds any agent
at a few thousand records a second whatever the agent does. The agents here already
work on lists (`streams.consuming.batches`), so the consumer regroups what one fetch
returned for a partition into chunks of up to `batch_delivery_size` records and hands
each chunk to Faust as one message:

- its value is a `RecordBatch` (the records, each an `IncomingEvent` with its own
  offset, for dead letters and logs); its offset is the chunk's *last* record's;
- acknowledging it marks every offset of the chunk acknowledged (`ack`), so Faust's
  own commit logic stays in charge: it commits up to the first offset not yet
  acknowledged, never past a chunk in flight;
- Faust records offsets skipped between two deliveries on a partition as a "gap" (they
  will never come, so count as done). Faust 0.15.3 puts the delivered record's own
  offset in that gap too, which with chunks would mark a whole chunk done before it was
  processed (a commit could pass it and a `kill -9` skip it); `_add_gap` here keeps only
  the offsets before what is being delivered. Chunks of a partition follow each other,
  so the gap tree stays empty: Faust's rebuilds it on every insertion (31% of a busy
  worker's CPU when every chunk added one);
- only the topics in `batched_topics` are regrouped (the raw topics, `shard.events`,
  `linking.requests`, `link.events`, `ml_fields.changes`, `ml_fields.recalculate`: read
  by agents that take lists); table changelogs and every other topic are delivered
  record by record, as Faust does.

Agents read such a stream with concurrency 1 (the default): chunks are processed and
acknowledged in order. A crash re-delivers at most the chunks in flight, whole; the
effects are idempotent (deterministic ids), as they are for record-by-record delivery.

This leans on private Faust internals (`Consumer.getmany`, `_wait_next_records`,
`_add_gap`, `ack`'s bookkeeping, `_to_message`, the scheduler, `take_events`' loop);
faust-streaming is pinned exactly and the canary in `tests/unit/test_batch_delivery.py`
fails when they change.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Collection
from typing import Any

from faust.types import TP, EventT, Message
from faust.types.tuples import ConsumerMessage, ack_lock
from mode.utils.aiter import aiter
from mode.utils.futures import notify

from streams.end_offsets import TrueEndConsumer, TrueEndTransport
from streams.incoming import IncomingEvent

__all__ = [
    "BatchingConsumer",
    "BatchingTransport",
    "RecordBatch",
    "batched_stream",
    "take_records",
]


class RecordBatch(tuple[IncomingEvent, ...]):
    """The records of one delivered chunk, in offset order (the value of its message)."""

    __slots__ = ()


class BatchingConsumer(TrueEndConsumer):
    """`TrueEndConsumer` that delivers the records of `app.batched_topics` in chunks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: the first offset of what is being delivered on each partition
        self._delivering: dict[TP, int] = {}

    async def getmany(
        self,
        timeout: float,  # noqa: ASYNC109  # Faust's signature
    ) -> AsyncIterator[tuple[TP, Message]]:
        records, active = await self._wait_next_records(timeout)
        if records is None or self.should_stop:
            return
        if not self.flow_active:  # as Faust: back to the committed offsets, nothing delivered
            try:
                await self.perform_seek()
            except Exception as exc:  # noqa: BLE001  # logged; the next fetch seeks again
                self.log.warning("exception performing seek when flow not active %r", exc)
            return
        generation = self.app.consumer_generation_id
        batched: Collection[str] = getattr(self.app, "batched_topics", ())
        size: int = getattr(self.app, "batch_delivery_size", 500)
        messages: dict[TP, list[Message]] = {}
        for tp, found in records.items():
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            if tp.topic in batched:
                messages[tp] = [
                    self._batch_message(tp, found[i : i + size]) for i in range(0, len(found), size)
                ]
            else:
                messages[tp] = [self._to_message(tp, r) for r in found]
        for tp, message in self.scheduler.iterate(messages):
            if not self.flow_active or self.app.consumer_generation_id != generation:
                break
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            # Faust's delivery loop handles each message before this generator resumes.
            value = message.value
            first = value[0].offset if isinstance(value, RecordBatch) else message.offset
            self._delivering[tp] = first
            yield tp, message

    def _batch_message(self, tp: TP, records: list[Any]) -> ConsumerMessage:
        batch = RecordBatch(
            IncomingEvent(r.value, r.key, r.topic, r.partition, r.offset) for r in records
        )
        last = records[-1]
        return ConsumerMessage(
            last.topic,
            last.partition,
            last.offset,
            last.timestamp / 1000.0 if last.timestamp is not None else 0.0,
            last.timestamp_type,
            None,
            None,
            batch,  # type: ignore[arg-type]  # Faust types a value as bytes
            None,
            0,
            sum(r.serialized_value_size or 0 for r in records),
            tp,
            generation_id=self.app.consumer_generation_id,
        )

    def ack(self, message: Message) -> bool:
        """Mark a message acknowledged; a chunk's message marks every offset it holds."""
        batch = message.value
        if not isinstance(batch, RecordBatch):
            return bool(super().ack(message))
        # Faust's `ack` for each offset of the chunk (one lock, one notification).
        with ack_lock:
            if message.acked:
                return False
            message.acked = True
            self._unacked_messages.discard(message)
            try:
                if not self.app.topics.acks_enabled_for(message.topic):
                    return False
                tp = message.tp
                committed = self._committed_offset[tp]
                index = self._acked_index[tp]
                first = batch[0].offset if committed is None else max(batch[0].offset, committed)
                new = [o for o in range(first, message.offset + 1) if o not in index]
                index.update(new)
                self._acked[tp].extend(new)
                self._n_acked += len(new)
                return bool(new)
            finally:
                notify(self._waiting_for_ack)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # `offset_to` is the offset being delivered (a chunk's last): Faust marks it done
        # with the gap, and for a chunk every offset before it too. Only the offsets before
        # what is being delivered are a gap; the delivery is done once acknowledged.
        delivering = self._delivering.get(tp, offset_to)
        await super()._add_gap(tp, offset_from, min(delivering, offset_to) - 1)


class BatchingTransport(TrueEndTransport):
    """The aiokafka transport with `BatchingConsumer`."""

    Consumer = BatchingConsumer


async def take_records(
    stream: Any, size: int, within: float, *, lag: bool = False
) -> AsyncGenerator[list[EventT[Any]], None]:
    """The stream's events as lists of up to `size` *records* (a chunk counts its
    records), or what arrived within `within` seconds; each list acknowledged once the
    loop body that took it returns.

    `lag`: each list acknowledged once the body that took the *next* one returns, so a
    body may leave its list's work running while the next list is taken (it must finish
    the previous list's work before it returns). When nothing more arrives within
    `within`, an empty list is taken for that. A list taken by a body that did not
    return (the loop left by an error or cancellation) is never acknowledged, nor the
    one before it: both are delivered again.

    Faust's `Stream.take_events` counts events, and a chunk is one event: its lists would
    hold `size` chunks, or one chunk at a time (`size` 1) however small the chunks are (a
    lively topic read as it is written gives chunks of a few records). This is its loop
    with the count by record; the canary test pins the internals both share.
    """
    events: list[EventT[Any]] = []
    held = [0]
    full = asyncio.Event()
    consumed = asyncio.Event()
    consuming: asyncio.Future[None] | None = None
    channel_it = aiter(stream.channel)

    async def add_to_buffer(value: Any) -> Any:
        nonlocal consuming
        try:
            if consuming is not None:
                try:
                    await consuming
                finally:
                    consuming = None
            event = stream.current_event
            if event is None:  # as Faust: never seen; it would lose the acknowledgement
                stream.log.error("take buffer found no current event")
                return value
            events.append(event)
            held[0] += len(value) if isinstance(value, RecordBatch) else 1
            if held[0] >= size:
                full.set()
                consumed.clear()
                await stream.wait(consumed)
        except asyncio.CancelledError:  # pragma: no cover
            raise
        except Exception as exc:  # as Faust: the stream crashes
            stream.log.exception("Error adding to take buffer")
            await stream.crash(exc)
        return value

    acks = stream.enable_acks
    stream.enable_acks = False  # acknowledged here, once the body is done with them
    stream.add_processor(add_to_buffer)
    stream._enable_passive(channel_it)
    previous: list[EventT[Any]] = []  # `lag`: taken by the last body, not acknowledged
    try:
        while not stream.should_stop:
            await stream.wait_for_stopped(full, timeout=within)
            if events or previous:
                consuming = asyncio.get_running_loop().create_future()
                returned = False
                try:
                    yield list(events)
                    returned = True
                finally:
                    taken = list(events)
                    events.clear()
                    held[0] = 0
                    if lag:
                        done = previous if returned else []
                        previous = taken if returned else []
                    else:
                        done = taken
                    for event in done:
                        await stream.ack(event)
                    notify(consuming)
                    full.clear()
                    consumed.set()
    finally:
        stream.enable_acks = acks
        stream._processors.remove(add_to_buffer)


def batched_stream(stream: Any) -> bool:
    """True when every topic `stream` reads is delivered in chunks."""
    topics: Collection[str] = getattr(stream.channel, "topics", None) or ()
    batched: Collection[str] = getattr(stream.app, "batched_topics", ())
    return bool(topics) and all(t in batched for t in topics)
