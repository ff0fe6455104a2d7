"""Issue 11: do emails stay unlinked after a worker is killed mid-backlog and restarted?

    .venv/bin/python benchmarks/stall_repro.py [--runs 20] [--emails 3000] [--accounts 50]
        [--kill-after 2-4] [--kill-from first-shard|produce] [--stall 30] [--give-up 60]
        [--seed 11] [--logs DIR] [--env NAME=VALUE ...] [--no-kill]

Each run, on its own embedded broker and data folder: a `light` worker starts; CRM
records for `--accounts` accounts (an account, a contact and an open opportunity each)
are produced onto `integration.raw.crm` at random places among `--emails` emails from
those contacts on `integration.raw.email` (keys and values as the bridge writes them);
the worker is killed with SIGKILL `--kill-after` seconds (uniform in the range) after
its first shard is stored (`--kill-from produce`: after production began) and started
again at once. Per run:

- `assigned`, `drained`: seconds from the restart until the worker fetches its
  partitions, and until every email is stored (the raw backlog is worked off);
- `linked`: seconds from `drained` until every email is linked to its opportunity;
- `still`: the longest time without any new link once assigned;
- `uncommitted`: records the consumer group never committed on `shard.events` and the
  raw topics once commits settle (`--settle`); `repairs`: the watchdog's, from `/metrics`;
- `late` when an email is still unlinked `--stall` seconds after `drained`; `STUCK`
  when emails are never linked (`--give-up` seconds after `drained`) or offsets never
  get committed: the run then prints the group's committed offsets against the fetch
  high-watermarks and the consumer's gauges, and keeps the worker's log (`--logs`).

About a minute a run with the defaults on a 2-core machine (`--emails 1000 --accounts 20
--runs 3` takes about two).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faust.types import TP

from processors.embedded_broker import EmbeddedBroker, free_port
from streams.admin import BrokerAdmin
from streams.topics import (
    LINKING_REQUESTS_TOPIC,
    SHARD_EVENTS_TOPIC,
    all_topics,
    event_key,
    internal_topics,
)
from tests.fixtures import backlog
from tests.fixtures import generic_email as ge

COMMAND = str(Path(sys.executable).parent / "integration-processors")
TENANT = "t-stall"
REP = "dan.ortiz@northwind-sales.com"
PARTITIONS = 4
WATCHED_TOPICS = (
    SHARD_EVENTS_TOPIC, LINKING_REQUESTS_TOPIC, "integration.raw.email", "integration.raw.crm"
)  # fmt: skip


# --- the data ------------------------------------------------------------------------


def email_records(n: int, accounts: int, now: datetime) -> list[dict[str, Any]]:
    """`n` emails between the accounts' contacts and the rep, in and out."""
    found = []
    for k in range(n):
        i = k % accounts
        customer = backlog.customer(i)
        sender, to = (customer, [REP]) if k % 3 else (REP, [customer])
        sent = now - timedelta(hours=(k * 7) % (30 * 24), minutes=k % 60)
        envelope = ge.email(
            sender, to, external_id=f"st-{k}", sentAt=sent.isoformat().replace("+00:00", "Z"),
            threadId=f"thr-{i}-{k // 300}",
        )  # fmt: skip
        envelope["tenantId"] = TENANT
        envelope["eventId"] = f"evt-st-{k}"
        found.append(envelope)
    return found


