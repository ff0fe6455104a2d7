"""Throughput of the bridge and of each light agent, against its ceiling, in one run.

    .venv/bin/python benchmarks/throughput.py [--events N] [--only bridge,crm,email,...]

Bridge: N raw events waiting in RabbitMQ; time from its start (connected, subscribed)
until every one is on the stream and acknowledged. Reference: RabbitMQ's own
consume-and-ack of N messages (prefetch and acknowledgement every 500, as the bridge
does, nothing else done with them), taking turns with the bridge `--bridge-rounds` times
(the median ratio is reported: RabbitMQ's pace swings between runs), and the
bridge with batches of one (write, wait, ack, next), what a per-message consumer does.
Agents (crm, email, message, event): N raw events waiting on `integration.raw.<type>`;
a `light` worker starts (its linking and ML-field agents running); time from its first
shard until every shard is in the store, and the worker's peak RSS. Then how long until
linking and the ML fields have caught up (the worker's group has committed everything on
`shard.events`, `linking.requests`, `link.events`, `ml_fields.changes`; Faust commits
every 2.8 s): "settled/s" is N over the time from the first shard to then, the backfill
end to end. Ceiling: a Faust agent that only counts (`benchmarks/counting_agent.py`), on
the same broker and topic.
Today's path: the same worker with `BATCH_DELIVERY=false` (Faust hands agents one
record at a time and `take_events` regroups them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import aiormq
from aiokafka import AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stall_repro import process_cpu_seconds
from bridge.bridge import Bridge
from bridge.publisher import RawEventPublisher
from core.settings import Settings
from processors.cli import tune_gc
from processors.embedded_broker import EmbeddedBroker, free_port
from streams.admin import BrokerAdmin
from streams.lag import broker_status
from streams.topics import DATA_TYPES, all_topics
from tests.fixtures import salesforce as sf

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
COMMAND = str(Path(sys.executable).parent / "integration-processors")


def events(n: int, tenant: str, data_type: str = "crm") -> list[bytes]:
    return [json.dumps(ENVELOPES[data_type](tenant, i)).encode() for i in range(n)]


def _envelope(data_type: str, tenant: str, i: int, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventId": f"evt-{data_type}-{tenant}-{i}",
        "eventType": "integration.data.raw",
        "dataType": data_type,
        "tenantId": tenant,
        "integrationId": "int-generic-1",
        "provider": "generic",
        "externalId": f"{data_type}-{i:07d}",
        "occurredAt": "2026-11-02T09:15:00Z",
        "payload": payload,
    }


PRIYA = {"email": "priya.raman@fabrikam-logistics.com", "name": "Priya Raman"}
DAN = {"email": "dan.ortiz@northwind-sales.com", "name": "Dan Ortiz"}
ENVELOPES: dict[str, Callable[[str, int], dict[str, Any]]] = {
    "crm": lambda t, i: sf.account(t, f"001{i:07d}"),
    "email": lambda t, i: _envelope("email", t, i, {
        "messageId": f"<m{i}@fabrikam-logistics.com>", "threadId": f"thr-{i % 500}",
        "subject": "Re: Route Optimization Suite — revised pricing", "from": PRIYA,
        "to": [DAN], "cc": [], "bcc": [], "sentAt": "2026-11-02T09:14:03Z",
        "bodyText": "Dan, thanks for the revised quote.\n\nOn Mon, Dan wrote:\n> Hi Priya",
        "attachments": [],
    }),
    "message": lambda t, i: _envelope("message", t, i, {
        "messageId": f"m-{i}", "threadId": f"th-{i % 100}", "channelId": "C042",
        "channelName": "fabrikam-deal", "sender": DAN, "mentions": [PRIYA],
        "text": "@Priya the revised pricing is in the deck", "sentAt": "2026-11-02T09:20:00Z",
    }),
    "event": lambda t, i: _envelope("event", t, i, {
        "eventId": f"ev-{i}", "title": "Fabrikam — pricing review",
        "start": "2026-11-05T15:00:00Z", "end": "2026-11-05T15:45:00Z", "organizer": DAN,
        "attendees": [{**p, "responseStatus": "accepted"} for p in (PRIYA, DAN)],
        "meetingUrl": "https://meet.example.com/abc", "status": "confirmed",
    }),
}  # fmt: skip


async def bridge_run(n: int, batch_size: int) -> float:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    with EmbeddedBroker() as broker:
        settings = Settings(
            RABBITMQ_URL=RABBITMQ_URL, BRIDGE_QUEUE_PREFIX=prefix, BRIDGE_BATCH_SIZE=batch_size
        )
        async with RawEventPublisher(RABBITMQ_URL, queue_prefix=prefix) as publisher:
            await publisher.publish_events(events(n, f"t-{prefix}"))
        bridge = Bridge(settings, broker.url)
        # from when it is connected and subscribed (topics ensured, producer started), as
        # consume-and-ack is timed from its subscription
        await bridge.start()
        started = time.perf_counter()
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


async def _fill_raw_topic(
    broker: EmbeddedBroker, lines: list[bytes], tenant: str, data_type: str
) -> None:
    async with BrokerAdmin(broker.url) as admin:
        await admin.ensure_topics(all_topics(), partitions=4)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=10)
    await producer.start()
    try:
        for i, line in enumerate(lines):
            await producer.send(f"integration.raw.{data_type}", line, key=f"{tenant}:{i}".encode())
        await producer.flush()
    finally:
        await producer.stop()


async def rabbitmq_consume_and_ack(n: int) -> float:
    """RabbitMQ's own pace here: N persistent messages consumed, acked 500 at a time."""
    queue = f"bench-{uuid.uuid4().hex[:8]}.consume"
    connection = await aiormq.connect(RABBITMQ_URL)
    try:
        channel = await connection.channel()
        await channel.queue_declare(queue, durable=True)
        await channel.confirm_delivery()
        body = events(1, "t")[0]
        for start in range(0, n, 1000):
            await asyncio.gather(*(
                channel.basic_publish(body, routing_key=queue,
                                      properties=aiormq.spec.Basic.Properties(delivery_mode=2))
                for _ in range(min(1000, n - start))
            ))  # fmt: skip
        consumer = await connection.channel()
        await consumer.basic_qos(prefetch_count=Settings().BRIDGE_PREFETCH)
        done = asyncio.Event()
        seen = [0]

        async def on_message(message: Any) -> None:
            seen[0] += 1
            if seen[0] % 500 == 0 or seen[0] == n:
                await consumer.basic_ack(message.delivery.delivery_tag, multiple=True)
            if seen[0] == n:
                done.set()

        started = time.perf_counter()
        await consumer.basic_consume(queue, on_message)
        await done.wait()
        elapsed = time.perf_counter() - started
        await channel.queue_delete(queue)
        return n / elapsed
    finally:
        await connection.close()


