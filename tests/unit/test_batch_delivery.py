"""Batch delivery beneath the agents (`streams.batch_delivery`), on a consumer with fake
insides: what a fetch becomes, and which offset Faust may commit as chunks are acked.

Real processes under `kill -9` and rebalances: the chaos suite, tests/e2e/test_stall.py
and the killed-worker test of tests/e2e/test_ml_fields.py all run on this path.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections import defaultdict
from importlib.metadata import version
from types import SimpleNamespace
from typing import Any

from aiokafka.structs import ConsumerRecord
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.utils import DefaultSchedulingStrategy
from faust.types import TP
from intervaltree import IntervalTree

from streams.batch_delivery import BatchingConsumer, RecordBatch, take_records

RAW = TP("integration.raw.crm", 0)
OTHER = TP("integration.raw.crm", 1)
CHANGELOG = TP("app-ml_fields-changelog", 0)


def record(tp: TP, offset: int) -> ConsumerRecord[bytes, bytes]:
    value = f"v{offset}".encode()
    return ConsumerRecord(
        tp.topic, tp.partition, offset, 1_700_000_000_000, 0, None, value, None, 0, len(value), ()
    )


def consumer(records: dict[TP, list[Any]] | None = None, size: int = 500) -> Any:
    c: Any = BatchingConsumer.__new__(BatchingConsumer)
    c.app = SimpleNamespace(
        batched_topics={RAW.topic},
        batch_delivery_size=size,
        consumer_generation_id=1,
        monitor=SimpleNamespace(track_tp_end_offset=lambda tp, offset: None),
        topics=SimpleNamespace(acks_enabled_for=lambda topic: True),
    )
    c._delivering = {}
    c._buffered_partitions = set()
    c.flow_active = True
    c.scheduler = DefaultSchedulingStrategy()
    c.highwater = lambda tp: 0
    c._acked = defaultdict(list)
    c._acked_index = defaultdict(set)
    c._gap = defaultdict(IntervalTree)
    c._committed_offset = defaultdict(lambda: None)
    c._read_offset = defaultdict(lambda: None)
    c._unacked_messages = set()
    c._waiting_for_ack = None
    c._n_acked = 0

    async def fetched(timeout: float) -> tuple[dict[TP, list[Any]], set[TP]]:
        return records or {}, set((records or {}).keys())

    c._wait_next_records = fetched
    c._stopped, c._crashed = asyncio.Event(), asyncio.Event()  # Service.should_stop
    return c


async def deliver(c: Any) -> list[Any]:
    """One fetch through Faust's delivery loop (`_drain_messages`): the gap before each
    message, then its read offset (the canary pins these lines of Faust's loop)."""
    delivered = []
    async for tp, message in c.getmany(timeout=1.0):
        r_offset = c._read_offset[tp]
        if r_offset is None or message.offset >= r_offset:
            if message.offset - (r_offset or 0) > 1 and r_offset:
                await c._add_gap(tp, r_offset + 1, message.offset)
            c._read_offset[tp] = message.offset
        delivered.append(message)
    return delivered


async def test_a_fetch_becomes_chunks_of_the_batched_topics_and_records_of_the_others() -> None:
    c = consumer(
        {
            RAW: [record(RAW, o) for o in range(1200)],
            CHANGELOG: [record(CHANGELOG, o) for o in range(3)],
        }
    )
    delivered = await deliver(c)
    chunks = [m for m in delivered if m.topic == RAW.topic]
    assert [m.offset for m in chunks] == [499, 999, 1199]
    assert all(isinstance(m.value, RecordBatch) for m in chunks)
    assert [r.offset for m in chunks for r in m.value] == list(range(1200))
    assert [r.value for r in chunks[1].value][:2] == [b"v500", b"v501"]
    changelog = [m for m in delivered if m.topic == CHANGELOG.topic]
    assert [(m.offset, m.value) for m in changelog] == [(0, b"v0"), (1, b"v1"), (2, b"v2")]


async def test_a_commit_never_passes_a_chunk_still_in_flight() -> None:
    c = consumer({RAW: [record(RAW, o) for o in range(100, 300)]}, size=100)
    c._committed_offset[RAW] = c._read_offset[RAW] = 100
    first, second = await deliver(c)
    # Faust marks the delivered offset itself as a gap; with chunks that let a commit
    # pass the second chunk, not yet processed, once the first one was acknowledged.
    assert c.ack(first)
    assert c._new_offset(RAW) == 200
    c._committed_offset[RAW] = 200
    assert c._new_offset(RAW) is None  # nothing more is done
    assert c.ack(second)
    assert c._new_offset(RAW) == 300


async def test_chunks_acknowledged_out_of_order_commit_only_the_contiguous_part() -> None:
    c = consumer({RAW: [record(RAW, o) for o in range(100, 130)]}, size=10)
    c._committed_offset[RAW] = c._read_offset[RAW] = 100
    a, b, d = await deliver(c)
    assert c.ack(d)
    assert c._new_offset(RAW) is None
    assert c.ack(a)
    assert c._new_offset(RAW) == 110
    c._committed_offset[RAW] = 110
    assert c.ack(b)
    assert c._new_offset(RAW) == 130
    assert not c.ack(b)  # twice is once


async def test_offsets_missing_between_chunks_do_not_hold_the_commit() -> None:
    # offsets that will never come (compaction, transaction markers) are Faust's gap
    c = consumer({RAW: [*map(lambda o: record(RAW, o), range(50, 60)),
                        *map(lambda o: record(RAW, o), range(70, 80))]}, size=10)  # fmt: skip
    c._committed_offset[RAW] = c._read_offset[RAW] = 50
    a, b = await deliver(c)
    assert c.ack(a)
    assert c.ack(b)
    assert c._new_offset(RAW) == 80


class _Stream:
    """The parts of a Faust stream `take_records` uses (as `take_events` does)."""

    def __init__(self, values: list[Any]) -> None:
        self.channel = values
        self.values = values
        self.enable_acks = True
        self.should_stop = False
        self.current_event: Any = None
        self._processors: list[Any] = []
        self.acked: list[Any] = []
        self.log = SimpleNamespace(exception=lambda *a: None, error=lambda *a: None)

    def add_processor(self, fun: Any) -> None:
        self._processors.append(fun)

    def _enable_passive(self, channel: Any) -> None:
        async def feed() -> None:
            for value in self.values:
                self.current_event = SimpleNamespace(value=value)
                for fun in self._processors:
                    await fun(value)

        asyncio.get_running_loop().create_task(feed())

    async def wait(self, event: asyncio.Event) -> None:
        await event.wait()

    async def wait_for_stopped(self, event: asyncio.Event, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    async def ack(self, event: Any) -> None:
        self.acked.append(event.value)

    async def crash(self, exc: BaseException) -> None:
        raise AssertionError(exc)


def _chunk(n: int) -> RecordBatch:
    return RecordBatch(SimpleNamespace(offset=i) for i in range(n))  # type: ignore[misc]


async def test_take_records_counts_records_not_chunks() -> None:
    stream = _Stream([_chunk(300), _chunk(300), _chunk(5), b"one record", _chunk(2)])
    taken = []
    async for events in take_records(stream, size=500, within=0.2):
        taken.append([e.value for e in events])
        assert stream.acked == [v for t in taken[:-1] for v in t]  # after the body only
        if sum(len(t) for t in taken) == 5:
            stream.should_stop = True
    assert [[len(v) for v in t] for t in taken] == [[300, 300], [5, 10, 2]]
    assert stream.enable_acks


async def test_take_records_with_lag_acknowledges_a_list_after_the_next_body() -> None:
    """`lag`: a list is acknowledged once the body that took the next one returns; when
    nothing more arrives an empty list is taken to finish the last one; a body that does
    not return leaves its list and the one before unacknowledged."""
    stream = _Stream([_chunk(300), _chunk(300), _chunk(5)])
    taken: list[list[Any]] = []
    async for events in take_records(stream, size=500, within=0.2, lag=True):
        taken.append([e.value for e in events])
        assert stream.acked == [v for t in taken[:-2] for v in t]
        if not events:
            stream.should_stop = True
    assert [[len(v) for v in t] for t in taken] == [[300, 300], [5], []]
    assert [len(v) for v in stream.acked] == [300, 300, 5]

    stream = _Stream([_chunk(300), _chunk(300), _chunk(5)])
    lists = take_records(stream, size=500, within=0.2, lag=True)
    assert len(await anext(lists)) == 2
    assert len(await anext(lists)) == 1  # the first body returned
    await lists.aclose()  # the second did not (an error, a cancellation)
    assert stream.acked == []


def test_canary_the_faust_internals_batch_delivery_relies_on() -> None:
    """Fails when faust-streaming changes what `streams.batch_delivery` leans on."""
    assert version("faust-streaming") == "0.15.3"
    drain = inspect.getsource(FaustConsumer._drain_messages)
    assert "await self._add_gap(tp, r_offset + 1, offset)" in drain
    assert "set_read_offset(tp, offset)" in drain
    assert "getmany(timeout=1.0)" in drain
    get = inspect.getsource(FaustConsumer.getmany)
    assert "records, active_partitions = await self._wait_next_records(timeout)" in get
    assert "yield tp, to_message(tp, record)" in get
    ack = inspect.getsource(FaustConsumer.ack)
    for part in ("_acked_index[tp]", "self._acked[tp]", "self._n_acked += 1",
                 "self._unacked_messages.discard(message)", "notify(self._waiting_for_ack)",
                 "with ack_lock:"):  # fmt: skip
        assert part in ack, part
    new_offset = inspect.getsource(FaustConsumer._new_offset)
    assert "consecutive_numbers(acked)" in new_offset
    gap = inspect.getsource(FaustConsumer._add_gap)
    assert "gap_for_tp.addi(offset_from, offset_to + 1)" in gap
    from faust.streams import Stream

    take = inspect.getsource(Stream.take_events)
    for part in ("self.add_processor(add_to_buffer)", "self._enable_passive(",
                 "self.enable_acks = False", "await self.ack(event)",
                 "self._processors.remove(add_to_buffer)", "self.current_event"):  # fmt: skip
        assert part in take, part
    # streams.channels.StreamWriter hands batches to the aiokafka producer Faust wraps,
    # and Faust's flush before a commit must wait for them
    from faust.transport.drivers.aiokafka import Producer as FaustProducer

    ensure = inspect.getsource(FaustProducer._ensure_producer)
    assert "return self._producer" in ensure
    flush = inspect.getsource(FaustProducer.flush)
    assert "await self._producer.flush()" in flush
    # processors.app.ProcessorsApp._new_producer sizes the buffer of table writes
    from faust.transport.producer import ProducerBuffer

    assert "if self.size > self.max_messages:" in inspect.getsource(ProducerBuffer.wait_until_ebb)
