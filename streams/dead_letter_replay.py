"""Reading the dead-letter topic and sending selected dead letters back to their source topics.

What was sent back is recorded on `integration.dlq.replays` (one record per dead
letter, keyed by its `<topic>:<partition>:<offset>`), so a second replay of the same
selection sends nothing: the ledger lives on the broker, beside the dead letters it
describes, and every host that can reach the broker sees it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from core.exceptions import BrokerUnavailableError
from streams.admin import BrokerAdmin, bootstrap_servers
from streams.dead_letter_records import DeadLetterSelection, StoredDeadLetter
from streams.end_offsets import fetch_high_watermarks
from streams.topics import DLQ_REPLAYS_TOPIC, DLQ_TOPIC

__all__ = [
    "DeadLetterSummary",
    "ReplayReport",
    "TopicReader",
    "replay_dead_letters",
    "replayed_positions",
    "summarise_dead_letters",
]

#: How long a read may go without a record before the broker is deemed gone.
READ_STALL_TIMEOUT = 30.0
Progress = Callable[[int], None]


def _no_progress(_: int) -> None:
    return None


class TopicReader:
    """Reads a whole topic, from each partition's beginning up to the end it had at start.

    The end is the fetch high-watermark, not ListOffsets alone: the embedded broker
    reports a wrong end for a partition whose last batch holds several records
    (PLATFORM-NOTES), and a read that stopped there would miss dead letters.
    """

    def __init__(self, broker_url: str, topic: str) -> None:
        self._bootstrap = bootstrap_servers(broker_url)
        self._topic = topic
        self._consumer: AIOKafkaConsumer | None = None
        self._begin: dict[TopicPartition, int] = {}
        self._end: dict[TopicPartition, int] = {}

    async def __aenter__(self) -> TopicReader:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            await consumer.start()
            topics = await consumer.topics()
        except (KafkaError, OSError) as e:
            await consumer.stop()
            message = f"broker {self._bootstrap} does not answer: {e!r}"
            raise BrokerUnavailableError(message) from e
        self._consumer = consumer
        if self._topic not in topics:
            return
        tps = [
            TopicPartition(self._topic, p)
            for p in sorted(consumer.partitions_for_topic(self._topic) or ())
        ]
        consumer.assign(tps)
        self._begin = await consumer.beginning_offsets(tps)
        self._end = await fetch_high_watermarks(self._bootstrap, await consumer.end_offsets(tps))

    async def stop(self) -> None:
        """Disconnect; safe to call twice."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    @property
    def total(self) -> int:
        """How many records the read covers."""
        return sum(max(0, self._end[tp] - self._begin.get(tp, 0)) for tp in self._end)

    async def records(self) -> AsyncIterator[Any]:
        """Every record up to the end, partition by partition in offset order."""
        consumer = self._consumer
        if consumer is None:
            message = "the reader is not started"
            raise BrokerUnavailableError(message)
        remaining = {tp for tp, end in self._end.items() if end > self._begin.get(tp, 0)}
        for tp in remaining:
            consumer.seek(tp, self._begin.get(tp, 0))
        last_progress = time.monotonic()
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=500)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < self._end[tp]:
                        yield record
                last_progress = time.monotonic()
            for tp in list(remaining):
                if await consumer.position(tp) >= self._end[tp]:
                    remaining.discard(tp)
            if time.monotonic() - last_progress > READ_STALL_TIMEOUT:
                message = f"reading {self._topic} stalled with {sorted(remaining)} unread"
                raise BrokerUnavailableError(message)


async def replayed_positions(broker_url: str) -> set[str]:
    """The positions (`<topic>:<partition>:<offset>`) of dead letters already replayed."""
    positions: set[str] = set()
    async with TopicReader(broker_url, DLQ_REPLAYS_TOPIC) as reader:
        async for record in reader.records():
            if record.key:
                positions.add(record.key.decode("utf-8", "replace"))
    return positions


@dataclass
class DeadLetterSummary:
    """What `dlq list` prints: counts of the selected dead letters and a few samples."""

    scanned: int = 0
    selected: int = 0
    replayed: int = 0
    by_reason: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    by_tenant: Counter[str] = field(default_factory=Counter)
    samples: list[StoredDeadLetter] = field(default_factory=list)


