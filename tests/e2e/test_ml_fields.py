"""ML fields on the real broker: a killed worker, a rebalance, the leader-only crontab.

2,000 emails over 50 opportunities go RabbitMQ → bridge → email agent → linking →
`ml_route` → `ml_fields` (table). The fields the API answers (from the table, at its
`asOf`) and the fields written back onto each opportunity (at `mlFieldsUpdatedAt`)
must equal a rebuild from the store alone at the same moment, exactly.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from bridge.publisher import RawEventPublisher
from core.tenants import TenantDirectory
from processors.embedded_broker import free_port
from shards.ids import shard_id
from shards.sqlite import SqliteShardStore
from tables.features import compute_features
from tables.state import rebuild_state
from tests.conftest import consume_all
from tests.e2e.conftest import Pipeline, running_pipeline
from tests.fixtures import generic_email as ge
from tests.fixtures import salesforce as sf

TENANT = "t-ml"
OPPORTUNITIES = 50
ACTIVITIES = 2000
REP = "dan.ortiz@northwind-sales.com"
TITLES = ("Chief Financial Officer", "VP Procurement", "Director of IT", "IT Manager", "Analyst")


def opportunity_ids() -> list[str]:
    return [
        shard_id(TENANT, "salesforce", "Opportunity", f"006ML{i:013d}")
        for i in range(OPPORTUNITIES)
    ]


def crm_records(today: datetime) -> list[dict[str, Any]]:
    """50 accounts, each with one contact and one open opportunity."""
    records = []
    for i in range(OPPORTUNITIES):
        account, contact, opp = f"001ML{i:013d}", f"003ML{i:013d}", f"006ML{i:013d}"
        records.append(
            sf.envelope(TENANT, "Account", account,
                        {"Name": f"Customer {i}", "Website": f"https://cust{i}.example.com"})
        )  # fmt: skip
        records.append(
            sf.envelope(TENANT, "Contact", contact,
                        {"FirstName": "Buyer", "LastName": f"N{i}", "AccountId": account,
                         "Email": f"buyer{i}@cust{i}.example.com",
                         "Title": TITLES[i % len(TITLES)]})
        )  # fmt: skip
        records.append(
            sf.envelope(TENANT, "Opportunity", opp,
                        {"Name": f"Deal {i}", "AccountId": account, "StageName": "Qualify",
                         "CloseDate": (today + timedelta(days=i - 10)).date().isoformat(),
                         "IsClosed": False, "IsWon": False, "Amount": 1000 * i})
        )  # fmt: skip
    return records


def emails(now: datetime) -> list[dict[str, Any]]:
    """2,000 emails, 40 per opportunity, in and out, over the last 45 days, in threads."""
    found = []
    for k in range(ACTIVITIES):
        i = k % OPPORTUNITIES
        customer = f"buyer{i}@cust{i}.example.com"
        inbound = (k // OPPORTUNITIES) % 3 != 0
        sender, to = (customer, [REP]) if inbound else (REP, [customer])
        sent = now - timedelta(hours=(k * 7) % (45 * 24), minutes=k % 60)
        envelope = ge.email(
            sender, to, external_id=f"ml-{k}", sentAt=sent.isoformat().replace("+00:00", "Z"),
            threadId=f"thr-{i}-{k // 400}",
        )  # fmt: skip
        envelope["tenantId"] = TENANT
        envelope["eventId"] = f"evt-ml-{k}"
        found.append(envelope)
    return found


async def publish(pipe: Pipeline, events: list[dict[str, Any]]) -> None:
    async with RawEventPublisher(
        pipe.env["RABBITMQ_URL"], queue_prefix=pipe.env["BRIDGE_QUEUE_PREFIX"]
    ) as publisher:
        await publisher.publish_events([json.dumps(e).encode() for e in events])


def linked(db: Path) -> int:
    """Emails of the tenant linked to an opportunity."""
    with sqlite3.connect(db, timeout=30) as conn:
        (n,) = conn.execute(
            "SELECT COUNT(*) FROM shards WHERE tenant_id = ? AND shard_type = 'Email' "
            'AND doc LIKE \'%"targetShardType":"Opportunity"%\'',
            (TENANT,),
        ).fetchone()
    return int(n)


async def produce(pipe: Pipeline, items: list[tuple[str, bytes]]) -> None:
    """Values straight onto topics (keyed outside every tenant)."""
    producer = AIOKafkaProducer(bootstrap_servers=pipe.broker.bootstrap)
    await producer.start()
    try:
        for topic, value in items:
            await producer.send_and_wait(topic, value, key=b"malformed")
    finally:
        await producer.stop()


def count(db: Path, shard_type: str) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        (n,) = conn.execute(
            "SELECT COUNT(*) FROM shards WHERE tenant_id = ? AND shard_type = ?",
            (TENANT, shard_type),
        ).fetchone()
    return int(n)


def wait_for(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last is True or (last and not isinstance(last, list | str)):
            return last
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}: {last}")


async def disagreements(pipe: Pipeline, db: Path, base_urls: list[str]) -> list[str]:
    """Opportunities whose API answer or written-back fields differ from the rebuild."""
    tenants = TenantDirectory.load(Path(pipe.env["TENANT_CONFIG"]))
    zone = tenants.of(TENANT).zone
    headers = {"Authorization": f"Bearer {pipe.token(TENANT)}"}
    problems: list[str] = []
    async with SqliteShardStore(db) as store, httpx.AsyncClient(timeout=30) as http:
        for n, opp in enumerate(opportunity_ids()):
            base = base_urls[n % len(base_urls)]  # spread over the workers: routing too
            answer = await http.get(f"{base}/api/v1/opportunities/{opp}/ml-fields", headers=headers)
            if answer.status_code != 200:
                problems.append(f"{opp}: HTTP {answer.status_code} {answer.text[:200]}")
                continue
            body = answer.json()
            state = await rebuild_state(store, tenants, TENANT, opp)
            assert state is not None
            at = datetime.fromisoformat(body["asOf"])
            if body["mlFields"] != compute_features(state, at, zone):
                problems.append(f"{opp}: table answer differs from the rebuild at {at}")
                continue
            shard = await store.get(TENANT, opp)
            assert shard is not None
            if shard.ml_fields_updated_at is None or shard.ml_fields != compute_features(
                state, shard.ml_fields_updated_at, zone
            ):
                problems.append(f"{opp}: written-back fields differ from the rebuild")
    return problems


def agree(pipe: Pipeline, db: Path, base_urls: list[str], timeout: float = 240) -> None:
    """Once linking has settled, every opportunity's fields equal the rebuild's."""
    problems: list[str] = []
    last = [-1]

    def check() -> bool:
        now = linked(db)
        settled, last[0] = now == last[0], now
        if not settled:
            problems[:] = [f"linking still moving ({now} emails linked)"]
            return False
        problems[:] = asyncio.run(disagreements(pipe, db, base_urls))
        return not problems

    try:
        wait_for("the table to agree with the rebuild", check, timeout)
    except AssertionError:
        pytest.fail(f"{len(problems)} opportunities disagree, e.g. {problems[:5]}")


def wait_healthy(url: str, timeout: float = 60) -> None:
    def up() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(f"{url} healthy", up, timeout)


@pytest.fixture
def light(tmp_path: Path, rabbitmq_url: str) -> Iterator[Pipeline]:
    with running_pipeline(
        tmp_path, rabbitmq_url, CONSUMER_TYPE="light", ML_WRITEBACK_DELAY="1"
    ) as pipe:
        yield pipe


def test_a_killed_worker_recovers_its_table_exactly(tmp_path: Path, rabbitmq_url: str) -> None:
    # memory tables: after the kill, everything comes back from the changelog alone
    with running_pipeline(
        tmp_path, rabbitmq_url, CONSUMER_TYPE="light", TABLE_STORE="memory://",
        ML_WRITEBACK_DELAY="1",
    ) as pipe:  # fmt: skip
        db = pipe.data_dir / "data" / "shards.sqlite3"
        now = datetime.now(UTC)
        asyncio.run(publish(pipe, crm_records(now)))
        wait_for("the CRM records", lambda: count(db, "Opportunity") == OPPORTUNITIES, 90)
        wait_for("the contacts", lambda: count(db, "Contact") == OPPORTUNITIES, 30)
        asyncio.run(publish(pipe, emails(now)))
        wait_for("every email", lambda: count(db, "Email") == ACTIVITIES, 180)
        # Killed while linking and the ML-field agents are still working through them:
        # the table has part of the activities, its changelog the rest to come.
        wait_for("a fifth of the links", lambda: linked(db) >= ACTIVITIES // 5, 120)
        pipe.kill("worker")
        at_kill = linked(db)
        assert at_kill < ACTIVITIES, "killed too late: linking had finished"
        pipe.start("worker", "worker")
        pipe.wait_healthy()
        # The restarted worker goes on to the end (each email's customer is one open
        # opportunity's contact). Waited for first: a restart takes a rebalance and a
        # changelog recovery, longer than `agree`'s one-second "settled" look.
        wait_for("every email linked after the restart", lambda: linked(db) == ACTIVITIES, 240)
        agree(pipe, db, [pipe.base_url])
        # Once more with nothing left to process: the table now comes back from its
        # changelog alone, every record of it (Tansu's ListOffsets under-reports a
        # partition's end when its last batch holds several records).
        time.sleep(4)  # offsets committed (every 2.8 s)
        pipe.kill("worker")
        pipe.start("worker", "worker")
        pipe.wait_healthy()
        agree(pipe, db, [pipe.base_url], timeout=90)
        log = (pipe.logs / "worker.log").read_text(errors="replace")
        assert "Highwater for active changelog partitions" in log


def test_tables_move_when_a_third_worker_joins(tmp_path: Path, rabbitmq_url: str) -> None:
    # RocksDB tables (the deployment default), one data folder per worker, one store
    with running_pipeline(tmp_path, rabbitmq_url, CONSUMER_TYPE="light",
                          ML_WRITEBACK_DELAY="1") as pipe:  # fmt: skip
        db = pipe.data_dir / "data" / "shards.sqlite3"
        shared = {"STORE_URL": f"sqlite://{db}", "BLOB_DIR": str(pipe.data_dir / "data" / "blobs")}

        def worker(name: str) -> str:
            port = free_port()
            folder = pipe.data_dir / name
            pipe.start(name, "worker", env={**shared, "PORT": str(port), "DATA_DIR": str(folder)})
            return f"http://127.0.0.1:{port}"

        second = worker("worker-2")
        wait_healthy(second)
        now = datetime.now(UTC)
        asyncio.run(publish(pipe, crm_records(now)))
        wait_for("the CRM records", lambda: count(db, "Opportunity") == OPPORTUNITIES, 90)
        all_emails = emails(now)
        asyncio.run(publish(pipe, all_emails[: ACTIVITIES // 2]))
        wait_for("some emails", lambda: count(db, "Email") >= 500, 120)
        third = worker("worker-3")  # joins midway: partitions and tables move
        asyncio.run(publish(pipe, all_emails[ACTIVITIES // 2 :]))
        wait_healthy(third)
        wait_for("every email", lambda: count(db, "Email") == ACTIVITIES, 180)
        agree(pipe, db, [pipe.base_url, second, third])
        joined = (pipe.logs / "worker-3.log").read_text(errors="replace")
        assert "ml_fields-changelog" in joined  # it took over table partitions


def test_the_crontab_fires_on_the_leader_only(tmp_path: Path, rabbitmq_url: str) -> None:
    # whole seconds: cron fires on the second, so a write at fire + 0.3 s is after it
    fire = (datetime.now(UTC) + timedelta(seconds=60)).replace(microsecond=0)
    cron = f"{fire.minute} {fire.hour} * * * {fire.second}"  # sixth field: seconds
    with running_pipeline(
        tmp_path, rabbitmq_url, CONSUMER_TYPE="light", ML_RECALC_CRON=cron,
        ML_RECALC_TIME_ZONE="UTC",
    ) as pipe:  # fmt: skip
        db = pipe.data_dir / "data" / "shards.sqlite3"
        port = free_port()
        second = f"http://127.0.0.1:{port}"
        pipe.start(
            "worker-2", "worker",
            env={"STORE_URL": f"sqlite://{db}", "PORT": str(port),
                 "DATA_DIR": str(pipe.data_dir / "worker-2")},
        )  # fmt: skip
        wait_healthy(second)
        today = datetime.now(UTC)
        records = crm_records(today)[: 3 * 5]  # 5 accounts, contacts, opportunities
        # closing dates today-10 .. today-6: make two of them future, one closed
        for n, record in enumerate(r for r in records if r["entityType"] == "Opportunity"):
            payload = record["payload"]
            payload["CloseDate"] = (
                (today + timedelta(days=(-3 if n == 0 else 5))).date().isoformat()
            )
            if n == 1:
                payload.update(IsClosed=True, IsWon=True, StageName="Closed Won")
        asyncio.run(publish(pipe, records))
        wait_for("the opportunities", lambda: count(db, "Opportunity") == 5, 90)
        # Bad input for the ML-field agent: dead-lettered with its reason; the scheduled
        # recalculation below shows the agent went on.
        marker = uuid.uuid4().hex
        asyncio.run(
            produce(
                pipe,
                [
                    ("ml_fields.recalculate", f"not json {marker}".encode()),
                    ("ml_fields.changes", json.dumps({"kind": "other", "m": marker}).encode()),
                ],
            )
        )

        def letters() -> list[Any]:
            records = asyncio.run(
                consume_all(pipe.broker.bootstrap, "integration.dlq", expect=10**6, timeout=2)
            )
            return [r for r in records if marker.encode() in r.value]

        dead = wait_for("two dead letters", lambda: len(letters()) == 2, 60) and letters()
        for record in dead:
            headers = {k: v.decode() for k, v in record.headers}
            assert headers["stage"] == "ml_fields"
            assert headers["error"] and headers["errorType"]
        assert datetime.now(UTC) < fire - timedelta(seconds=5), "set-up took too long"
        time.sleep(max(0.0, (fire - datetime.now(UTC)).total_seconds()) + 8)
        requests = asyncio.run(
            consume_all(pipe.broker.bootstrap, "ml_fields.recalculate", expect=10**6, timeout=3)
        )
        mine = [r for r in requests if r.key.startswith(f"{TENANT}:".encode())]
        active = {
            shard_id(TENANT, "salesforce", "Opportunity", f"006ML{i:013d}") for i in (2, 3, 4)
        }
        assert sorted(r.key.decode().split(":", 1)[1] for r in mine) == sorted(active)
        fired = [_schedule_count(url) for url in (pipe.base_url, second)]
        assert sorted(fired) == [0.0, 3.0]  # one worker, the leader, ran it
        # the agent recalculated and wrote each active opportunity back after the firing
        headers = {"Authorization": f"Bearer {pipe.token(TENANT)}"}

        def written() -> bool:
            for opp in active:
                shard = httpx.get(f"{pipe.base_url}/api/v1/shards/{opp}", headers=headers).json()
                at = shard.get("mlFieldsUpdatedAt")
                if not at or datetime.fromisoformat(at) < fire:
                    return False
            return True

        wait_for("the recalculated fields", written, 30)


def _schedule_count(base_url: str) -> float:
    text = httpx.get(f"{base_url}/metrics").text
    for line in text.splitlines():
        if line.startswith('integration_ml_field_recalculations_total{origin="schedule"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
