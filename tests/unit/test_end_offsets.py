"""The consumer's positions after a rebalance (issue 11), on a consumer with fake insides.

The race itself needs real processes (tests/e2e/test_stall.py, benchmarks/stall_repro.py);
these pin the two rules that close it: no delivery between recovery resuming the stream
partitions and resuming the flow, and no partition left where discarded deliveries put it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from faust.types import TP

from streams.end_offsets import TrueEndConsumer

STREAM_0 = TP("shard.events", 0)
STREAM_1 = TP("shard.events", 1)
CHANGELOG = TP("app-ml_fields-changelog", 0)


class FakeThread:
    def __init__(self, committed: dict[TP, int | None]) -> None:
        self.committed = committed
        self.to_beginning: list[TopicPartition] = []

    async def seek_to_committed(self) -> dict[TP, int | None]:
        return self.committed

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        self.to_beginning.extend(partitions)


def consumer(*, rebalancing: bool, committed: dict[TP, int | None] | None = None) -> Any:
    c: Any = TrueEndConsumer.__new__(TrueEndConsumer)
    c.app = SimpleNamespace(
        rebalancing=rebalancing,
        tables=SimpleNamespace(changelog_topics={CHANGELOG.topic}),
        conf=SimpleNamespace(consumer_auto_offset_reset="earliest"),
    )
    c._thread = FakeThread(committed or {})
    c._active_partitions = {CHANGELOG}
    c._paused_partitions = {STREAM_0, STREAM_1}
    c._buffered_partitions = set()
    c._read_offset = defaultdict(lambda: None)
    c._committed_offset = defaultdict(lambda: None)
    c.flow_active = True
    c.can_resume_flow = asyncio.Event()
    c.suspend_flow = asyncio.Event()
    return c


def test_resuming_stream_partitions_in_a_rebalance_stops_the_flow_first() -> None:
    # recovery: resume the stream partitions, seek, clear the buffers, resume the flow
    c = consumer(rebalancing=True)
    c.resume_partitions({STREAM_0, STREAM_1})
    assert not c.flow_active  # nothing is delivered before recovery resumes the flow
    assert c.suspend_flow.is_set()
    assert {STREAM_0, STREAM_1} <= c._active_partitions
    assert not c._paused_partitions


def test_changelogs_and_steady_state_resumes_keep_the_flow() -> None:
    c = consumer(rebalancing=True)
    c.resume_partitions({CHANGELOG})  # recovery reads changelogs with the flow on
    assert c.flow_active
    c = consumer(rebalancing=False)
    c.resume_partitions({STREAM_0})  # e.g. the watchdog's repair
    assert c.flow_active
    assert STREAM_0 in c._active_partitions


def test_a_partition_without_a_committed_offset_restarts_at_the_beginning() -> None:
    # aiokafka's seek_to_committed leaves such a partition where it is: past whatever
    # was delivered before the buffers were cleared
    c = consumer(rebalancing=True, committed={STREAM_0: 12, STREAM_1: None, CHANGELOG: None})
    asyncio.run(c.perform_seek())
    assert c._thread.to_beginning == [TopicPartition("shard.events", 1)]
    assert dict(c._read_offset) == {STREAM_0: 12, STREAM_1: None, CHANGELOG: None}
    assert dict(c._committed_offset) == {STREAM_0: 12}


async def test_the_fetch_wait_setting_reaches_the_aiokafka_consumer(monkeypatch) -> None:
    """Canary for the internals `ShortPollThread` relies on: Faust makes the consumer with
    its fixed wait, aiokafka's `start()` hands `_fetch_max_wait_ms` to the fetcher."""
    import inspect

    import aiokafka
    from faust.transport.drivers import aiokafka as faust_aiokafka

    from streams.end_offsets import ShortPollThread

    assert "fetch_max_wait_ms=1500" in inspect.getsource(
        faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
    )
    made = aiokafka.AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", fetch_max_wait_ms=1500)
    monkeypatch.setattr(
        faust_aiokafka.AIOKafkaConsumerThread, "_create_worker_consumer", lambda self, t: made
    )
    thread: Any = ShortPollThread.__new__(ShortPollThread)
    thread.app = SimpleNamespace(fetch_max_wait_ms=100)
    assert thread._create_worker_consumer(None) is made
    assert made._fetch_max_wait_ms == 100
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in inspect.getsource(
        aiokafka.AIOKafkaConsumer.start
    )
