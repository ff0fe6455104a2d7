"""The contract's topics as Faust topics, and the writer agents emit through."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import faust
from faust.types import TopicT

from core.metrics import DEAD_LETTERS
from shards.model import WriteOutcome
from streams.batched_send import send_batches
from streams.dead_letters import DeadLetter
from streams.models import (
    LinkEvent,
    RawEvent,
    RecalculateRequest,
    RelinkRequest,
    ShardEvent,
    shard_event_value,
)
from streams.topics import (
    DATA_TYPES,
    DLQ_TOPIC,
    LINK_EVENTS_TOPIC,
    LINKING_REQUESTS_TOPIC,
    ML_FIELDS_CHANGES_TOPIC,
    ML_FIELDS_RECALCULATE_TOPIC,
    SHARD_EVENTS_TOPIC,
    event_key,
    raw_topic,
)

__all__ = ["StreamWriter", "Topics", "to_json"]

logger = logging.getLogger(__name__)


def to_json(value: ShardEvent | LinkEvent | RecalculateRequest | RelinkRequest) -> bytes:
    """Compact JSON bytes of a wire model: `to_wire`, by pydantic's serialiser (~5x
    `json.dumps` of `to_wire`; the same document)."""
    return value.model_dump_json(by_alias=True, exclude_none=True).encode()


@dataclass(frozen=True)
class Topics:
    """Every topic of CONTRACT §2; values and keys are raw bytes (JSON we encode)."""

    raw: dict[str, TopicT]
    dlq_topic: TopicT
    shard_events_topic: TopicT
    link_events_topic: TopicT
    ml_fields_recalculate_topic: TopicT
    linking_requests_topic: TopicT

    @classmethod
    def declare(cls, app: faust.App, partitions: int) -> Topics:
        """The topics, declared on `app` with `partitions` partitions each."""

        def topic(name: str) -> TopicT:
            return app.topic(
                name,
                key_type=bytes,
                value_type=bytes,
                key_serializer="raw",
                value_serializer="raw",
                partitions=partitions,
            )

        return cls(
            raw={t: topic(raw_topic(t)) for t in DATA_TYPES},
            dlq_topic=topic(DLQ_TOPIC),
            shard_events_topic=topic(SHARD_EVENTS_TOPIC),
            link_events_topic=topic(LINK_EVENTS_TOPIC),
            ml_fields_recalculate_topic=topic(ML_FIELDS_RECALCULATE_TOPIC),
            linking_requests_topic=topic(LINKING_REQUESTS_TOPIC),
        )

    def batched_names(self) -> frozenset[str]:
        """The topics whose agents take lists (`streams.consuming.batches`): the raw
        topics, `shard.events`, `linking.requests`, `link.events`, and the ML-field
        table's inputs `ml_fields.changes` and `ml_fields.recalculate`."""
        topics = [*self.raw.values(), self.shard_events_topic, self.linking_requests_topic,
                  self.link_events_topic, self.ml_fields_recalculate_topic]  # fmt: skip
        names = {name for topic in topics for name in topic.topics}
        return frozenset({*names, ML_FIELDS_CHANGES_TOPIC})


class StreamWriter:
    """Sends what agents produce; buffered sends, flushed by Faust before each commit.

    Records go to the app's aiokafka producer directly, one batch per partition per call
    (`streams.batched_send`), into the accumulator Faust flushes before it commits the
    offsets of what produced them: Faust's `Topic.send` adds a future, a pending message,
    sensors and a debug record per record (12% of a busy CRM worker's main thread), and
    aiokafka's `send` a coroutine per record (7%; py-spy, `docs/profiles.md`).
    """

    def __init__(self, topics: Topics) -> None:
        self._topics = topics

    async def send(
        self,
        topic: TopicT,
        records: Iterable[tuple[bytes | None, bytes]],
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """`records` (key, value) onto `topic`, one producer batch per partition."""
        batch = [(key, value, headers) for key, value in records]
        if not batch:
            return
        producer = await topic.app.maybe_start_producer()
        # Faust's producer without transactions is one aiokafka producer (the canary in
        # tests/unit/test_batch_delivery.py pins `_ensure_producer`)
        aiokafka_producer = producer._ensure_producer()
        await send_batches(aiokafka_producer, topic.get_topic_name(), batch)

    async def announce(self, writes: Iterable[WriteOutcome]) -> None:
        """Emit the writes' shard events (`shard_event`) on `shard.events`, keyed
        `<tenantId>:<shardId>`."""
        await self.send(
            self._topics.shard_events_topic,
            (
                (event_key(w.shard.tenant_id, w.shard.id).encode(), shard_event_value(w))
                for w in writes
            ),
        )

    async def link_events(self, events: Iterable[LinkEvent]) -> None:
        """Emit link decisions on `link.events`, keyed `<tenantId>:<shardId>` (the source)."""
        await self.send(
            self._topics.link_events_topic,
            ((event_key(e.tenant_id, e.shard_id).encode(), to_json(e)) for e in events),
        )

    async def recalculate(self, request: RecalculateRequest) -> None:
        """Queue one opportunity's ML-field recalculation on `ml_fields.recalculate`."""
        key = event_key(request.tenant_id, request.opportunity_shard_id).encode()
        await self.send(self._topics.ml_fields_recalculate_topic, [(key, to_json(request))])

    async def relink(self, requests: Iterable[RelinkRequest]) -> None:
        """Ask the linking agent that owns each activity to re-evaluate it (`linking.requests`)."""
        await self.send(
            self._topics.linking_requests_topic,
            ((event_key(r.tenant_id, r.shard_id).encode(), to_json(r)) for r in requests),
        )

    async def send_raw(self, events: Iterable[RawEvent]) -> None:
        """Put derived raw events on their data type's raw topic, keyed like the bridge."""
        for event in events:
            value = json.dumps(event.to_wire(), ensure_ascii=False, separators=(",", ":"))
            key = event_key(event.tenant_id, event.external_id).encode()
            await self.send(self._topics.raw[event.data_type], [(key, value.encode())])

    async def dead_letter(self, letters: Iterable[DeadLetter]) -> None:
        """Send each letter to `integration.dlq` with its reason, and count it."""
        for letter in letters:
            DEAD_LETTERS.labels(letter.stage, letter.error_type).inc()
            logger.warning(
                "dead-lettered an event at %s (%s): %s %s",
                letter.stage,
                letter.error_type,
                letter.error,
                letter.source,
            )
            await self.send(
                self._topics.dlq_topic, [(letter.key, letter.wire_value())], letter.headers()
            )
