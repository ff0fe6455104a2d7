"""`streams.batched_send` on the embedded broker: every record lands on the partition
`send` would have chosen, in order, with its headers, also past a full batch."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from processors.embedded_broker import EmbeddedBroker
from streams.admin import BrokerAdmin
from streams.batched_send import send_batches
from tests.conftest import consume_all

TOPIC = "batched.send.test"


async def test_records_land_where_send_puts_them_in_order(broker: EmbeddedBroker) -> None:
    async with BrokerAdmin(broker.url) as admin:
        await admin.ensure_topics([TOPIC], partitions=4, replication=1)
    # a small batch size: records of one partition fill several batches
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, max_batch_size=2048)
    await producer.start()
    try:
        records = [
            (f"key-{i % 25}".encode(), f"{i:05d}".encode() * 20, [("n", str(i).encode())])
            for i in range(600)
        ]
        futures = await send_batches(producer, TOPIC, records)
        assert len(futures) > 4  # more than one batch per partition
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    stored = await consume_all(broker.bootstrap, TOPIC, expect=len(records))
    assert len(stored) == len(records)
    partitions = [0, 1, 2, 3]
    per_key: dict[bytes, list[int]] = {}
    for record in stored:
        assert record.partition == DefaultPartitioner()(record.key, partitions, partitions)
        n = int(dict(record.headers)["n"])
        assert record.value == f"{n:05d}".encode() * 20
        per_key.setdefault(record.key, []).append(n)
    assert sorted(per_key) == sorted({k for k, _, _ in records})
    for numbers in per_key.values():
        assert numbers == sorted(numbers)  # a key's records in the order sent
