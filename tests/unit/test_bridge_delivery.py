"""`bridge.bridge.deliver_in_line`: the bridge takes deliveries as aiormq reads them, in
order, without a task per delivery, on a real RabbitMQ channel; and a canary for the aiormq
internals it relies on."""

from __future__ import annotations

import asyncio
import os
import uuid

import aiormq
import aiormq.abc

from bridge.bridge import deliver_in_line

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


def test_aiormq_channel_internals_are_as_the_bridge_expects() -> None:
    """Fails when an aiormq release renames what `deliver_in_line` replaces or calls: pin
    aiormq or follow the change (the bridge would fall back to a task per delivery)."""
    channel = aiormq.Channel
    assert callable(getattr(channel, "_on_deliver_frame", None))
    assert callable(getattr(channel, "_read_content", None))
    assert callable(getattr(channel, "_Channel__get_content_header", None))
    reader = channel._reader.__code__.co_names  # the reader looks the handler up per frame
    assert "_on_deliver_frame" in reader


async def test_deliveries_reach_the_bridge_in_order_without_a_task_each() -> None:
    queue = f"tests-in-line-{uuid.uuid4().hex[:8]}"
    connection = await aiormq.connect(RABBITMQ_URL)
    try:
        channel = await connection.channel()
        await channel.queue_declare(queue)
        await channel.basic_qos(prefetch_count=100)
        accepted: list[bytes] = []
        tasks: list[bytes] = []
        done = asyncio.Event()

        def accept(message: aiormq.abc.DeliveredMessage) -> None:
            accepted.append(message.body)
            if len(accepted) == 300:
                done.set()

        async def consumer(message: aiormq.abc.DeliveredMessage) -> None:
            tasks.append(message.body)  # aiormq's way: never reached for this consumer

        assert deliver_in_line(channel, consumer, accept)
        for n in range(300):
            await channel.basic_publish(str(n).encode(), routing_key=queue)
        ok = await channel.basic_consume(queue, consumer, no_ack=True)
        await asyncio.wait_for(done.wait(), 30)
        assert accepted == [str(n).encode() for n in range(300)]
        assert tasks == []
        # another consumer on the channel keeps aiormq's way
        other: list[bytes] = []
        seen = asyncio.Event()

        async def plain(message: aiormq.abc.DeliveredMessage) -> None:
            other.append(message.body)
            seen.set()

        await channel.basic_cancel(ok.consumer_tag)
        await channel.basic_consume(queue, plain, no_ack=True)
        await channel.basic_publish(b"plain", routing_key=queue)
        await asyncio.wait_for(seen.wait(), 30)
        assert other == [b"plain"]
    finally:
        channel = await connection.channel()
        await channel.queue_delete(queue)
        await connection.close()
