"""RabbitMQ names and declarations of CONTRACT §1."""

from __future__ import annotations

from typing import Final

import aiormq.abc

from streams.topics import DATA_TYPES, raw_topic

__all__ = [
    "DEAD_LETTER_EXCHANGE",
    "DEAD_LETTER_QUEUE",
    "EXCHANGE",
    "declare",
    "queue_name",
]

EXCHANGE: Final = "integration.events"
DEAD_LETTER_EXCHANGE: Final = "integration.events.dlx"
#: Where RabbitMQ parks what the bridge rejects outright (it could not even reach the DLQ topic).
DEAD_LETTER_QUEUE: Final = "integration-processors.dead-letters"


def queue_name(data_type: str, prefix: str = "integration-processors") -> str:
    """`integration-processors.<dataType>`."""
    return f"{prefix}.{data_type}"


async def declare(
    channel: aiormq.abc.AbstractChannel, prefix: str = "integration-processors"
) -> list[str]:
    """Declare (idempotently) the exchange, the six queues and the dead-letter exchange.

    Returns the queue names, in `DATA_TYPES` order.
    """
    await channel.exchange_declare(exchange=EXCHANGE, exchange_type="topic", durable=True)
    await channel.exchange_declare(
        exchange=DEAD_LETTER_EXCHANGE, exchange_type="topic", durable=True
    )
    await channel.queue_declare(DEAD_LETTER_QUEUE, durable=True)
    await channel.queue_bind(DEAD_LETTER_QUEUE, DEAD_LETTER_EXCHANGE, routing_key="#")
    queues = []
    for data_type in DATA_TYPES:
        name = queue_name(data_type, prefix)
        await channel.queue_declare(
            name, durable=True, arguments={"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE}
        )
        await channel.queue_bind(name, EXCHANGE, routing_key=raw_topic(data_type))
        queues.append(name)
    return queues
