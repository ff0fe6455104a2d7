"""Bridge and worker processes ride out a lost RabbitMQ connection and a paused broker."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
import uuid
from pathlib import Path

import httpx
import pytest

from processors.embedded_broker import free_port
from tests.e2e.conftest import Pipeline, running_pipeline
from tests.e2e.test_lifecycle import _publish
from tests.e2e.test_pipeline import _run, wait_for
from tests.fixtures import salesforce as sf
from tests.integration.test_bridge_reconnect import (
    BROKER_PAUSE,
    bridge_connections,
    broker_pid,
    close_connection,
)

pytestmark = pytest.mark.e2e


def shard_versions(pipe: Pipeline, tenant: str) -> list[int]:
    """The version of every shard of `tenant` in the worker's store."""
    db = pipe.data_dir / "data" / "shards.sqlite3"
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=30) as conn:
        rows = conn.execute(
            "SELECT json_extract(doc, '$.version') FROM shards WHERE tenant_id = ?", (tenant,)
        ).fetchall()
    return [int(v) for (v,) in rows]


def accounts(tenant: str, start: int, count: int) -> list[bytes]:
    return [sf.line(sf.account(tenant, f"001{i:06d}")) for i in range(start, start + count)]


def publish(pipe: Pipeline, lines: list[bytes]) -> None:
    _run(_publish(pipe.env["BRIDGE_QUEUE_PREFIX"], pipe.env["RABBITMQ_URL"], lines))


def alive(pipe: Pipeline, *names: str) -> bool:
    return all(pipe.processes[name].poll() is None for name in names)


def metric(port: int, name: str, **labels: str) -> float:
    """One sample of the bridge's Prometheus text (`BRIDGE_METRICS_PORT`)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match[1].split(","))) == wanted:
            return float(match[2])
    return 0.0


def every_event_once(pipe: Pipeline, tenant: str, total: int, timeout: float) -> None:
    """Each event is one shard: `total` shards, none written twice (version 1)."""
    wait_for("every shard", lambda: len(shard_versions(pipe, tenant)) >= total, timeout)
    time.sleep(1)  # a duplicate still on its way would show now
    versions = shard_versions(pipe, tenant)
    assert len(versions) == total
    assert set(versions) == {1}


def test_the_bridge_reconnects_to_rabbitmq_and_every_event_becomes_one_shard(
    tmp_path: Path, rabbitmq_url: str
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    metrics_port = free_port()
    with running_pipeline(tmp_path, rabbitmq_url, BRIDGE_METRICS_PORT=str(metrics_port)) as pipe:
        bridge_pid = pipe.processes["bridge"].pid
        (first,) = bridge_connections(bridge_pid)
        publish(pipe, accounts(tenant, 0, 800))
        wait_for("the first shards", lambda: len(shard_versions(pipe, tenant)) >= 100, 60)
        close_connection(first)
        publish(pipe, accounts(tenant, 800, 800))
        every_event_once(pipe, tenant, 1600, 90)
        assert alive(pipe, "bridge", "worker")
        (second,) = bridge_connections(bridge_pid)
        assert second != first
        labels = {"component": "bridge", "peer": "rabbitmq"}
        assert metric(metrics_port, "integration_reconnects_total", **labels) == 1


def test_bridge_and_worker_outlive_a_paused_broker(tmp_path: Path, rabbitmq_url: str) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    with running_pipeline(tmp_path, rabbitmq_url) as pipe:
        publish(pipe, accounts(tenant, 0, 1200))
        # Paused mid-stream: the worker has records to process, writes and commits in flight.
        wait_for("the first shards", lambda: len(shard_versions(pipe, tenant)) >= 200, 60)
        pid = broker_pid(pipe.broker)
        os.kill(pid, signal.SIGSTOP)
        paused = time.monotonic()
        try:
            stopped_at = len(shard_versions(pipe, tenant))
            publish(pipe, accounts(tenant, 1200, 200))
            time.sleep(max(0.0, BROKER_PAUSE - (time.monotonic() - paused)))
            assert alive(pipe, "bridge", "worker")
        finally:
            os.kill(pid, signal.SIGCONT)
        resumed = time.monotonic()
        publish(pipe, accounts(tenant, 1400, 200))
        every_event_once(pipe, tenant, 1600, 120)
        print(
            f"pause {BROKER_PAUSE:.0f} s at {stopped_at} of 1600 shards: all "
            f"{time.monotonic() - resumed:.1f} s after SIGCONT"
        )
        assert alive(pipe, "bridge", "worker")
        assert httpx.get(f"{pipe.base_url}/health", timeout=5).status_code == 200