def mixed(accounts: int, emails: int, rng: random.Random) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) of every record: the CRM records at random places among the
    emails, as a sync that pages through a mailbox and a CRM at once publishes them."""
    now = datetime.now(UTC)
    crm = [("integration.raw.crm", r) for r in backlog.customers(TENANT, accounts, now)]
    mail = [("integration.raw.email", r) for r in email_records(emails, accounts, now)]
    places = sorted(rng.sample(range(len(crm) + len(mail)), len(crm)))
    order: list[tuple[str, dict[str, Any]]] = []
    crm_it, mail_it = iter(crm), iter(mail)
    wanted = set(places)
    for n in range(len(crm) + len(mail)):
        order.append(next(crm_it) if n in wanted else next(mail_it))
    return [
        (topic, event_key(r["tenantId"], r["externalId"]).encode(), json.dumps(r).encode())
        for topic, r in order
    ]


async def prepare_topics(broker: EmbeddedBroker) -> None:
    async with BrokerAdmin(broker.url) as admin:
        await admin.ensure_topics([*all_topics(), *internal_topics()], partitions=PARTITIONS)


async def produce(broker: EmbeddedBroker, records: list[tuple[str, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=10, acks="all")
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


# --- what the store says -------------------------------------------------------------


def store_counts(db: Path) -> tuple[int, int]:
    """(emails stored, emails linked to an opportunity); (0, 0) while the file is busy."""
    try:
        return backlog.email_counts(db, TENANT)
    except sqlite3.OperationalError:
        return 0, 0


# --- what the broker says ------------------------------------------------------------


async def group_offsets(broker: EmbeddedBroker, group: str) -> dict[TP, tuple[int | None, int]]:
    """(committed offset, fetch high-watermark) per partition of the watched topics."""
    tps = [TP(t, p) for t in WATCHED_TOPICS for p in range(PARTITIONS)]
    # OffsetFetch through a consumer of the group that never joins it (manual
    # assignment); aiokafka's admin client cannot decode Tansu's answer.
    reader = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False
    )
    await reader.start()
    try:
        parts = [TopicPartition(tp.topic, tp.partition) for tp in tps]
        reader.assign(parts)
        committed = {tp: await reader.committed(p) for tp, p in zip(tps, parts, strict=True)}
    finally:
        await reader.stop()
    highs = await _fetch_highs(broker, tps)
    return {tp: (committed.get(tp), highs.get(tp, -1)) for tp in tps}


async def _fetch_highs(broker: EmbeddedBroker, tps: list[TP]) -> dict[TP, int]:
    """Fetch high-watermarks (right on Tansu, whose ListOffsets is not)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
    await consumer.start()
    try:
        parts = [TopicPartition(tp.topic, tp.partition) for tp in tps]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            await consumer.getmany(timeout_ms=300, max_records=1)
            if all(consumer.highwater(p) is not None for p in parts):
                break
        return {tp: consumer.highwater(p) or 0 for tp, p in zip(tps, parts, strict=True)}
    finally:
        await consumer.stop()


def metric_sum(port: int, name: str) -> float:
    """The sum of a metric's series on the worker's `/metrics` (0 when absent)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + "{", name + " "))
    )


def consumer_gauges(port: int) -> list[str]:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError as e:
        return [f"/metrics: {e!r}"]
    keep = ("integration_consumer_partitions", "integration_consumer_stall")
    return [line for line in text.splitlines() if line.startswith(keep)]


# --- one run -------------------------------------------------------------------------


@dataclass
class Run:
    number: int
    kill_after: float
    linked_at_kill: int = 0
    assigned: float | None = None  # seconds from the restart to fetching partitions
    drained: float | None = None  # seconds from the restart to every email stored
    linked: float | None = None  # seconds from drained to every email linked
    still: float = 0.0  # longest time without linking progress once assigned
    unlinked_at_stall: int = 0  # emails unlinked `--stall` seconds after drained
    unlinked_at_end: int = 0  # emails never linked (at `--give-up`)
    uncommitted: int = 0  # records the group never committed, once commits settled
    repairs: float = 0.0  # the watchdog's repairs (`/metrics`)
    idle_cpu: float | None = None  # worker CPU share while emails stayed unlinked
    notes: list[str] = field(default_factory=list)

    @property
    def late(self) -> bool:
        """Some email stayed unlinked longer than `--stall` seconds after draining."""
        return self.unlinked_at_stall > 0 or self.drained is None

    @property
    def stuck(self) -> bool:
        """Emails never linked, or offsets that never got committed: the issue-11 stall."""
        return self.unlinked_at_end > 0 or self.uncommitted > 0 or self.drained is None


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        self.process = subprocess.Popen([COMMAND, "worker"], env=self.env, stdout=out, stderr=out)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    def cpu_seconds(self) -> float:
        """CPU time the worker has used so far (Linux /proc), 0 when unknown."""
        return process_cpu_seconds(None if self.process is None else self.process.pid)

    def healthy(self, port: int) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


def process_cpu_seconds(pid: int | None) -> float:
    """User and system CPU time a process has used so far (Linux /proc), 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(number: int, args: argparse.Namespace, rng: random.Random) -> Run:
    low, high = args.kill_after
    run = Run(number, round(rng.uniform(low, high), 2))
    records = mixed(args.accounts, args.emails, rng)
    with tempfile.TemporaryDirectory(prefix="stall-") as tmp, EmbeddedBroker() as broker:
        folder = Path(tmp)
        (folder / "tenants.yaml").write_text(
            f"tenants:\n  {TENANT}: {{internalDomains: [northwind-sales.com]}}\n"
        )
        port = free_port()
        group = f"stall-{number}-{os.getpid()}"
        env = {
            **os.environ,
            "BROKER_URL": broker.url,
            "DATA_DIR": str(folder / "data"),
            "PORT": str(port),
            "APP_ID": group,
            "CONSUMER_TYPE": "light",
            "TENANT_CONFIG": str(folder / "tenants.yaml"),
            "TABLE_STORE": args.table_store,
            "LOG_LEVEL": "info",
            **dict(item.split("=", 1) for item in args.env),
        }
        db = folder / "data" / "shards.sqlite3"
        log = folder / "worker.log"
        asyncio.run(prepare_topics(broker))
        worker = Worker(env, log)
        worker.start()
        try:
            deadline = time.monotonic() + 60
            while not worker.healthy(port):
                if time.monotonic() > deadline:
                    run.notes.append("first worker never healthy")
                    run.notes.extend(
                        line
                        for line in log.read_text(errors="replace").splitlines()
                        if "File " in line or "Error" in line
                    )
                    return run
                time.sleep(0.2)
            began = time.monotonic()
            asyncio.run(produce(broker, records))
            if args.kill_from == "first-shard":
                while store_counts(db)[0] == 0 and time.monotonic() < deadline + 60:
                    time.sleep(0.05)
                began = time.monotonic()
            time.sleep(max(0.0, began + run.kill_after - time.monotonic()))
            run.linked_at_kill = store_counts(db)[1]
            if not args.no_kill:
                worker.kill()
                worker.start()
            restarted = time.monotonic()
            watch(run, worker, port, db, restarted, args)
            run.uncommitted = settled_lag(broker, group, args.settle)
            run.repairs = metric_sum(port, "integration_consumer_stall_repairs_total")
            if run.stuck or args.show_offsets:
                run.notes.extend(describe(broker, group, port))
            if (run.stuck or run.late) and args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                shutil.copy(log, args.logs / f"run-{number:02d}-worker.log")
                if run.stuck:
                    shutil.copy(db, args.logs / f"run-{number:02d}-shards.sqlite3")
        finally:
            worker.stop()
    return run