def counting_run(data_type: str, n: int) -> float:
    """The counting agent's records/s on N events of `data_type` (the ceiling)."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    with EmbeddedBroker() as broker:
        asyncio.run(_fill_raw_topic(broker, events(n, tenant, data_type), tenant, data_type))
        env = {**os.environ, "BROKER_URL": broker.url, "TOPIC": f"integration.raw.{data_type}",
               "EXPECT": str(n)}  # fmt: skip
        done = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "counting_agent.py"), "worker", "-l",
             "warn"], env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        for line in (done.stdout + done.stderr).splitlines():  # Faust logs what is printed
            if "counted " in line:
                return float(line.split()[-1].removesuffix("/s"))
        raise RuntimeError(f"the counting agent printed no rate: {done.stderr[-2000:]}")


#: what linking and the ML fields read: caught up when the worker has committed all of it
FOLLOW_UP_TOPICS = ("shard.events", "linking.requests", "link.events", "ml_fields.changes")


def _settled(broker: EmbeddedBroker, group: str) -> bool:
    status = asyncio.run(broker_status(broker.url, groups=[group]))
    committed = {(g.topic, g.partition): g.committed for g in status.groups.get(group, [])}
    return all(
        committed.get((topic, partition), 0) >= end
        for topic in FOLLOW_UP_TOPICS
        for partition, end in status.ends.get(topic, {}).items()
    )


class AgentRun(NamedTuple):
    """What `agent_run` measured."""

    rate: float  # shards/s from the first shard to the last
    rss_mb: int  # the worker's peak RSS
    settled: float  # N over the time until linking and ML caught up (0: not waited for)
    worker_us: float  # the worker's CPU time (all its threads) per shard, first to last
    broker_us: float  # the embedded broker's CPU time per shard, over the same time


def agent_run(
    data_type: str,
    n: int,
    batch_size: int | None = None,
    *,
    settle: bool = True,
    **settings: str,
) -> AgentRun:
    """A light worker on N waiting events (`AgentRun`); `batch_size`: `AGENT_BATCH_SIZE`
    (None: the light worker's own)."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        asyncio.run(_fill_raw_topic(broker, events(n, tenant, data_type), tenant, data_type))
        db = Path(tmp) / "data" / "shards.sqlite3"
        env = {
            **os.environ,
            "BROKER_URL": broker.url,
            "DATA_DIR": str(Path(tmp) / "data"),
            "PORT": str(free_port()),
            "APP_ID": f"bench-{tenant}",
            "CONSUMER_TYPE": "light",
            "TENANT_CONFIG": str(_tenant_file(Path(tmp), tenant)),
            "LOG_LEVEL": "warning",
            **settings,
        }
        if batch_size is not None:
            env["AGENT_BATCH_SIZE"] = str(batch_size)
        worker = subprocess.Popen([COMMAND, "worker"], env=env, stdout=subprocess.DEVNULL)
        try:
            while _count(db) == 0:  # from the first shard: start-up and group join excluded
                time.sleep(0.01)
            started, first = time.perf_counter(), _count(db)
            cpu = (process_cpu_seconds(worker.pid), process_cpu_seconds(broker.pid))
            while (done := _count(db)) < n:
                time.sleep(0.05)
            rate = (done - first) / (time.perf_counter() - started)
            worker_us, broker_us = (
                (process_cpu_seconds(pid) - before) / max(done - first, 1) * 1e6
                for pid, before in zip((worker.pid, broker.pid), cpu, strict=True)
            )
            settled = 0.0
            if settle:
                while not _settled(broker, f"bench-{tenant}"):
                    time.sleep(0.2)
                settled = (done - first) / (time.perf_counter() - started)
            return AgentRun(rate, _peak_rss_mb(worker.pid), settled, worker_us, broker_us)
        finally:
            worker.terminate()
            worker.wait(60)


def _peak_rss_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


def _tenant_file(folder: Path, tenant: str) -> Path:
    path = folder / "tenants.yaml"
    path.write_text(f"tenants:\n  {tenant}:\n    internalDomains: [northwind-sales.com]\n")
    return path


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
    parser.add_argument("--only", default="bridge,crm,email,message,event")
    parser.add_argument(
        "--bridge-rounds", type=int, default=3,
        help="consume-and-ack and the bridge, one after the other, this many times",
    )  # fmt: skip
    args = parser.parse_args()
    n, chosen = args.events, args.only.split(",")
    tune_gc(Settings().GC_THRESHOLD)  # as `integration-processors bridge` runs
    if "bridge" in chosen:
        # RabbitMQ's own pace swings between runs here (9-17k/s): the two take turns, and
        # the median of the rounds' ratios is the figure
        pairs = []
        for _ in range(args.bridge_rounds):
            rabbit = asyncio.run(rabbitmq_consume_and_ack(n))
            fast = asyncio.run(bridge_run(n, batch_size=500))
            pairs.append((fast, rabbit))
            print(f"  bridge {fast:.0f}/s, RabbitMQ consume-and-ack {rabbit:.0f}/s "
                  f"({fast / rabbit:.2f}x)", flush=True)  # fmt: skip
        naive = asyncio.run(bridge_run(n // 4, batch_size=1))
        fast, rabbit = (statistics.median(p[i] for p in pairs) for i in (0, 1))
        ratio = statistics.median(f / r for f, r in pairs)
        print(f"bridge (RabbitMQ → stream): {fast:.0f}/s; RabbitMQ consume-and-ack "
              f"{rabbit:.0f}/s ({ratio:.2f}x, median of {len(pairs)} rounds); batches of "
              f"one {naive:.0f}/s ({fast / naive:.1f}x)")  # fmt: skip
    rows = []
    for data_type in ("crm", "email", "message", "event"):
        if data_type in chosen:
            ceiling = counting_run(data_type, n)
            today = agent_run(data_type, n, settle=False, BATCH_DELIVERY="false")
            fast = agent_run(data_type, n)
            rows.append((data_type, fast, today, ceiling))
            print(f"{data_type}: {fast.rate:.0f}/s (settled {fast.settled:.0f}/s, "
                  f"{fast.worker_us:.0f} us CPU a shard), today's path {today.rate:.0f}/s, "
                  f"counting agent {ceiling:.0f}/s", flush=True)  # fmt: skip
    if rows:
        print(f"{'agent':8} {'shards/s':>9} {'settled/s':>9} {'today/s':>8} {'count/s':>8} "
              f"{'vs today':>8} {'vs count':>8} {'RSS MB':>7} {'(today)':>8} "
              f"{'CPU us':>7} {'broker':>7}")  # fmt: skip
        for name, fast, today, ceiling in rows:
            ratios = f"{fast.rate / today.rate:7.2f}x {fast.rate / ceiling:7.2f}x"
            print(f"{name:8} {fast.rate:9.0f} {fast.settled:9.0f} {today.rate:8.0f} "
                  f"{ceiling:8.0f} {ratios} {fast.rss_mb:7d} {today.rss_mb:8d} "
                  f"{fast.worker_us:7.0f} {fast.broker_us:7.0f}")  # fmt: skip
        print(
            f"({n} events per run, light worker with linking and ML-field agents; CPU us: "
            "the worker's CPU time per shard, all threads, first shard to last; broker: "
            "the embedded broker's over the same time)"
        )


if __name__ == "__main__":
    main()
