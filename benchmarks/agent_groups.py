"""How long a worker stops when a worker with a different set of agents joins or leaves:
in the same consumer group, and in a group of its own (what `AGENTS` gives each set).

    .venv/bin/python benchmarks/agent_groups.py [--runs 2] [--rate 200]

Worker A (`light`) processes CRM records produced at a steady rate. Worker B (`heavy`:
different agents, other topics) starts, becomes ready, runs a few seconds and stops
(SIGTERM). A's processed-events counter is sampled every 0.1 s; the figure is A's longest
pause (no progress while records wait) from B's start until B is ready + 3 s (join), and
from B's stop for 15 s (leave), and how often A joined its group meanwhile (its log). Mode
`same`: A and B share `APP_ID` (one group, as the roles did); `own`: B's group is its own;
`none`: B only sleeps as long (the noise floor of a busy machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stall_repro import metric_sum
from benchmarks.throughput import events
from processors.embedded_broker import EmbeddedBroker, free_port
from streams.admin import BrokerAdmin
from streams.topics import all_topics

COMMAND = str(Path(sys.executable).parent / "integration-processors")
PROCESSED = "integration_events_processed_total"


def produce(broker: EmbeddedBroker, tenant: str, rate: float, stop: threading.Event) -> None:
    async def run() -> None:
        async with BrokerAdmin(broker.url) as admin:
            await admin.ensure_topics(all_topics(), partitions=4)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
        await producer.start()
        lines = events(100_000, tenant)
        try:
            i, started = 0, time.monotonic()
            while not stop.is_set():
                due = int((time.monotonic() - started) * rate)
                while i < due:
                    await producer.send(
                        "integration.raw.crm", lines[i], key=f"{tenant}:{i}".encode()
                    )
                    i += 1
                await asyncio.sleep(0.02)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(run())


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def longest_pause(samples: list[tuple[float, float]], start: float, end: float) -> float:
    """Longest time between two increases of the counter within [start, end]."""
    window = [(t, v) for t, v in samples if start <= t <= end]
    longest, last_change, last_value = 0.0, start, None
    for t, v in window:
        if last_value is None or v > last_value:
            longest = max(longest, t - last_change)
            last_change, last_value = t, v
    if window:
        longest = max(longest, window[-1][0] - last_change)
    return longest


def one_run(mode: str, rate: float) -> tuple[float, float, int]:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        folder = Path(tmp)
        (folder / "tenants.yaml").write_text(f"tenants:\n  {tenant}: {{}}\n")
        group = f"groups-{tenant}"
        base = {
            **os.environ,
            "BROKER_URL": broker.url,
            "STORE_URL": f"sqlite:///{folder / 'shards.sqlite3'}",
            "TENANT_CONFIG": str(folder / "tenants.yaml"),
            "TABLE_STORE": "memory://",
            "LOG_LEVEL": "info",
        }
        stop = threading.Event()
        producer = threading.Thread(target=produce, args=(broker, tenant, rate, stop))
        producer.start()
        port_a, port_b = free_port(), free_port()
        a_log = folder / "a.log"
        with a_log.open("wb") as out:
            a = subprocess.Popen(
                [COMMAND, "worker"],
                env={**base, "CONSUMER_TYPE": "light", "APP_ID": group, "PORT": str(port_a),
                     "DATA_DIR": str(folder / "a")},
                stdout=out, stderr=out,
            )  # fmt: skip
        samples: list[tuple[float, float]] = []
        try:
            while metric_sum(port_a, PROCESSED) < rate * 3:  # A is steady
                time.sleep(0.2)
            joins_before = a_log.read_text(errors="replace").count("Joined group")
            b_group = group if mode == "same" else f"{group}-heavy"
            b_started = time.monotonic()
            b = subprocess.Popen(
                ["sleep", "9"] if mode == "none" else [COMMAND, "worker"],
                env={**base, "CONSUMER_TYPE": "heavy", "APP_ID": b_group, "PORT": str(port_b),
                     "DATA_DIR": str(folder / "b")},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            b_ready = b_stopped = None
            end = None
            while end is None or time.monotonic() < end:
                now = time.monotonic()
                samples.append((now, metric_sum(port_a, PROCESSED)))
                if b_ready is None and (healthy(port_b) if mode != "none" else now > b_started + 6):
                    b_ready = now
                if b_ready is not None and b_stopped is None and now > b_ready + 3:
                    b.send_signal(signal.SIGTERM)
                    b_stopped = now
                    end = now + 15
                time.sleep(0.1)
            b.wait(30)
            assert b_ready is not None and b_stopped is not None
            join = longest_pause(samples, b_started, b_ready + 3)
            leave = longest_pause(samples, b_stopped, b_stopped + 15)
            joins = a_log.read_text(errors="replace").count("Joined group") - joins_before
            return join, leave, joins
        finally:
            stop.set()
            producer.join()
            a.send_signal(signal.SIGTERM)
            a.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--rate", type=float, default=200.0, help="CRM records per second")
    args = parser.parse_args()
    for run in range(args.runs):
        for mode in ("same", "own", "none"):
            join, leave, joins = one_run(mode, args.rate)
            print(  # the benchmark's report
                f"run {run + 1} group={mode}: A's longest pause while B joins {join:.1f} s, "
                f"while B leaves {leave:.1f} s; A joined its group {joins} times meanwhile",
                flush=True,
            )


if __name__ == "__main__":
    main()
