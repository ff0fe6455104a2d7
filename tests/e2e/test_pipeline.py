"""From a RabbitMQ publish to shards, shard events and API answers, across processes."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bridge.publisher import RawEventPublisher
from shards.cosmos import CosmosShardStore
from shards.ids import shard_id
from shards.suggestions import SuggestedLink, suggestion_id
from tests.conftest import consume_all
from tests.e2e.conftest import running_pipeline
from tests.fixtures import salesforce as sf
from tests.integration.cosmosdb import COSMOS_KEY, CosmosDbServer, drop_database


def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


#: The tenant of the Cosmos pipeline's Salesforce records and suggestion.
SUGGESTION_TENANT = tenant()


def write_jsonl(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def wait_for(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


async def tenant_records(pipeline, topic: str, tenant_id: str, expect: int) -> list:
    records = await consume_all(pipeline.broker.bootstrap, topic, expect=10**9, timeout=2)
    return [r for r in records if (r.key or b"").startswith(f"{tenant_id}:".encode())]


def test_salesforce_records_become_shards_once(pipeline, tmp_path: Path) -> None:
    salesforce_records_become_shards_once(pipeline, tmp_path)


def test_salesforce_records_become_shards_once_on_cosmos(
    tmp_path: Path, rabbitmq_url: str, cosmosdb: CosmosDbServer
) -> None:
    """The same pipeline with STORE_URL=cosmos://: nothing falls back to a SQLite file."""
    database = f"e2e-{uuid.uuid4().hex[:10]}"
    settings = {
        "STORE_URL": cosmosdb.store_url(database),
        "COSMOS_KEY": COSMOS_KEY,
        "COSMOS_VERIFY_TLS": "false",
    }
    (tmp_path / "cosmos").mkdir()
    try:
        with running_pipeline(tmp_path / "cosmos", rabbitmq_url, **settings) as pipe:
            salesforce_records_become_shards_once(pipe, tmp_path, SUGGESTION_TENANT)
            a_suggestion_is_approved_through_the_api(pipe, cosmosdb.store_url(database))
            assert httpx.get(f"{pipe.base_url}/ready").status_code == 200
            sqlite_files = [
                f
                for f in (tmp_path / "cosmos").rglob("*")
                if f.is_file() and f.open("rb").read(16) == b"SQLite format 3\x00"
            ]
            assert sqlite_files == []
    finally:
        _run(drop_database(cosmosdb.store_url(database)))


def a_suggestion_is_approved_through_the_api(pipe, store_url: str) -> None:
    """A pending suggestion (seeded in the store) approved by the API: the decision and the
    approved link land in the store; a second decision is a conflict."""
    (account,) = [s for s in pipe.shards(SUGGESTION_TENANT) if s["shardType"] == "Account"]
    target = shard_id(SUGGESTION_TENANT, "salesforce", "Opportunity", sf.OPPORTUNITY_ID)
    sid = suggestion_id(SUGGESTION_TENANT, account["id"], target)

    async def seed() -> None:
        async with CosmosShardStore.from_url(store_url, COSMOS_KEY, verify_tls=False) as store:
            await store.put_suggestion(
                SuggestedLink(
                    id=sid, tenant_id=SUGGESTION_TENANT, source_shard_id=account["id"],
                    source_shard_type="Account", target_shard_id=target,
                    target_shard_type="Opportunity", confidence=0.6, method="test",
                    created_at=datetime.now(UTC),
                )
            )  # fmt: skip

    _run(seed())
    headers = {"Authorization": f"Bearer {pipe.token(SUGGESTION_TENANT)}"}
    api = f"{pipe.base_url}/api/v1/suggested-links"
    pending = httpx.get(api, params={"status": "pending_review"}, headers=headers).json()
    assert [i["id"] for i in pending["items"]] == [sid]
    approved = httpx.post(f"{api}/{sid}/approve", json={"reason": "yes"}, headers=headers)
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved"
    assert httpx.post(f"{api}/{sid}/reject", headers=headers).status_code == 409
    shard = httpx.get(f"{pipe.base_url}/api/v1/shards/{account['id']}", headers=headers).json()
    assert {(k["targetShardId"], k["status"]) for k in shard["links"]} >= {(target, "approved")}