def watch(
    run: Run, worker: Worker, port: int, db: Path, restarted: float, args: argparse.Namespace
) -> None:
    """Follow the restarted worker until every email is linked or `--give-up`."""
    total = args.emails
    drain_deadline = restarted + args.drain_timeout
    last_linked, last_change, next_probe = -1, time.monotonic(), 0.0
    drained_at = 0.0
    cpu_at_stall = (0.0, 0.0)
    while True:
        now = time.monotonic()
        if run.assigned is None and now >= next_probe:
            next_probe = now + 0.5
            if active_partitions(port) > 0:
                run.assigned = round(now - restarted, 1)
        stored, linked = store_counts(db)
        if linked != last_linked:
            last_linked, last_change = linked, now
        elif run.assigned is not None:
            run.still = max(run.still, round(now - last_change, 1))
        if run.drained is None and stored >= total and run.assigned is not None:
            run.drained, drained_at = round(now - restarted, 1), now
        if run.drained is not None:
            since = now - drained_at
            if linked >= total:
                run.linked = round(since, 1)
                return
            if since >= args.stall and not run.unlinked_at_stall:
                run.unlinked_at_stall = total - linked
                cpu_at_stall = (now, worker.cpu_seconds())
            if since >= args.give_up:
                run.unlinked_at_end = total - linked
                used = worker.cpu_seconds() - cpu_at_stall[1]
                run.idle_cpu = used / max(0.001, now - cpu_at_stall[0])
                return
        elif now > drain_deadline:
            run.notes.append(f"backlog not drained in {args.drain_timeout}s: {stored}/{total}")
            run.unlinked_at_end = total - linked
            return
        assert worker.process is not None
        if worker.process.poll() is not None:
            run.notes.append(f"worker exited with {worker.process.returncode}; restarted")
            worker.start()
        time.sleep(0.25)


