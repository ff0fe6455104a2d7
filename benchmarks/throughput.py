"""Throughput of the bridge and the CRM agent, each against a naive baseline, in one run.

    .venv/bin/python benchmarks/throughput.py [--events N]

Bridge: N raw events waiting in RabbitMQ; time until every one is on the stream and
acknowledged. Baseline: the same bridge with batches of one (write, wait, ack, next),
which is what a per-message consumer does.
CRM agent: N raw events waiting on `integration.raw.crm`; time until every shard is
in the store. Baseline: the same worker with `AGENT_BATCH_SIZE=1` (one store
transaction per event).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiormq
from aiokafka import AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.bridge import Bridge
from bridge.publisher import RawEventPublisher
from processors.embedded_broker import EmbeddedBroker, free_port
from processors.settings import Settings
from streams.admin import BrokerAdmin
from streams.topics import DATA_TYPES, all_topics
from tests.fixtures import salesforce as sf

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
COMMAND = str(Path(sys.executable).parent / "integration-processors")


def events(n: int, tenant: str) -> list[bytes]:
    return [sf.line(sf.account(tenant, f"001{i:07d}")) for i in range(n)]


async def bridge_run(n: int, batch_size: int) -> float:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    with EmbeddedBroker() as broker:
        settings = Settings(
            RABBITMQ_URL=RABBITMQ_URL, BRIDGE_QUEUE_PREFIX=prefix, BRIDGE_BATCH_SIZE=batch_size
        )
        async with RawEventPublisher(RABBITMQ_URL, queue_prefix=prefix) as publisher:
            await publisher.publish_events(events(n, f"t-{prefix}"))
        bridge = Bridge(settings, broker.url)
        started = time.perf_counter()
        await bridge.start()
        while bridge.forwarded < n:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        await bridge.stop()
    connection = await aiormq.connect(RABBITMQ_URL)
    channel = await connection.channel()
    for data_type in DATA_TYPES:
        await channel.queue_delete(f"{prefix}.{data_type}")
    await connection.close()
    return n / elapsed


async def _fill_raw_topic(broker: EmbeddedBroker, lines: list[bytes], tenant: str) -> None:
    async with BrokerAdmin(broker.url) as admin:
        await admin.ensure_topics(all_topics(), partitions=4)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=10)
    await producer.start()
    try:
        for i, line in enumerate(lines):
            await producer.send("integration.raw.crm", line, key=f"{tenant}:{i}".encode())
        await producer.flush()
    finally:
        await producer.stop()


def agent_run(n: int, batch_size: int) -> float:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        asyncio.run(_fill_raw_topic(broker, events(n, tenant), tenant))
        db = Path(tmp) / "data" / "shards.sqlite3"
        env = {
            **os.environ,
            "BROKER_URL": broker.url,
            "DATA_DIR": str(Path(tmp) / "data"),
            "PORT": str(free_port()),
            "APP_ID": f"bench-{tenant}",
            "CONSUMER_TYPE": "light",
            "AGENT_BATCH_SIZE": str(batch_size),
            "LOG_LEVEL": "warning",
        }
        worker = subprocess.Popen([COMMAND, "worker"], env=env)
        try:
            while _count(db) == 0:  # from the first shard: start-up and group join excluded
                time.sleep(0.01)
            started, first = time.perf_counter(), _count(db)
            while (done := _count(db)) < n:
                time.sleep(0.05)
            return (done - first) / (time.perf_counter() - started)
        finally:
            worker.terminate()
            worker.wait(60)


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM shards").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    n = parser.parse_args().events
    naive_bridge = asyncio.run(bridge_run(n // 4, batch_size=1))
    bridge = asyncio.run(bridge_run(n, batch_size=500))
    naive_agent = agent_run(n // 4, batch_size=1)
    agent = agent_run(n, batch_size=500)
    print(f"bridge, batches of 500 : {bridge:8.0f} events/s  ({n} events)")
    print(f"bridge, one at a time  : {naive_bridge:8.0f} events/s  ({n // 4} events)")
    print(f"  ratio                : {bridge / naive_bridge:8.1f}x")
    print(f"CRM agent, batch 500   : {agent:8.0f} shards/s  ({n} events)")
    print(f"CRM agent, batch 1     : {naive_agent:8.0f} shards/s  ({n // 4} events)")
    print(f"  ratio                : {agent / naive_agent:8.1f}x")


if __name__ == "__main__":
    main()
