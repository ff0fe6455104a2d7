"""Start-up order, failing fast, graceful SIGTERM, and the one-command dev run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import httpx

from bridge.publisher import RawEventPublisher
from processors.embedded_broker import EmbeddedBroker, free_port
from tests.conftest import delete_queues
from tests.e2e.conftest import COMMAND
from tests.e2e.test_pipeline import _run, wait_for
from tests.fixtures import salesforce as sf


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "PORT": str(free_port()),
        "APP_ID": f"life-{uuid.uuid4().hex[:8]}",
        "BRIDGE_QUEUE_PREFIX": f"life-{uuid.uuid4().hex[:8]}",
        **extra,
    }


def test_worker_without_a_broker_exits_non_zero(tmp_path: Path) -> None:
    e = env(
        tmp_path,
        BROKER_URL=f"kafka://127.0.0.1:{free_port()}",
        STARTUP_RETRIES="2",
        STARTUP_RETRY_DELAY="0.2",
    )
    done = subprocess.run([COMMAND, "worker"], env=e, capture_output=True, timeout=60)
    assert done.returncode != 0
    assert b"not ready after 2 attempts" in done.stdout + done.stderr


def test_worker_whose_store_cannot_open_exits_non_zero(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    with EmbeddedBroker() as broker:
        e = env(
            tmp_path,
            BROKER_URL=broker.url,
            STORE_URL=f"sqlite://{blocker}/shards.db",
            STARTUP_RETRIES="2",
            STARTUP_RETRY_DELAY="0.2",
        )
        done = subprocess.run([COMMAND, "worker"], env=e, capture_output=True, timeout=60)
    assert done.returncode != 0
    assert b"shard store not ready after 2 attempts" in done.stdout + done.stderr


def test_sigterm_finishes_in_flight_work_and_a_restart_completes_it(
    tmp_path: Path, rabbitmq_url: str
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    total = 3000
    with EmbeddedBroker() as broker:
        e = env(tmp_path, BROKER_URL=broker.url, RABBITMQ_URL=rabbitmq_url)
        log = (tmp_path / "processes.log").open("ab")
        bridge = subprocess.Popen([COMMAND, "bridge"], env=e, stdout=log, stderr=log)
        worker = subprocess.Popen([COMMAND, "worker"], env=e, stdout=log, stderr=log)
        try:
            _run(
                _publish(
                    e["BRIDGE_QUEUE_PREFIX"],
                    rabbitmq_url,
                    [sf.line(sf.account(tenant, f"001{i:05d}")) for i in range(total)],
                )
            )
            db = tmp_path / "data" / "shards.sqlite3"
            wait_for("first shards", lambda: db.exists() and _count(db, tenant) >= 200, 60)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(60) == 0
            stopped_at = _count(db, tenant)
            worker = subprocess.Popen([COMMAND, "worker"], env=e, stdout=log, stderr=log)
            wait_for("every shard", lambda: _count(db, tenant) >= total, 120)
            time.sleep(1)
            assert _count(db, tenant) == total
            assert stopped_at <= total
            with sqlite3.connect(db) as conn:
                versions = {
                    v
                    for (v,) in conn.execute(
                        "SELECT json_extract(doc, '$.version') FROM shards WHERE tenant_id = ?",
                        (tenant,),
                    )
                }
            assert versions == {1}
        finally:
            for process in (worker, bridge):
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
            _run(delete_queues(rabbitmq_url, e["BRIDGE_QUEUE_PREFIX"]))


def test_dev_runs_everything_and_ctrl_c_stops_it_all(tmp_path: Path, rabbitmq_url: str) -> None:
    e = env(tmp_path, RABBITMQ_URL=rabbitmq_url)
    e.pop("BROKER_URL", None)
    dev = subprocess.Popen(
        [COMMAND, "dev"],
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{e['PORT']}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the dev worker's /health", healthy, 90)
        assert httpx.get(f"{url}/health").json()["status"] == "healthy"
        assert (tmp_path / "data" / "broker.url").read_text().startswith("kafka://127.0.0.1:")
        children = _children(dev.pid)
        assert len(children) >= 3  # broker, bridge, worker
        dev.send_signal(signal.SIGINT)
        assert dev.wait(60) == 0
        for pid in children:
            wait_for(f"process {pid} to end", lambda pid=pid: not _alive(pid), 30)
        assert not (tmp_path / "data" / "broker.url").exists()
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
        _run(delete_queues(rabbitmq_url, e["BRIDGE_QUEUE_PREFIX"]))


async def _publish(prefix: str, rabbitmq_url: str, lines: list[bytes]) -> None:
    # Declaring the bridge's queues first: a bridge still starting loses nothing.
    async with RawEventPublisher(rabbitmq_url, queue_prefix=prefix) as publisher:
        await publisher.publish_events(lines)


def _count(db: Path, tenant: str) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        (n,) = conn.execute("SELECT COUNT(*) FROM shards WHERE tenant_id = ?", (tenant,)).fetchone()
    return int(n)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = (
        Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}").exists() else "X"
    )
    return state not in ("Z", "X")
