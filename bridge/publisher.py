"""Publishing raw envelopes to RabbitMQ exactly as integration-sync does (CONTRACT §1)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import aiormq
import aiormq.abc
from aiormq.abc import ConfirmationFrameType
from pamqp.commands import Basic

from bridge.topology import EXCHANGE, declare
from streams.topics import raw_topic

__all__ = ["RawEventPublisher", "read_jsonl"]


def read_jsonl(path: Path) -> Iterator[bytes]:
    """The non-blank lines of a JSONL file, as bytes, unparsed (bad lines stay bad)."""
    with path.open("rb") as lines:
        for line in lines:
            if line.strip():
                yield line.rstrip(b"\r\n")


class RawEventPublisher:
    """Publishes envelopes with publisher confirms; `start()`/`stop()` or `async with`."""

    def __init__(self, rabbitmq_url: str, *, window: int = 500, queue_prefix: str | None = None):
        self._url = rabbitmq_url
        self._window = window
        self._queue_prefix = queue_prefix
        self._connection: aiormq.abc.AbstractConnection | None = None
        self._channel: aiormq.abc.AbstractChannel | None = None

    async def __aenter__(self) -> RawEventPublisher:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connect and declare the topology, so nothing published is unroutable."""
        self._connection = await aiormq.connect(self._url)
        self._channel = await self._connection.channel(publisher_confirms=True)
        if self._queue_prefix is not None:
            await declare(self._channel, self._queue_prefix)
        else:
            await self._channel.exchange_declare(
                exchange=EXCHANGE, exchange_type="topic", durable=True
            )

    async def stop(self) -> None:
        """Close; safe to call twice."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    async def publish(self, body: bytes, routing_key: str) -> None:
        """Publish one message and wait for the broker's confirm."""
        await self.publish_many([(body, routing_key)])

    async def publish_many(self, messages: Iterable[tuple[bytes, str]]) -> int:
        """Publish `(body, routing key)` pairs, pipelined `window` at a time; the count."""
        channel = self._channel
        if channel is None:
            message = "the publisher is not started"
            raise RuntimeError(message)
        count = 0
        pending: list[asyncio.Future[ConfirmationFrameType | None]] = []
        for body, routing_key in messages:
            pending.append(
                asyncio.ensure_future(
                    channel.basic_publish(
                        body,
                        exchange=EXCHANGE,
                        routing_key=routing_key,
                        properties=Basic.Properties(
                            delivery_mode=2, content_type="application/json"
                        ),
                        mandatory=True,
                    )
                )
            )
            if len(pending) >= self._window:
                count += await _confirmed(pending)
                pending = []
        return count + await _confirmed(pending)

    async def publish_events(self, bodies: Iterable[bytes]) -> int:
        """Publish envelopes, each on the routing key of its own `dataType`."""
        return await self.publish_many((b, routing_key_of(b)) for b in bodies)


def routing_key_of(body: bytes) -> str:
    """`integration.raw.<dataType>` of an envelope; a line that is no envelope goes to crm."""
    try:
        decoded: Any = json.loads(body)
    except ValueError:
        return raw_topic("crm")
    data_type = decoded.get("dataType") if isinstance(decoded, dict) else None
    return raw_topic(data_type if isinstance(data_type, str) else "crm")


async def _confirmed(pending: list[asyncio.Future[ConfirmationFrameType | None]]) -> int:
    for frame in await asyncio.gather(*pending):
        if not isinstance(frame, Basic.Ack):
            message = f"RabbitMQ did not confirm a message: {frame!r}"
            raise aiormq.AMQPError(message)
    return len(pending)
