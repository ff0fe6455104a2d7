"""Session fixtures: the embedded broker, the machine's RabbitMQ, factories for clients."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import aiormq
import pytest
from aiokafka import AIOKafkaConsumer

from processors.embedded_broker import EmbeddedBroker
from streams.topics import DATA_TYPES
from tests.integration.cosmosdb import CosmosDbServer

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _rabbitmq_answers() -> bool:
    async def probe() -> bool:
        try:
            connection = await aiormq.connect(RABBITMQ_URL)
        except (OSError, aiormq.AMQPError):
            return False
        await connection.close()
        return True

    return asyncio.run(probe())


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """A virtual host of its own on the machine's RabbitMQ (started with
    `rabbitmq-server -detached` when down), deleted with all its queues afterwards.

    Every bridge binds its queues to the contract's `integration.events` exchange: on a
    shared virtual host, test sessions running side by side (pytest-xdist workers, a
    developer's second run) would receive each other's events.
    """
    if not _rabbitmq_answers():
        server = shutil.which("rabbitmq-server") or "/usr/sbin/rabbitmq-server"
        subprocess.run([server, "-detached"], check=False)
        deadline = time.monotonic() + 60
        while not _rabbitmq_answers():
            if time.monotonic() > deadline:
                pytest.fail("RabbitMQ did not start within 60 s")
            time.sleep(1)
    vhost = f"tests-{uuid.uuid4().hex[:12]}"
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([ctl, "-q", "add_vhost", vhost], check=True, capture_output=True)
    try:
        subprocess.run(
            [ctl, "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )
        yield f"{RABBITMQ_URL}{vhost}"
    finally:
        subprocess.run([ctl, "-q", "delete_vhost", vhost], check=False, capture_output=True)


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    """A fresh memory-only Tansu broker for one test (it starts in milliseconds)."""
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture
async def queue_prefix(rabbitmq_url: str) -> AsyncIterator[str]:
    """A uuid-named queue prefix; its queues are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    await delete_queues(rabbitmq_url, prefix)


async def delete_queues(rabbitmq_url: str, prefix: str) -> None:
    """Delete the six queues a bridge with this prefix declared."""
    connection = await aiormq.connect(rabbitmq_url)
    channel = await connection.channel()
    for data_type in DATA_TYPES:
        await channel.queue_delete(f"{prefix}.{data_type}")
    await connection.close()


async def consume_all(bootstrap: str, topic: str, *, expect: int, timeout: float = 30.0) -> list:
    """Read `topic` from the start until `expect` records arrived (or the timeout)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                records.extend(messages)
    finally:
        await consumer.stop()
    return records


@pytest.fixture(scope="session")
def cosmosdb() -> Iterator[CosmosDbServer]:
    """One Cosmos DB emulator for the session (memory only; npm-installed on first use)."""
    with CosmosDbServer() as running:
        yield running