def salesforce_records_become_shards_once(pipeline, tmp_path: Path, t: str | None = None) -> None:
    t = t or tenant()
    events = [sf.account(t), sf.contact(t), sf.opportunity(t)]
    jsonl = write_jsonl(tmp_path / "crm.jsonl", [sf.line(e) for e in events])
    assert "published 3 events" in pipeline.run("publish", str(jsonl))

    shards = wait_for("three shards", lambda: (s := pipeline.shards(t)) and len(s) == 3 and s)
    by_type = {s["shardType"]: s for s in shards}
    account_id = shard_id(t, "salesforce", "Account", sf.ACCOUNT_ID)
    assert by_type["Account"]["id"] == account_id
    assert by_type["Account"]["structuredData"]["domain"] == "fabrikam-logistics.com"
    assert by_type["Contact"]["structuredData"]["email"] == "priya.raman@fabrikam-logistics.com"
    opportunity = by_type["Opportunity"]
    assert opportunity["structuredData"]["accountId"] == account_id
    assert opportunity["structuredData"]["amount"] == 185000
    assert opportunity["structuredData"]["closeDate"] == "2026-12-18"
    assert opportunity["structuredData"]["status"] == "open"
    assert opportunity["source"]["eventId"] == events[2]["eventId"]

    created = wait_for(
        "three shard.created events",
        lambda: (r := _run(tenant_records(pipeline, "shard.events", t, 3))) and len(r) >= 3 and r,
    )
    values = [v for v in map(json.loads, (r.value for r in created)) if not _ml_write(v)]
    assert sorted(v["shardId"] for v in values) == sorted(s["id"] for s in shards)
    assert {v["type"] for v in values} == {"shard.created"}

    # The opportunity's ML fields are written back once (a new version of it, announced
    # with changedFields ["mlFields"]); after that, the same three events again change
    # nothing: same ids, same versions, no new shard event.
    def written_back():
        found = {s["shardType"]: s for s in pipeline.shards(t)}
        return found["Opportunity"].get("mlFieldsVersion") and list(found.values())

    shards = wait_for("the ML-field write-back", written_back)
    before = {
        json.loads(r.value)["eventId"] for r in _run(tenant_records(pipeline, "shard.events", t, 4))
    }
    pipeline.run("publish", str(jsonl))
    again = wait_for(
        "the replay to be processed",
        lambda: (r := _run(tenant_records(pipeline, "shard.events", t, 7))) and len(r) >= 7 and r,
    )
    assert {json.loads(r.value)["eventId"] for r in again} == before
    after = pipeline.shards(t)
    assert sorted((s["id"], s["version"], s["updatedAt"]) for s in after) == sorted(
        (s["id"], s["version"], s["updatedAt"]) for s in shards
    )


