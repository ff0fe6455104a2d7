"""The bridge: RabbitMQ queues → Kafka topics, acknowledged only once the broker has them.

One consumer channel with a prefetch; each delivery is handed to an in-memory inbox
without awaiting (so the inbox keeps delivery order); one sender task takes batches
from the inbox, sends them through one aiokafka producer (per-key order kept: a
partition has one batch in flight), waits for every write, then acknowledges the
whole batch with one `basic_ack(multiple=True)`. A crash before the acknowledgement
means RabbitMQ redelivers: duplicates on the stream, never a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import aiormq
import aiormq.abc
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from bridge.routing import Routed, oversize_letter, route
from bridge.topology import DEAD_LETTER_QUEUE, declare
from core.metrics import BRIDGE_BATCH_SECONDS, BRIDGE_MESSAGES, DEAD_LETTERS
from core.settings import Settings
from streams.admin import BrokerAdmin, bootstrap_servers
from streams.dead_letters import DeadLetter
from streams.topics import DLQ_TOPIC, all_topics

__all__ = ["Bridge"]

logger = logging.getLogger(__name__)


class Bridge:
    """Moves raw events from RabbitMQ onto the stream; `start()`/`stop()` or `async with`."""

    def __init__(self, settings: Settings, broker_url: str) -> None:
        self._settings = settings
        self._broker_url = broker_url
        self._producer: AIOKafkaProducer | None = None
        self._connection: aiormq.abc.AbstractConnection | None = None
        self._channel: aiormq.abc.AbstractChannel | None = None
        self._inbox: asyncio.Queue[aiormq.abc.DeliveredMessage] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._consumer_tags: list[str] = []
        self._in_flight = asyncio.Lock()  # held while a batch is being forwarded
        self.forwarded = 0
        self.dead_lettered = 0

    async def __aenter__(self) -> Bridge:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Ensure topics, connect both sides, declare the queues and start consuming."""
        async with BrokerAdmin(self._broker_url) as admin:
            await admin.ensure_topics(
                all_topics(),
                partitions=self._settings.TOPIC_PARTITIONS,
                replication=self._settings.TOPIC_REPLICATION,
            )
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers(self._broker_url),
            acks="all",
            linger_ms=5,
            max_batch_size=256 * 1024,
            max_request_size=self._settings.BRIDGE_MAX_MESSAGE_BYTES + 64 * 1024,
            request_timeout_ms=30_000,
        )
        await self._producer.start()
        self._connection = await aiormq.connect(self._settings.RABBITMQ_URL)
        self._channel = await self._connection.channel()
        queues = await declare(self._channel, self._settings.BRIDGE_QUEUE_PREFIX)
        await self._channel.basic_qos(prefetch_count=self._settings.BRIDGE_PREFETCH)
        self._sender = asyncio.create_task(self._send_forever(), name="bridge-sender")
        for queue in queues:
            ok = await self._channel.basic_consume(queue, self._on_delivery, no_ack=False)
            if ok.consumer_tag:
                self._consumer_tags.append(ok.consumer_tag)
        logger.info(
            "bridge consuming %s into %s (prefetch %d)",
            queues,
            self._broker_url,
            self._settings.BRIDGE_PREFETCH,
        )

    async def stop(self) -> None:
        """Stop consuming, finish the batch in flight, acknowledge it, close; safe twice."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._channel is not None and not self._channel.is_closed:
            for tag in self._consumer_tags:
                with contextlib.suppress(aiormq.AMQPError, ConnectionError):
                    await self._channel.basic_cancel(tag)
        if self._sender is not None:
            # Let the batch in flight finish and be acknowledged; what is still in the
            # inbox is redelivered by RabbitMQ once the connection closes.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._in_flight.acquire(), self._settings.BRIDGE_STOP_TIMEOUT
                )
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        if self._connection is not None:
            with contextlib.suppress(aiormq.AMQPError, ConnectionError):
                await self._connection.close()
        if self._producer is not None:
            try:
                await asyncio.wait_for(self._producer.stop(), self._settings.BRIDGE_STOP_TIMEOUT)
            except TimeoutError:
                logger.warning("the producer did not stop in time; unacknowledged events return")
        logger.info(
            "bridge stopped: %d forwarded, %d dead-lettered", self.forwarded, self.dead_lettered
        )

    async def wait_closed(self) -> None:
        """Return when the bridge stops or its RabbitMQ connection or sender fails."""
        mine: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._stopping.wait())]
        if self._connection is not None:
            mine.append(asyncio.ensure_future(self._connection.closing))
        waiters = [*mine, *([self._sender] if self._sender is not None else [])]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for future in mine:
            future.cancel()

    async def _on_delivery(self, message: aiormq.abc.DeliveredMessage) -> None:
        # No await before this line: the inbox must keep delivery order.
        self._inbox.put_nowait(message)

    async def _send_forever(self) -> None:
        settings = self._settings
        while True:
            first = await self._inbox.get()
            batch = [first]
            started = time.monotonic()
            deadline = started + settings.BRIDGE_BATCH_WINDOW
            while len(batch) < settings.BRIDGE_BATCH_SIZE:
                try:
                    batch.append(self._inbox.get_nowait())
                except asyncio.QueueEmpty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(self._inbox.get(), remaining))
                    except TimeoutError:
                        break
            async with self._in_flight:
                await self._forward(batch)
            BRIDGE_BATCH_SECONDS.observe(time.monotonic() - started)

    async def _forward(self, batch: Sequence[aiormq.abc.DeliveredMessage]) -> None:
        limit = self._settings.BRIDGE_MAX_MESSAGE_BYTES
        oversize = [m for m in batch if len(m.body) > limit]
        routed = [
            route(m.routing_key or "", m.body)
            if len(m.body) <= limit
            else oversize_letter(m.routing_key or "", m.body, limit, DEAD_LETTER_QUEUE)
            for m in batch
        ]
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((KafkaError, OSError)),
            wait=wait_exponential(multiplier=0.2, max=10),
            reraise=True,
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    logger.warning(
                        "resending a batch of %d (attempt %d)",
                        len(batch),
                        attempt.retry_state.attempt_number,
                    )
                await self._write(routed)
        assert self._channel is not None  # started before the sender
        for message in oversize:  # its bytes stay in RabbitMQ's dead-letter queue
            await self._channel.basic_nack(message.delivery_tag or 0, requeue=False)
        await self._channel.basic_ack(batch[-1].delivery_tag or 0, multiple=True)
        for item in routed:
            if isinstance(item, Routed):
                self.forwarded += 1
                BRIDGE_MESSAGES.labels(item.data_type, "forwarded").inc()
            else:
                self.dead_lettered += 1
                BRIDGE_MESSAGES.labels(item.source.get("routingKey", ""), "dead_lettered").inc()
                DEAD_LETTERS.labels(item.stage, item.error_type).inc()
                logger.warning(
                    "dead-lettered a message from %s: %s",
                    item.source.get("routingKey"),
                    item.error,
                )

    async def _write(self, routed: Sequence[Routed | DeadLetter]) -> None:
        assert self._producer is not None  # started before the sender
        futures = []
        for item in routed:
            if isinstance(item, Routed):
                futures.append(await self._producer.send(item.topic, item.value, key=item.key))
            else:
                futures.append(
                    await self._producer.send(
                        DLQ_TOPIC, item.wire_value(), key=item.key, headers=item.headers()
                    )
                )
        await asyncio.gather(*futures)
