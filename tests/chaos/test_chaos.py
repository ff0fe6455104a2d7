"""Chaos: a mixed workload through real processes while they are killed, cut off and paused.

The embedded broker, the machine's RabbitMQ, a bridge, two light workers and one heavy
worker (shared SQLite store and blob folder, a data folder each for their tables). While
the seeded workload is published, at random moments (seeded too, so a failure replays
with the same `CHAOS_SEED`): `kill -9` of any one process and its restart, `rabbitmqctl
close_connection` on the bridge, a broker pause (SIGSTOP ... SIGCONT). After quiescence:

- every good event is exactly one shard at its final version; every bad event is in the
  dead-letter topic (one entry per event; redelivery after a kill may repeat an entry,
  which is counted and reported, since Tansu gives no transactions);
- links and suggestions are what one linking pass over the final store gives;
- every opportunity's ML fields equal the rebuild from the store;
- every partition's lag is 0, no partition was left stalled.

CI runs `CHAOS_FAULTS=3` (the default); a long run:
`CHAOS_FAULTS=30 CHAOS_SEED=7 .venv/bin/pytest tests/chaos -q -s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from bridge.publisher import RawEventPublisher
from core.tenants import TenantDirectory
from linking.service import Linker, activity_order
from processors.embedded_broker import EmbeddedBroker, free_port
from shards.kinds import ACTIVITY_TYPES
from shards.sqlite import SqliteShardStore
from streams.topics import DLQ_TOPIC
from tests.chaos.workload import CONFIG, INTERNAL, TENANT, Workload, build
from tests.conftest import delete_queues
from tests.integration.test_bridge_reconnect import (
    bridge_connections,
    broker_pid,
    close_connection,
)

pytestmark = pytest.mark.chaos

COMMAND = str(Path(sys.executable).parent / "integration-processors")
SEED = int(os.environ.get("CHAOS_SEED", "1"))
FAULTS = int(os.environ.get("CHAOS_FAULTS", "3"))
#: longest broker pause; the long run uses 30 s
PAUSE = float(os.environ.get("CHAOS_PAUSE", "8"))
EMAILS = int(os.environ.get("CHAOS_EMAILS", "400"))
QUIESCE_TIMEOUT = float(os.environ.get("CHAOS_QUIESCE_TIMEOUT", "240"))
WORKERS = ("light-1", "light-2", "heavy")


@dataclass
class Cluster:
    """The processes of one chaos run."""

    root: Path
    env: dict[str, str]
    broker: EmbeddedBroker
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)

    def start(self, name: str) -> None:
        role = {"bridge": None, "light-1": "light", "light-2": "light", "heavy": "heavy"}[name]
        env = {**self.env, "DATA_DIR": str(self.root / name)}
        if role is None:
            env["BRIDGE_METRICS_PORT"] = str(self.ports[name])
            args = ["bridge"]
        else:
            env.update(
                CONSUMER_TYPE=role,
                PORT=str(self.ports[name]),
                WEB_CANONICAL_URL=f"http://127.0.0.1:{self.ports[name]}",
            )
            args = ["worker"]
        log = (self.root / "logs" / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen([COMMAND, *args], env=env, stdout=log, stderr=log)

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def healthy(self, name: str) -> bool:
        try:
            answer = httpx.get(f"http://127.0.0.1:{self.ports[name]}/health", timeout=1)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    def alive(self) -> list[str]:
        """Names of processes that exited on their own (none should)."""
        return [n for n, p in self.processes.items() if p.poll() is not None]

    def metrics(self, name: str) -> str:
        return httpx.get(f"http://127.0.0.1:{self.ports[name]}/metrics", timeout=5).text


@contextlib.contextmanager
def running_cluster(root: Path, rabbitmq_url: str) -> Iterator[Cluster]:
    (root / "logs").mkdir(parents=True)
    run_id = uuid.uuid4().hex[:10]
    tenants = root / "tenants.yaml"
    tenants.write_text(f"tenants:\n  {TENANT}: {{internalDomains: [{INTERNAL}]}}\n")
    with EmbeddedBroker() as broker:
        env = {
            **os.environ,
            "BROKER_URL": broker.url,
            "RABBITMQ_URL": rabbitmq_url,
            "STORE_URL": f"sqlite:///{root / 'shards.sqlite3'}",
            "BLOB_DIR": str(root / "blobs"),
            "APP_ID": f"chaos-{run_id}",
            "BRIDGE_QUEUE_PREFIX": f"chaos-{run_id}",
            "TENANT_CONFIG": str(tenants),
            "TABLE_STORE": "rocksdb://",
            "STALL_TIMEOUT": "20",
            "ML_WRITEBACK_DELAY": "2",
            "LOG_LEVEL": "info",
        }
        ports = {name: free_port() for name in ("bridge", *WORKERS)}
        cluster = Cluster(root, env, broker, ports)
        try:
            for name in ("bridge", *WORKERS):
                cluster.start(name)
            deadline = time.monotonic() + 90
            while not all(cluster.healthy(n) for n in WORKERS):
                assert time.monotonic() < deadline, "the workers did not start"
                assert not cluster.alive(), f"exited at start: {cluster.alive()}"
                time.sleep(0.5)
            yield cluster
        finally:
            for process in cluster.processes.values():
                process.send_signal(signal.SIGCONT)
                process.send_signal(signal.SIGTERM)
            for name, process in list(cluster.processes.items()):
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    cluster.kill(name)
            asyncio.run(delete_queues(rabbitmq_url, f"chaos-{run_id}"))


# --- faults ------------------------------------------------------------------------------------


def inject(cluster: Cluster, rng: random.Random) -> None:
    """One fault, chosen and timed by `rng`."""
    kind = rng.choice(("kill", "kill", "close_connection", "pause"))
    if kind == "kill":
        name = rng.choice(("bridge", *WORKERS))
        cluster.kill(name)
        time.sleep(rng.uniform(0.5, 3))
        cluster.start(name)
        cluster.faults.append(f"kill -9 {name}")
    elif kind == "close_connection":
        connections = bridge_connections(cluster.processes["bridge"].pid)
        for connection in connections:
            close_connection(connection)
        cluster.faults.append(f"close_connection bridge ({len(connections)})")
    else:
        seconds = rng.uniform(PAUSE / 2, PAUSE)
        os.kill(broker_pid(cluster.broker), signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(broker_pid(cluster.broker), signal.SIGCONT)
        cluster.faults.append(f"broker paused {seconds:.1f} s")


# --- checks ------------------------------------------------------------------------------------


def stored(db: Path) -> dict[str, tuple[str, int]]:
    """Shard id → (source event id, version) of the tenant's shards."""
    with sqlite3.connect(db, timeout=30) as conn:
        rows = conn.execute(
            "SELECT id, json_extract(doc, '$.source.eventId'), json_extract(doc, '$.version') "
            "FROM shards WHERE tenant_id = ?",
            (TENANT,),
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def fingerprint(db: Path) -> int:
    """Changes whenever any shard of the tenant or any suggestion is written."""
    with sqlite3.connect(db, timeout=30) as conn:
        shards = conn.execute("SELECT id, etag FROM shards WHERE tenant_id = ?", (TENANT,))
        suggestions = conn.execute(
            "SELECT id, status FROM suggested_links WHERE tenant_id = ?", (TENANT,)
        )
        return hash((tuple(sorted(shards.fetchall())), tuple(sorted(suggestions.fetchall()))))


def dead_letters(cluster: Cluster, markers: list[str]) -> dict[str, int]:
    """How many dead letters carry each marker."""

    async def read() -> list[bytes]:
        consumer = AIOKafkaConsumer(
            DLQ_TOPIC,
            bootstrap_servers=cluster.broker.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        values: list[bytes] = []
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=1500, max_records=5000)
                if not batch:
                    return values
                values += [r.value for records in batch.values() for r in records if r.value]
        finally:
            await consumer.stop()

    values = asyncio.run(read())
    return {m: sum(m.encode() in v[:2000] for v in values) for m in markers}


def lag(cluster: Cluster) -> float:
    """The workers' summed consumer lag (`integration_consumer_lag`)."""
    total = 0.0
    for name in WORKERS:
        for line in cluster.metrics(name).splitlines():
            if line.startswith("integration_consumer_lag{"):
                total += float(line.rsplit(" ", 1)[1])
    return total


def stalls(cluster: Cluster) -> dict[str, float]:
    found = {}
    for name in WORKERS:
        for line in cluster.metrics(name).splitlines():
            match = re.match(r"integration_consumer_stall_repairs_total\{(.*)\} (\S+)", line)
            if match:
                found[f"{name} {match[1]}"] = float(match[2])
    return found


async def linking_fixpoint(db: Path) -> tuple[int, list[str]]:
    """Activities checked, and how those whose links or suggestions one pass would change
    differ (before → after)."""
    async with SqliteShardStore(db) as store:
        tenants = TenantDirectory({TENANT: CONFIG})

        class Silent:
            async def link_events(self, events: object) -> None:
                return None

        linker = Linker(store, tenants, Silent())
        activities = []
        for shard_type in sorted(ACTIVITY_TYPES):
            cursor = None
            while True:
                page = await store.query(
                    TENANT, shard_type=shard_type, limit=500, continuation=cursor
                )
                activities += page.items
                cursor = page.continuation
                if not cursor:
                    break

        async def state() -> dict[str, object]:
            pending, seen, cursor = {}, [], None
            while True:
                items, cursor = await store.list_suggestions(
                    TENANT, status="pending_review", limit=500, continuation=cursor
                )
                seen += items
                if not cursor:
                    break
            for s in seen:
                pending.setdefault(s.source_shard_id, []).append((s.target_shard_id, s.confidence))
            out = {}
            for a in activities:
                shard = await store.get(TENANT, a.id)
                assert shard is not None
                links = sorted((k.target_shard_id, k.status, k.confidence) for k in shard.links)
                out[a.id] = (links, sorted(pending.get(a.id, [])))
            return out

        before = await state()
        for activity in sorted(activities, key=activity_order):
            await linker.link(TENANT, activity.id)
        after = await state()
        return len(activities), [
            f"{k}: {before[k]} -> {after[k]}" for k in before if before[k] != after[k]
        ]


def test_chaos(tmp_path: Path, rabbitmq_url: str) -> None:
    rng = random.Random(SEED)
    with running_cluster(tmp_path, rabbitmq_url) as cluster:
        work: Workload = build(SEED, tmp_path / "blobs", emails=EMAILS)
        db = tmp_path / "shards.sqlite3"
        print(
            f"\nchaos seed {SEED}: {len(work.messages)} messages, {len(work.shards)} shards "
            f"expected, {len(work.bad)} bad, {FAULTS} faults"
        )
        chunks = [work.messages[i :: FAULTS + 1] for i in range(FAULTS + 1)]
        started = time.monotonic()
        for i, chunk in enumerate(chunks):
            asyncio.run(_publish(cluster, chunk))
            if i < FAULTS:
                time.sleep(rng.uniform(0.5, 4))
                inject(cluster, rng)
        print(f"faults: {cluster.faults}")

        deadline = time.monotonic() + QUIESCE_TIMEOUT
        missing: dict[str, str] = dict(work.shards)
        while time.monotonic() < deadline:
            have = stored(db)
            missing = {s: e for s, e in work.shards.items() if have.get(s, ("", 0))[0] != e}
            if not missing:
                break
            assert not cluster.alive(), f"a process exited: {cluster.alive()}"
            time.sleep(2)
        assert not missing, f"{len(missing)} shards missing or not at their final version"
        quiet = time.monotonic()
        print(f"all shards at their final version {quiet - started:.0f} s after the start")

        while lag(cluster) > 0:
            assert time.monotonic() < deadline, f"lag stays at {lag(cluster)}"
            time.sleep(1)
        # and nothing is written any more (the ML write-backs are due 2 s after a change)
        still, last = 0, fingerprint(db)
        while still < 3:
            assert time.monotonic() < deadline, "the store keeps changing"
            time.sleep(2)
            now = fingerprint(db)
            still, last = (still + 1, last) if now == last else (0, now)

        have = stored(db)
        ours = {s for s in have if s in work.shards}
        assert ours == set(work.shards)
        extra = set(have) - set(work.shards)
        assert not extra, f"{len(extra)} shards nobody asked for"

        letters = dead_letters(cluster, work.bad)
        assert [m for m, n in letters.items() if n == 0] == []
        repeated = {m: n for m, n in letters.items() if n > 1}
        print(f"dead letters: {len(letters)} bad events, repeated by redelivery: {repeated}")

        checked, differ = asyncio.run(linking_fixpoint(db))
        assert differ == [], f"{len(differ)} of {checked} activities differ from one pass: {differ}"

        rebuild = subprocess.run(
            [COMMAND, "ml-fields-rebuild", "--tenant", TENANT, "--dry-run"],
            env={**cluster.env, "DATA_DIR": str(tmp_path / "cli")},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        summary = rebuild.stdout.strip().splitlines()[-1]
        print(f"ML fields: {summary}")
        assert re.search(r": (\d+) already equal, 0 differ", summary), summary
        assert int(summary.split()[0]) >= len(work.opportunities)

        assert lag(cluster) == 0
        print(f"linking: {checked} activities equal one pass; stall repairs: {stalls(cluster)}")
        assert not cluster.alive()


async def _publish(cluster: Cluster, messages: list) -> None:
    async with RawEventPublisher(
        cluster.env["RABBITMQ_URL"], queue_prefix=cluster.env["BRIDGE_QUEUE_PREFIX"]
    ) as publisher:
        await publisher.publish_many((m.body, m.routing_key) for m in messages)