def test_api_answers_only_the_callers_tenant(pipeline, tmp_path: Path) -> None:
    t, other = tenant(), tenant()
    pipeline.run("publish", str(write_jsonl(tmp_path / "a.jsonl", [sf.line(sf.account(t))])))
    (shard,) = wait_for("the account", lambda: pipeline.shards(t))
    url = f"{pipeline.base_url}/api/v1/shards/{shard['id']}"
    mine = httpx.get(url, headers={"Authorization": f"Bearer {pipeline.token(t)}"})
    assert mine.status_code == 200
    assert mine.json()["id"] == shard["id"]
    theirs = httpx.get(url, headers={"Authorization": f"Bearer {pipeline.token(other)}"})
    assert theirs.status_code == 404
    assert theirs.json()["error"]["code"] == "not_found"
    for headers in ({}, {"Authorization": "Bearer nonsense"}):
        refused = httpx.get(url, headers=headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
    listed = httpx.get(
        f"{pipeline.base_url}/api/v1/shards",
        params={"shardType": "Account"},
        headers={"Authorization": f"Bearer {pipeline.token(other)}"},
    )
    assert listed.json()["items"] == []
    assert httpx.get(f"{pipeline.base_url}/ready").status_code == 200
    metrics = httpx.get(f"{pipeline.base_url}/metrics").text
    assert 'integration_shard_writes_total{kind="created",shard_type="Account"}' in metrics


def test_malformed_messages_are_dead_lettered_and_processing_goes_on(
    pipeline, tmp_path: Path
) -> None:
    t = tenant()
    marker = uuid.uuid4().hex
    no_tenant = sf.account(t, f"001NOTENANT{marker}")
    del no_tenant["tenantId"]
    bad_amount = sf.opportunity(t, f"006BAD{marker}")
    bad_amount["payload"]["Amount"] = "a great deal"
    wrong_type = {**sf.account(t, f"001WRONG{marker}"), "dataType": "email"}
    good = sf.account(t, f"001GOOD{marker}")

    async def publish() -> None:
        async with RawEventPublisher(
            pipeline.env["RABBITMQ_URL"], queue_prefix=pipeline.env["BRIDGE_QUEUE_PREFIX"]
        ) as publisher:
            await publisher.publish_many(messages)

    messages = [
        (f"not json {marker}".encode(), "integration.raw.crm"),
        (json.dumps(no_tenant).encode(), "integration.raw.crm"),
        (json.dumps(wrong_type).encode(), "integration.raw.crm"),
        (json.dumps(bad_amount).encode(), "integration.raw.crm"),
        (sf.line(good), "integration.raw.crm"),
    ]
    _run(publish())
    (shard,) = wait_for("the good event's shard", lambda: pipeline.shards(t))
    assert shard["source"]["externalId"] == good["externalId"]

    def letters():
        records = _run(
            consume_all(pipeline.broker.bootstrap, "integration.dlq", expect=10**9, timeout=2)
        )
        mine = [r for r in records if marker.encode() in r.value]
        return mine if len(mine) >= 4 else None

    reasons = {}
    for record in wait_for("four dead letters", letters):
        headers = {k: v.decode() for k, v in record.headers}
        assert headers["failedAt"]
        reasons[headers["stage"] + ":" + headers["error"]] = headers
    text = " | ".join(reasons)
    assert "bridge:not valid JSON" in text
    assert "bridge:invalid envelope: tenantId: Field required" in text
    assert "bridge:dataType 'email' does not match routing key" in text
    assert any(k.startswith("map:field amount from Amount") for k in reasons), text


def test_a_killed_bridge_loses_nothing(pipeline, tmp_path: Path) -> None:
    t = tenant()
    total = 5000
    lines = [sf.line(sf.account(t, f"001{i:06d}")) for i in range(total)]

    async def publish() -> None:
        # In chunks, so the bridge is killed while events are still arriving.
        async with RawEventPublisher(
            pipeline.env["RABBITMQ_URL"], queue_prefix=pipeline.env["BRIDGE_QUEUE_PREFIX"]
        ) as publisher:
            for start in range(0, total, 250):
                await publisher.publish_events(lines[start : start + 250])
                if start >= 1500:
                    halfway.set()
                await asyncio.sleep(0.1)

    halfway = threading.Event()
    publisher = threading.Thread(target=lambda: _run(publish()))
    publisher.start()
    db = pipeline.data_dir / "data" / "shards.sqlite3"
    assert halfway.wait(60)
    time.sleep(0.3)
    still_publishing = publisher.is_alive()
    pipeline.kill("bridge")
    killed_at = _count(db, t)
    publisher.join(120)
    pipeline.start("bridge", "bridge")
    wait_for(f"{total} shards", lambda: _count(db, t) >= total, timeout=180)
    time.sleep(1)
    assert still_publishing
    assert killed_at < total
    assert _count(db, t) == total
    with sqlite3.connect(db) as conn:
        (distinct,) = conn.execute(
            "SELECT COUNT(DISTINCT json_extract(doc, '$.source.externalId')) FROM shards "
            "WHERE tenant_id = ?",
            (t,),
        ).fetchone()
    assert distinct == total


def _ml_write(event: dict) -> bool:
    """A write-back of ML fields (not a record's change)."""
    return event.get("changedFields") == ["mlFields"]


def _count(db: Path, tenant_id: str) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        (n,) = conn.execute(
            "SELECT COUNT(*) FROM shards WHERE tenant_id = ?", (tenant_id,)
        ).fetchone()
    return int(n)


def _run(coro):
    return asyncio.run(coro)