def active_partitions(port: int) -> float:
    """The worker's partitions it fetches from (`/metrics`), 0 when it does not answer."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0.0
    for line in text.splitlines():
        if line.startswith('integration_consumer_partitions{state="active"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def settled_lag(broker: EmbeddedBroker, group: str, settle: float, cap: float = 180) -> int:
    """Records the group has not committed on the watched topics: 0 as soon as it has
    caught up, else once the figure has not moved for `settle` seconds (or after `cap`)."""
    started = last_change = time.monotonic()
    last = -1
    while True:
        try:
            offsets = asyncio.run(group_offsets(broker, group))
        except Exception:  # noqa: BLE001  # diagnostics only: the broker may be busy
            offsets = {}
        behind = sum(high - (committed or 0) for committed, high in offsets.values())
        now = time.monotonic()
        if offsets and behind == 0:
            return 0
        if behind != last:
            last, last_change = behind, now
        if now - last_change >= settle or now - started >= cap:
            return behind
        time.sleep(1)


def describe(broker: EmbeddedBroker, group: str, port: int) -> Iterator[str]:
    try:
        offsets = asyncio.run(group_offsets(broker, group))
    except Exception as e:  # noqa: BLE001  # diagnostics only
        yield f"offsets: {e!r}"
    else:
        for tp, (committed, high) in sorted(offsets.items()):
            behind = "" if committed is None else f" behind {high - committed}"
            yield f"{tp.topic}[{tp.partition}] committed {committed} high {high}{behind}"
    yield from consumer_gauges(port)


# --- the report ----------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--emails", type=int, default=3000)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--kill-after", type=_range, default=(2.0, 4.0), metavar="LOW-HIGH")
    parser.add_argument(
        "--kill-from", choices=("produce", "first-shard"), default="first-shard",
        help="--kill-after counts from the start of production or from the first shard stored",
    )  # fmt: skip
    parser.add_argument("--no-kill", action="store_true", help="baseline: never kill the worker")
    parser.add_argument("--stall", type=float, default=30.0, help="seconds that count as late")
    parser.add_argument("--give-up", type=float, default=60.0)
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    parser.add_argument("--settle", type=float, default=15.0, help="seconds for commits")
    parser.add_argument("--table-store", default="memory://")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--logs", type=Path, help="keep the worker logs of late runs here")
    parser.add_argument("--show-offsets", action="store_true", help="after every run")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the worker")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    start = "the first shard" if args.kill_from == "first-shard" else "production"
    print(
        f"{args.runs} runs: {args.accounts * 3} CRM records among {args.emails} emails; "
        + ("no kill" if args.no_kill else
           f"kill -9 {args.kill_after[0]:g}-{args.kill_after[1]:g} s after {start}, restart")
        + f"; late = unlinked {args.stall:g} s after the backlog drained",
        flush=True,
    )  # fmt: skip
    print(
        f"{'run':>3} {'kill':>5} {'linked@kill':>11} {'assigned':>8} {'drained':>7} "
        f"{'linked':>7} {'still':>6} {'uncommitted':>11} {'repairs':>7}  result",
        flush=True,
    )
    runs: list[Run] = []
    started = time.monotonic()
    for number in range(1, args.runs + 1):
        run = one_run(number, args, rng)
        runs.append(run)
        print(
            f"{number:>3} {run.kill_after:>5.2f} {run.linked_at_kill:>11} {_s(run.assigned):>8} "
            f"{_s(run.drained):>7} {_s(run.linked):>7} {run.still:>6.1f} {run.uncommitted:>11} "
            f"{run.repairs:>7.0f}  {_result(run, args)}",
            flush=True,
        )
        for note in run.notes:
            print(f"      {note}", flush=True)
    linked = [r.linked for r in runs if r.linked is not None]
    print(
        f"late runs (an email unlinked {args.stall:g} s after draining): "
        f"{sum(r.late for r in runs)}/{len(runs)}; stuck runs (emails never linked or "
        f"offsets never committed): {sum(r.stuck for r in runs)}/{len(runs)}; "
        "drained to all linked: "
        + (f"median {statistics.median(linked):.1f} s, max {max(linked):.1f} s" if linked else "-")
        + f"; watchdog repairs {sum(r.repairs for r in runs):.0f}"
        f"; wall time {time.monotonic() - started:.0f} s",
        flush=True,
    )


def _result(run: Run, args: argparse.Namespace) -> str:
    if run.drained is None:
        return "STUCK: backlog not drained"
    if run.stuck:
        cpu = "" if run.idle_cpu is None else f", worker CPU {run.idle_cpu:.0%}"
        return f"STUCK: {run.unlinked_at_end} never linked, {run.uncommitted} never committed{cpu}"
    if run.late:
        return f"late: {run.unlinked_at_stall} unlinked at {args.stall:g} s"
    return "ok"


def _range(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    return float(low), float(high or low)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    main()
