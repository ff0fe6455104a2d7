"""Issue 11: a worker killed mid-backlog and restarted links every email, and nothing stays
uncommitted (a smaller `benchmarks/stall_repro.py`, through RabbitMQ and the bridge).

Before the fix, a restarted worker lost the stream records its fetcher delivered while
table recovery finished (Faust cleared them, then skipped them as already read): the
emails behind them stayed unlinked, the partitions' committed offsets stopped for good
and the worker idled (1 run in 5 of this size, 2 in 5 at 3,000 emails; decisions.md).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bridge.publisher import RawEventPublisher
from tests.e2e.conftest import Pipeline, running_pipeline
from tests.fixtures import backlog
from tests.fixtures import generic_email as ge

TENANT = "t-demo"
ACCOUNTS = 30
EMAILS = 900
REP = "dan.ortiz@northwind-sales.com"
#: The failure this guards against never links the emails (a partition left behind after
#: the rebalance, the watchdog out of the way). How long linking 900 emails takes is
#: throughput: 20-32 s here with another test worker beside it; issue 11's 30 s figure is
#: measured by `benchmarks/stall_repro.py` instead.
LINKED_WITHIN = 60.0


def records(now: datetime) -> list[dict[str, Any]]:
    """Accounts with a contact and an open opportunity each, at random places among
    emails from and to those contacts."""
    crm = backlog.customers(TENANT, ACCOUNTS, now)
    mail = []
    for k in range(EMAILS):
        i = k % ACCOUNTS
        customer = backlog.customer(i)
        sender, to = (customer, [REP]) if k % 3 else (REP, [customer])
        sent = (now - timedelta(hours=k % 500)).isoformat().replace("+00:00", "Z")
        envelope = ge.email(sender, to, external_id=f"st-{k}", sentAt=sent, threadId=f"t-{k}")
        envelope["tenantId"] = TENANT
        mail.append(envelope)
    rng = random.Random(11)
    mixed = crm + mail
    rng.shuffle(mixed)
    return mixed


def counts(db: Path) -> tuple[int, int]:
    """(emails stored, emails linked to an opportunity) of the tenant."""
    return backlog.email_counts(db, TENANT)


def wait_until(what: str, check: Any, timeout: float, every: float = 0.25) -> float:
    """Seconds until `check()` was true."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
    return time.monotonic() - started


def metric_lines(pipe: Pipeline, prefix: str) -> dict[str, float]:
    text = httpx.get(f"{pipe.base_url}/metrics", timeout=5).text
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix)
    }


async def publish(pipe: Pipeline, events: list[dict[str, Any]]) -> None:
    async with RawEventPublisher(
        pipe.env["RABBITMQ_URL"], queue_prefix=pipe.env["BRIDGE_QUEUE_PREFIX"]
    ) as publisher:
        await publisher.publish_events([json.dumps(e).encode() for e in events])


def test_a_worker_killed_mid_backlog_links_every_email_within_a_minute(
    tmp_path: Path, rabbitmq_url: str
) -> None:
    with running_pipeline(
        tmp_path, rabbitmq_url, CONSUMER_TYPE="light", TABLE_STORE="memory://",
        STALL_TIMEOUT="600",  # the watchdog must not mask a regression of the fix
    ) as pipe:  # fmt: skip
        db = pipe.data_dir / "data" / "shards.sqlite3"
        asyncio.run(publish(pipe, records(datetime.now(UTC))))
        # mid-backlog by progress, not by time: with batched writes the worker stored and
        # linked all 900 emails within the 3 s this once slept after the first one
        wait_until("half the emails stored", lambda: counts(db)[0] >= EMAILS // 2, 60, every=0.05)
        pipe.kill("worker")
        assert counts(db)[1] < EMAILS, "killed too late: linking had finished"
        pipe.start("worker", "worker")
        pipe.wait_healthy()
        wait_until("every email stored", lambda: counts(db)[0] == EMAILS, 90)
        linking = wait_until("every email linked", lambda: counts(db)[1] == EMAILS, 90)
        assert linking <= LINKED_WITHIN, f"linking took {linking:.0f} s after the backlog drained"

        # nothing left behind: the group commits everything (no stuck partition)
        def caught_up() -> bool:
            lag = metric_lines(pipe, "integration_consumer_lag{")
            return bool(lag) and not any(lag.values())

        wait_until("no consumer lag left", caught_up, 60, every=1)
        lag = metric_lines(pipe, "integration_consumer_lag{")
        for topic in ("shard.events", "linking.requests", "integration.raw.email"):
            for partition in range(4):
                assert f'integration_consumer_lag{{partition="{partition}",topic="{topic}"}}' in lag
        assert not metric_lines(pipe, "integration_consumer_stalls_total{")
        ready = httpx.get(f"{pipe.base_url}/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["consumer"] == {"ok": True}
