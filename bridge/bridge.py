"""The bridge: RabbitMQ queues → Kafka topics, acknowledged only once the broker has them.

One consumer channel with a prefetch; each delivery is handed to an in-memory inbox
without awaiting (so the inbox keeps delivery order); one sender task takes batches
from the inbox, sends them through one aiokafka producer as one record batch per
partition (`streams.batched_send`: per-key order kept, a partition has one batch in
flight), waits for every write, then acknowledges the
whole batch with one `basic_ack(multiple=True)`. A crash before the acknowledgement
means RabbitMQ redelivers: duplicates on the stream, never a loss.

Once started, the bridge rides out a lost RabbitMQ connection or channel in process: it
reconnects with exponential backoff (capped by `RECONNECT_MAX_DELAY`), declares the
topology, sets the prefetch and subscribes again. Delivery tags die with their channel
and RabbitMQ redelivers what they named, so deliveries of a closed channel are dropped
from the inbox, left out of the batch being built, and never acknowledged on the new
channel; a batch already written when its channel closed is simply redelivered and
written again (shards are idempotent). A broker that stops answering only delays a
batch: its writes are retried until they succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiormq
import aiormq.abc
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from bridge.routing import Routed, oversize_letter, route
from bridge.topology import DEAD_LETTER_QUEUE, declare
from core.exceptions import ProcessorsError
from core.metrics import BRIDGE_BATCH_SECONDS, BRIDGE_MESSAGES, DEAD_LETTERS, RECONNECTS
from core.settings import Settings
from streams.admin import BrokerAdmin, bootstrap_servers
from streams.batched_send import Record, send_batches
from streams.dead_letters import DeadLetter
from streams.topics import DLQ_TOPIC, all_topics

__all__ = ["Bridge", "connection_name"]

logger = logging.getLogger(__name__)

#: The first wait before reconnecting to RabbitMQ a second time; it doubles up to
#: `RECONNECT_MAX_DELAY` (the first attempt after a loss is immediate).
RECONNECT_FIRST_DELAY = 0.5
#: Seconds to wait for a lost connection's close handshake before abandoning it.
CLOSE_TIMEOUT = 5.0

_AMQP_ERRORS = (aiormq.AMQPError, aiormq.exceptions.ChannelInvalidStateError, OSError)


def connection_name(pid: int | None = None) -> str:
    """The `connection_name` client property of the bridge's RabbitMQ connection.

    Operators (the management UI, `rabbitmqctl list_connections client_properties`) and
    tests find the connection of the bridge in process `pid` (default: this one) by it.
    """
    return f"integration-processors bridge {os.getpid() if pid is None else pid}"


class Bridge:
    """Moves raw events from RabbitMQ onto the stream; `start()`/`stop()` or `async with`."""

    def __init__(self, settings: Settings, broker_url: str) -> None:
        self._settings = settings
        self._broker_url = broker_url
        self._producer: AIOKafkaProducer | None = None
        self._connection: aiormq.abc.AbstractConnection | None = None
        self._channel: aiormq.abc.AbstractChannel | None = None
        #: deliveries in order, and the flag that wakes the sender when one arrives (a
        #: deque and an event: `asyncio.Queue`'s get/put were 7% of the bridge's CPU)
        self._inbox: deque[aiormq.abc.DeliveredMessage] = deque()
        self._arrived = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._consumer_tags: list[str] = []
        self._in_flight = asyncio.Lock()  # held while a batch is being forwarded
        self.forwarded = 0
        self.dead_lettered = 0
        #: RabbitMQ connections re-established after a loss (also `RECONNECTS`).
        self.reconnects = 0
        #: Deliveries of a closed channel left for RabbitMQ to redeliver.
        self.abandoned = 0

    async def __aenter__(self) -> Bridge:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Ensure topics, connect both sides, declare the queues and start consuming.

        Raises when either side cannot be reached: only a bridge that has started
        reconnects by itself.
        """
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
        try:
            await self._producer.start()
            self._sender = asyncio.create_task(self._send_forever(), name="bridge-sender")
            queues = await self._subscribe()
        except BaseException:
            await self.stop()
            raise
        self._keeper = asyncio.create_task(self._stay_connected(), name="bridge-reconnect")
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
        if self._keeper is not None:  # a reconnection under way ends here
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        if self._channel is not None and not self._channel.is_closed:
            for tag in self._consumer_tags:
                with contextlib.suppress(*_AMQP_ERRORS):
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
        await self._close_connection()
        if self._producer is not None:
            try:
                await asyncio.wait_for(self._producer.stop(), self._settings.BRIDGE_STOP_TIMEOUT)
            except TimeoutError:
                logger.warning("the producer did not stop in time; unacknowledged events return")
        logger.info(
            "bridge stopped: %d forwarded, %d dead-lettered, %d RabbitMQ reconnects",
            self.forwarded,
            self.dead_lettered,
            self.reconnects,
        )

    async def wait_closed(self) -> None:
        """Return when the bridge stops; raise what made its sender or reconnection task fail.

        A lost RabbitMQ connection does not end it: the bridge reconnects.
        """
        stopping = asyncio.ensure_future(self._stopping.wait())
        tasks = [t for t in (self._sender, self._keeper) if t is not None]
        await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if self._stopping.is_set():
            return
        for task in tasks:
            if task.done():
                error = None if task.cancelled() else task.exception()
                message = f"the bridge's task {task.get_name()} ended"
                raise error or ProcessorsError(message)

    # --- RabbitMQ: connect, subscribe, and again after a loss ---------------------------

    async def _subscribe(self) -> list[str]:
        """Connect, open the channel, declare the topology, set QoS, consume every queue."""
        settings = self._settings
        properties: dict[str, Any] = {}
        if "name" not in parse_qs(urlsplit(settings.RABBITMQ_URL).query):
            properties["connection_name"] = connection_name()
        connection = await aiormq.connect(settings.RABBITMQ_URL, client_properties=properties)
        self._connection, self._channel, self._consumer_tags = connection, None, []
        try:
            channel = await connection.channel()
            self._channel = channel
            deliver_in_line(channel, self._on_delivery, self._accept)
            queues = await declare(channel, settings.BRIDGE_QUEUE_PREFIX)
            await channel.basic_qos(prefetch_count=settings.BRIDGE_PREFETCH)
            for queue in queues:
                ok = await channel.basic_consume(queue, self._on_delivery, no_ack=False)
                if ok.consumer_tag:
                    self._consumer_tags.append(ok.consumer_tag)
        except BaseException:
            await self._close_connection()
            raise
        return queues

    async def _stay_connected(self) -> None:
        """Wait for the connection or channel to be lost, then reconnect; until stopped."""
        while not self._stopping.is_set():
            reason = await self._lost()
            if reason is None:
                return
            logger.warning("bridge lost RabbitMQ (%s); reconnecting", reason)
            self._drop_old_deliveries()
            await self._close_connection()
            await self._reconnect()

    async def _lost(self) -> BaseException | str | None:
        """Why the connection or the channel closed; None when the bridge stops first."""
        connection, channel = self._connection, self._channel
        if connection is None or channel is None:
            return "not connected"
        stopping = asyncio.ensure_future(self._stopping.wait())
        closings = [
            asyncio.ensure_future(connection.closing),
            asyncio.ensure_future(channel.closing),
        ]
        done, _ = await asyncio.wait([stopping, *closings], return_when=asyncio.FIRST_COMPLETED)
        for future in (stopping, *closings):
            future.cancel()
        if self._stopping.is_set():
            return None
        for future in closings:
            if future in done and not future.cancelled():
                return future.exception() or "closed"
        return "closed"

    async def _reconnect(self) -> None:
        """Connect again, immediately and then with exponential backoff; until stopped."""
        delay = RECONNECT_FIRST_DELAY
        attempt = 0
        lost = time.monotonic()
        while not self._stopping.is_set():
            attempt += 1
            try:
                await self._subscribe()
            except _AMQP_ERRORS as e:
                wait = min(delay, self._settings.RECONNECT_MAX_DELAY) * random.uniform(0.8, 1.0)  # noqa: S311
                logger.warning(
                    "reconnecting to RabbitMQ failed (attempt %d: %r); next try in %.1f s",
                    attempt,
                    e,
                    wait,
                )
                delay *= 2
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), wait)
                continue
            self.reconnects += 1
            RECONNECTS.labels("bridge", "rabbitmq").inc()
            logger.info(
                "bridge reconnected to RabbitMQ after %d attempt(s), %.1f s",
                attempt,
                time.monotonic() - lost,
            )
            return

    def _drop_old_deliveries(self) -> None:
        """Empty the inbox: its deliveries died with their channel and come back redelivered."""
        dropped = len(self._inbox)
        self._inbox.clear()
        self.abandoned += dropped
        if dropped:
            logger.info("dropped %d deliveries of the lost channel (RabbitMQ redelivers)", dropped)

    async def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(*_AMQP_ERRORS, TimeoutError):
                await asyncio.wait_for(connection.close(), CLOSE_TIMEOUT)

    # --- moving the messages --------------------------------------------------------

    async def _on_delivery(self, message: aiormq.abc.DeliveredMessage) -> None:
        # No await before this line: the inbox must keep delivery order.
        self._accept(message)

    def _accept(self, message: aiormq.abc.DeliveredMessage) -> None:
        self._inbox.append(message)
        self._arrived.set()

    async def _send_forever(self) -> None:
        settings = self._settings
        inbox, size = self._inbox, settings.BRIDGE_BATCH_SIZE
        while True:
            while not inbox:
                self._arrived.clear()
                await self._arrived.wait()
            started = time.monotonic()
            deadline = started + settings.BRIDGE_BATCH_WINDOW
            batch: list[aiormq.abc.DeliveredMessage] = []
            while True:
                batch.extend(inbox.popleft() for _ in range(min(len(inbox), size - len(batch))))
                remaining = deadline - time.monotonic()
                if len(batch) >= size or remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    break
            async with self._in_flight:
                await self._forward(batch)
            BRIDGE_BATCH_SECONDS.observe(time.monotonic() - started)

    async def _forward(self, batch: Sequence[aiormq.abc.DeliveredMessage]) -> None:
        """Write a batch to the broker (retried until it succeeds), then settle it."""
        limit = self._settings.BRIDGE_MAX_MESSAGE_BYTES
        failures = 0
        live = list(batch)
        while True:
            # Deliveries of a closed channel come back redelivered: writing them is waste.
            live = self._live(live)
            if not live:
                return
            routed = [
                route(m.routing_key or "", m.body)
                if len(m.body) <= limit
                else oversize_letter(m.routing_key or "", m.body, limit, DEAD_LETTER_QUEUE)
                for m in live
            ]
            try:
                await self._write(routed)
                break
            except (KafkaError, OSError) as e:
                failures += 1
                wait = min(0.2 * 2 ** (failures - 1), 10.0)
                logger.warning(
                    "writing a batch of %d failed (attempt %d: %r); resending in %.1f s",
                    len(live),
                    failures,
                    e,
                    wait,
                )
                await asyncio.sleep(wait)
        if failures:
            RECONNECTS.labels("bridge", "kafka").inc()
            logger.info("the broker took a batch again after %d failed attempt(s)", failures)
        await self._settle(live, limit)
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

    def _live(
        self, batch: Sequence[aiormq.abc.DeliveredMessage]
    ) -> list[aiormq.abc.DeliveredMessage]:
        live = [m for m in batch if not m.channel.is_closed]
        if len(live) < len(batch):
            self.abandoned += len(batch) - len(live)
            logger.info(
                "left %d deliveries of a closed channel to RabbitMQ's redelivery",
                len(batch) - len(live),
            )
        return live

    async def _settle(self, written: Sequence[aiormq.abc.DeliveredMessage], limit: int) -> None:
        """Reject the oversize, acknowledge the rest: each on its own channel, if still open.

        A tag means something only on the channel that delivered it, so a channel that
        closed while the batch was written gets nothing (RabbitMQ redelivers those), and
        nothing is acknowledged on a newer channel.
        """
        by_channel: dict[int, list[aiormq.abc.DeliveredMessage]] = {}
        for message in written:
            by_channel.setdefault(id(message.channel), []).append(message)
        for messages in by_channel.values():
            channel = messages[0].channel
            if channel.is_closed:
                self._unacknowledged(messages, "its channel closed")
                continue
            try:
                for message in messages:  # their bytes stay in RabbitMQ's dead-letter queue
                    if len(message.body) > limit:
                        await channel.basic_nack(message.delivery_tag or 0, requeue=False)
                await channel.basic_ack(messages[-1].delivery_tag or 0, multiple=True)
            # not only AMQP errors: aiormq fails the pending acks of a channel closed under
            # them with a bare `Exception` (seen killing the bridge mid-outage)
            except Exception as e:  # noqa: BLE001
                self._unacknowledged(messages, repr(e))

    def _unacknowledged(self, messages: Sequence[aiormq.abc.DeliveredMessage], why: str) -> None:
        self.abandoned += len(messages)
        logger.warning(
            "%d messages written but not acknowledged (%s): RabbitMQ redelivers them",
            len(messages),
            why,
        )

    async def _write(self, routed: Sequence[Routed | DeadLetter]) -> None:
        assert self._producer is not None  # started before the sender
        by_topic: dict[str, list[Record]] = {}
        for item in routed:
            if isinstance(item, Routed):
                by_topic.setdefault(item.topic, []).append((item.key, item.value, None))
            else:
                letter = (item.key, item.wire_value(), item.headers())
                by_topic.setdefault(DLQ_TOPIC, []).append(letter)
        futures: list[asyncio.Future[Any]] = []
        try:
            for topic, records in by_topic.items():  # a batch per partition, order kept
                futures += await send_batches(self._producer, topic, records)
        except BaseException:
            for future in futures:  # the batch is resent whole: nobody waits for these
                future.add_done_callback(_ignore_outcome)
            raise
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def deliver_in_line(
    channel: Any,
    consumer: Any,
    accept: Callable[[aiormq.abc.DeliveredMessage], None],
) -> bool:
    """Hand the channel's deliveries for `consumer` to `accept` as they are read, in order,
    instead of aiormq's task per delivery around the consumer coroutine (a task created,
    scheduled and run for each message: ~8% of the bridge's time, which RabbitMQ's own
    consume-and-ack reference pays too). Other consumers keep aiormq's way. Relies on
    aiormq's channel internals (`_on_deliver_frame`, `_read_content`, the content-header
    read); where they are not there it changes nothing and says so (False).
    `tests/unit/test_bridge_delivery.py` fails when they change."""
    read_header = getattr(channel, "_Channel__get_content_header", None)
    read_content = getattr(channel, "_read_content", None)
    original = getattr(channel, "_on_deliver_frame", None)
    if read_header is None or read_content is None or original is None:
        logger.warning("aiormq's channel is not as expected: a task per delivery")
        return False

    async def on_deliver_frame(frame: Any) -> None:
        if channel.consumers.get(frame.consumer_tag) != consumer:
            await original(frame)
            return
        header = await read_header()
        accept(await read_content(frame, header))

    channel._on_deliver_frame = on_deliver_frame
    return True