async def summarise_dead_letters(
    broker_url: str,
    selection: DeadLetterSelection,
    *,
    samples: int = 5,
    topic: str = DLQ_TOPIC,
    progress: Progress = _no_progress,
) -> DeadLetterSummary:
    """Counts per (stage, error type, source topic) and per tenant, and the first samples."""
    replayed = await replayed_positions(broker_url)
    summary = DeadLetterSummary()
    async with TopicReader(broker_url, topic) as reader:
        async for record in reader.records():
            summary.scanned += 1
            progress(1)
            letter = StoredDeadLetter.of_record(record)
            if not selection.matches(letter):
                continue
            summary.selected += 1
            summary.replayed += letter.position in replayed
            source = letter.source_topic or "-"
            summary.by_reason[letter.stage, letter.error_type, source] += 1
            summary.by_tenant[letter.tenant_id or "-"] += 1
            if len(summary.samples) < samples:
                summary.samples.append(letter)
    return summary


@dataclass
class ReplayReport:
    """What a replay did (or, dry, would do)."""

    scanned: int = 0
    selected: int = 0
    sent: int = 0
    already_replayed: int = 0
    not_replayable: int = 0
    by_topic: Counter[str] = field(default_factory=Counter)


async def replay_dead_letters(
    broker_url: str,
    selection: DeadLetterSelection,
    *,
    dry_run: bool = False,
    topic: str = DLQ_TOPIC,
    replication: int = 1,
    batch_size: int = 500,
    progress: Progress = _no_progress,
    total: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Send each selected dead letter's original bytes (and key) back to its source topic.

    A batch's events are acknowledged by the broker before their ledger records are
    written: a crash in between sends those events once more next time, which their
    deterministic shard ids absorb; an event is never marked replayed without being sent.
    """
    replayed = await replayed_positions(broker_url)
    report = ReplayReport()
    producer: AIOKafkaProducer | None = None
    if not dry_run:
        async with BrokerAdmin(broker_url) as admin:
            # Compacted: one record per dead letter is kept for as long as the topic lives,
            # not only for the broker's default retention.
            await admin.ensure_topics(
                [DLQ_REPLAYS_TOPIC],
                partitions=1,
                replication=replication,
                configs={"cleanup.policy": "compact"},
            )
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers(broker_url), acks="all", linger_ms=5
        )
        await producer.start()
    pending: list[StoredDeadLetter] = []
    try:
        async with TopicReader(broker_url, topic) as reader:
            if total is not None:
                total(reader.total)
            async for record in reader.records():
                report.scanned += 1
                progress(1)
                letter = StoredDeadLetter.of_record(record)
                if not selection.matches(letter):
                    continue
                report.selected += 1
                target = letter.source_topic
                if letter.position in replayed:
                    report.already_replayed += 1
                elif target is None:
                    report.not_replayable += 1
                else:
                    report.by_topic[target] += 1
                    pending.append(letter)
                    if len(pending) >= batch_size:
                        report.sent += await _send(producer, pending)
                        pending = []
            report.sent += await _send(producer, pending)
    finally:
        if producer is not None:
            await producer.stop()
    return report


async def _send(producer: AIOKafkaProducer | None, letters: list[StoredDeadLetter]) -> int:
    if producer is None or not letters:
        return len(letters)
    try:
        sent = [
            await producer.send(
                str(letter.source_topic),
                letter.original(),
                key=letter.key,
                headers=[("replayOf", letter.position.encode())],
            )
            for letter in letters
        ]
        await asyncio.gather(*sent)
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        recorded = [
            await producer.send(
                DLQ_REPLAYS_TOPIC,
                _ledger_value(letter, now),
                key=letter.position.encode(),
            )
            for letter in letters
        ]
        await asyncio.gather(*recorded)
    except (KafkaError, OSError) as e:
        message = f"replay failed after sending part of a batch of {len(letters)}: {e!r}"
        raise BrokerUnavailableError(message) from e
    return len(letters)


def _ledger_value(letter: StoredDeadLetter, replayed_at: str) -> bytes:
    return json.dumps(
        {
            "deadLetter": letter.position,
            "sourceTopic": letter.source_topic,
            "key": letter.key.decode("utf-8", "replace") if letter.key else None,
            "stage": letter.stage,
            "errorType": letter.error_type,
            "failedAt": letter.headers.get("failedAt"),
            "replayedAt": replayed_at,
        },
        separators=(",", ":"),
    ).encode()
