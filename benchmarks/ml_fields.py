"""ML fields: events per second through the agents, and write-backs on one hot deal.

    .venv/bin/python benchmarks/ml_fields.py [--events N]

1. Table agent (`ml_fields`): N activity snapshots waiting on `ml_fields.changes` over
   500 opportunities; a `light` worker starts; time from the first applied change to
   the last (metric `integration_ml_field_changes_total`). Batched (`AGENT_BATCH_SIZE`
   500, delivered in chunks: one table write per opportunity per batch) against one
   event at a time (`AGENT_BATCH_SIZE=1`, `BATCH_DELIVERY=false`: Faust's record-by-record
   delivery, one table write and changelog record per event, the per-event Faust table
   update of PLATFORM-NOTES) and chunks of one; memory and RocksDB stores.
2. Router and table (`ml_route` → `ml_fields`): N `link.created` events on
   `link.events` for N stored emails linked to 500 opportunities; each is read from the
   store, turned into facts and applied.
3. Hot opportunity: 1,000 emails linked to one opportunity arrive over ~10 s (and as
   one burst); write-backs counted by the opportunity's `mlFieldsVersion`
   (`ML_WRITEBACK_DELAY` 5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from processors.embedded_broker import EmbeddedBroker, free_port
from processors.startup import ensure_shard_types
from shards.links import write_links
from shards.model import Link, ShardDraft, ShardSource
from shards.sqlite import SqliteShardStore
from streams.admin import BrokerAdmin
from streams.models import LinkEvent
from streams.topics import all_topics, internal_topics
from tables.state import Change

COMMAND = str(Path(sys.executable).parent / "integration-processors")
TENANT = "t-bench"
NOW = datetime.now(UTC)


def _source(kind: str, i: int) -> ShardSource:
    return ShardSource(
        provider="bench", integration_id="i1", entity_type=kind, external_id=f"{kind}-{i}",
        event_id=f"e-{kind}-{i}", occurred_at=NOW,
    )  # fmt: skip


async def _prepare_store(db: Path, opportunities: int, emails: int, hot: bool = False) -> None:
    """Opportunities, and `emails` emails each linked (auto) to one of them."""
    db.parent.mkdir(parents=True, exist_ok=True)
    async with SqliteShardStore(db) as store:
        await ensure_shard_types(store)
        await store.upsert_many(
            [
                ShardDraft(
                    id=f"opp-{i}",
                    tenant_id=TENANT,
                    shard_type="Opportunity",
                    schema_version=3,
                    structured_data={
                        "name": f"Deal {i}",
                        "status": "open",
                        "stage": "a",
                        "closeDate": (NOW + timedelta(days=30)).date().isoformat(),
                    },
                    unstructured_data={},
                    source=_source("Opportunity", i),
                )
                for i in range(opportunities)
            ]
        )
        drafts = [
            ShardDraft(
                id=f"mail-{k}",
                tenant_id=TENANT,
                shard_type="Email",
                schema_version=2,
                structured_data={
                    "messageId": f"m{k}",
                    "threadId": f"th{k % 97}",
                    "from": {"email": f"buyer{k % 7}@cust.example.com"},
                    "to": [{"email": "rep@ours.example.com"}],
                    "sentAt": (NOW - timedelta(hours=k % 700)).isoformat(),
                    "direction": "inbound" if k % 3 else "outbound",
                },
                unstructured_data={},
                source=_source("Email", k),
            )
            for k in range(emails)
        ]
        for start in range(0, len(drafts), 1000):
            await store.upsert_many(drafts[start : start + 1000])
        for k in range(emails):
            target = "opp-0" if hot else f"opp-{k % opportunities}"
            link = Link(target_shard_id=target, target_shard_type="Opportunity",
                        confidence=0.95, method="bench", status="auto")  # fmt: skip
            await write_links(store, TENANT, f"mail-{k}", [link])


def _worker(broker: EmbeddedBroker, data: Path, **settings: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    tenants = data.parent / "tenants.yaml"
    tenants.write_text(f"tenants:\n  {TENANT}: {{internalDomains: [ours.example.com]}}\n")
    env = {
        **os.environ, "BROKER_URL": broker.url, "DATA_DIR": str(data), "PORT": str(port),
        "APP_ID": f"bench-{port}", "CONSUMER_TYPE": "light", "TENANT_CONFIG": str(tenants),
        "LOG_LEVEL": "warning", **settings,
    }  # fmt: skip
    return subprocess.Popen([COMMAND, "worker"], env=env), f"http://127.0.0.1:{port}"


def _applied(url: str) -> float:
    try:
        text = httpx.get(f"{url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("integration_ml_field_changes_total "):
            return float(line.split()[1])
    return 0.0


async def _produce(broker: EmbeddedBroker, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    async with BrokerAdmin(broker.url) as admin:
        await admin.ensure_topics([*all_topics(), *internal_topics()], partitions=4)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=10)
    await producer.start()
    try:
        for key, value in items:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def _measure(url: str, expect: int, worker: subprocess.Popen) -> float:
    while _applied(url) == 0:
        if worker.poll() is not None:
            raise RuntimeError("the worker exited")
        time.sleep(0.02)
    started, first = time.perf_counter(), _applied(url)
    while (done := _applied(url)) < expect:
        time.sleep(0.05)
    return (done - first) / (time.perf_counter() - started)


def table_run(n: int, batch_size: int, store: str, **settings: str) -> float:
    """Snapshots straight onto `ml_fields.changes`: the table agent alone."""
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        data = Path(tmp) / "data"
        asyncio.run(_prepare_store(data / "shards.sqlite3", 500, 0))
        changes = []
        for k in range(n):
            facts = {"k": "email", "t": int(NOW.timestamp()) - k % 50_000, "eng": [],
                     "sr": 0, "dir": "in" if k % 3 else "out", "th": f"th{k % 97}"}  # fmt: skip
            change = Change(TENANT, f"opp-{k % 500}", "activity", facts, f"mail-{k}")
            changes.append((change.key.encode(), change.to_json()))
        asyncio.run(_produce(broker, "ml_fields.changes", changes))
        worker, url = _worker(
            broker, data, AGENT_BATCH_SIZE=str(batch_size), TABLE_STORE=store, **settings
        )
        try:
            return _measure(url, n, worker)
        finally:
            worker.terminate()
            worker.wait(120)


def route_run(n: int) -> float:
    """`link.created` events for stored, linked emails: router, store reads and table."""
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        data = Path(tmp) / "data"
        asyncio.run(_prepare_store(data / "shards.sqlite3", 500, n))
        events = []
        for k in range(n):
            event = LinkEvent(
                type="link.created", event_id=f"mail-{k}:opp:auto", tenant_id=TENANT,
                shard_id=f"mail-{k}", target_shard_id=f"opp-{k % 500}",
                target_shard_type="Opportunity", confidence=0.95, method="bench",
                status="auto", occurred_at=NOW,
            )  # fmt: skip
            events.append((f"{TENANT}:mail-{k}".encode(), json.dumps(event.to_wire()).encode()))
        asyncio.run(_produce(broker, "link.events", events))
        worker, url = _worker(broker, data, TABLE_STORE="rocksdb://")
        try:
            return _measure(url, n, worker)
        finally:
            worker.terminate()
            worker.wait(120)


def hot_run(spread: float) -> tuple[int, float]:
    """1,000 emails on one opportunity over `spread` seconds: write-backs, and seconds."""
    n = 1000
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        data = Path(tmp) / "data"
        db = data / "shards.sqlite3"
        asyncio.run(_prepare_store(db, 1, n, hot=True))
        asyncio.run(_produce(broker, "link.events", []))
        worker, url = _worker(broker, data, TABLE_STORE="rocksdb://", ML_WRITEBACK_DELAY="5")
        try:
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            time.sleep(8)  # the group join

            async def send() -> None:
                producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
                await producer.start()
                try:
                    for k in range(n):
                        event = LinkEvent(
                            type="link.created", event_id=f"mail-{k}:opp-0:auto",
                            tenant_id=TENANT, shard_id=f"mail-{k}", target_shard_id="opp-0",
                            target_shard_type="Opportunity", confidence=0.95,
                            method="bench", status="auto", occurred_at=NOW,
                        )  # fmt: skip
                        await producer.send(
                            "link.events", json.dumps(event.to_wire()).encode(),
                            key=f"{TENANT}:mail-{k}".encode(),
                        )  # fmt: skip
                        if spread:
                            await asyncio.sleep(spread / n)
                    await producer.flush()
                finally:
                    await producer.stop()

            started = time.perf_counter()
            asyncio.run(send())
            while _applied(url) < n:
                time.sleep(0.1)
            time.sleep(7)  # the last write-back is due at most 5 s after the last change
            elapsed = time.perf_counter() - started

            async def version() -> int:
                async with SqliteShardStore(db) as store:
                    shard = await store.get(TENANT, "opp-0")
                    assert shard is not None and shard.ml_fields is not None
                    assert shard.ml_fields["activityCount"] == n, shard.ml_fields
                    return shard.ml_fields_version or 0

            return asyncio.run(version()), elapsed
        finally:
            worker.terminate()
            worker.wait(120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--tables-only", action="store_true", help="the table agent runs only")
    args = parser.parse_args()
    n = args.events
    # one event at a time: Faust's record-by-record delivery, a table write per event
    naive = table_run(n // 4, 1, "memory://", BATCH_DELIVERY="false")
    fast = table_run(n, 500, "memory://")
    naive_rocks = table_run(n // 4, 1, "rocksdb://", BATCH_DELIVERY="false")
    chunk_of_one = table_run(n // 4, 1, "rocksdb://")
    rocks = table_run(n, 500, "rocksdb://")
    print(f"{'part':52} {'events/s':>9}")
    print(f"{'ml_fields agent, one event at a time (memory)':52} {naive:9.0f}")
    print(f"{'ml_fields agent, batched (memory)':52} {fast:9.0f}  {fast / naive:.1f}x")
    print(f"{'ml_fields agent, one event at a time (RocksDB)':52} {naive_rocks:9.0f}")
    print(f"{'ml_fields agent, chunks of one (RocksDB)':52} {chunk_of_one:9.0f}")
    print(f"{'ml_fields agent, batched (RocksDB)':52} {rocks:9.0f}  {rocks / naive_rocks:.1f}x")
    if args.tables_only:
        return
    routed = route_run(n // 2)
    print(f"{'link.events → ml_route → ml_fields (RocksDB)':52} {routed:9.0f}")
    print(f"({n} snapshots batched, {n // 4} one at a time, {n // 2} link events routed)")
    for spread in (10.0, 0.0):
        writes, elapsed = hot_run(spread)
        label = f"over {spread:.0f} s" if spread else "as one burst"
        print(f"hot opportunity, 1,000 emails {label}: {writes} write-backs ({elapsed:.1f} s)")


if __name__ == "__main__":
    main()
