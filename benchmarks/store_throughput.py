"""Shard writes/s and linker look-ups/s: the Cosmos DB store (on the npm emulator) against the
embedded SQLite store, in the same run; and the request charge per write and per look-up.

    .venv/bin/python benchmarks/store_throughput.py [--emails 1000 --contacts 500
        --batch 500 --lookups 100 --batch-docs 1000]

Writes are Email shards with a ~1.5 KB body, in agent-sized batches (`upsert_many`), first
created then updated (a new version each); look-ups are `find(Contact, email, 5 addresses)`
as the linker makes per email; point reads are `get`. Then the two ways of writing one
agent batch on Cosmos, measured raw: concurrent point upserts against transactional
batches (one per partition key, at most 100 operations each).

Request charges: the emulator sends `x-ms-request-charge: 1` for everything, which is not a
charge; the figures printed as "estimate" come from the document sizes and the table of
read/write charges by document size that Azure publishes ("Understand request unit
consumption"), the query floor per physical partition an assumption (~2.5 RU).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from azure.cosmos import PartitionKey
from azure.cosmos.aio import CosmosClient

from processors.startup import ensure_shard_types
from shards.cosmos import CosmosShardStore, _shard_doc, shard_partition_key
from shards.ids import shard_id
from shards.model import ShardDraft, ShardSource
from shards.sqlite import SqliteShardStore
from shards.store import ShardStore
from tests.integration.cosmosdb import COSMOS_KEY, CosmosDbServer

TENANT = "t-bench"
BODY = ("We reviewed the routing proposal with the operations team and would like to " * 20)[:1500]
#: Azure's published charges by document size (KB → RU) for reads and writes, session
#: consistency, default indexing (learn.microsoft.com, "Understand request unit consumption").
READ_RU = {1: 1.00, 2: 1.04, 4: 1.14, 8: 1.33, 16: 1.67, 32: 2.19, 64: 4.76}
WRITE_RU = {1: 4.95, 2: 6.29, 4: 6.67, 8: 7.04, 16: 9.52, 32: 11.23, 64: 22.67}
QUERY_FLOOR_RU = 2.5  # assumption: a query's charge per physical partition it touches


def _table(table: dict[int, float], kb: float) -> float:
    """Linear interpolation in a published size → RU table."""
    sizes = sorted(table)
    if kb <= sizes[0]:
        return table[sizes[0]]
    for low, high in itertools.pairwise(sizes):
        if kb <= high:
            return table[low] + (table[high] - table[low]) * (kb - low) / (high - low)
    return table[sizes[-1]] * kb / sizes[-1]


def _source(kind: str, external: str, version: int) -> ShardSource:
    return ShardSource(
        provider="bench", integration_id="i", entity_type=kind, external_id=external,
        event_id=f"e-{kind}-{external}-{version}",
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=version),
    )  # fmt: skip


def contact(i: int) -> ShardDraft:
    external = f"c{i:06d}"
    return ShardDraft(
        id=shard_id(TENANT, "bench", "Contact", external), tenant_id=TENANT,
        shard_type="Contact", schema_version=2,
        structured_data={"email": f"person{i}@customer{i % 200}.com", "name": f"Person {i}",
                         "accountId": f"acc-{i % 200}"},
        unstructured_data={}, source=_source("Contact", external, 1),
    )  # fmt: skip


def email(i: int, version: int, contacts: int) -> ShardDraft:
    external = f"m{i:06d}"
    people = [f"person{(i * 7 + k) % contacts}@customer{((i * 7 + k) % contacts) % 200}.com"
              for k in range(3)]  # fmt: skip
    return ShardDraft(
        id=shard_id(TENANT, "bench", "Email", external), tenant_id=TENANT,
        shard_type="Email", schema_version=2,
        structured_data={
            "messageId": f"<{external}@mail>", "threadId": f"th-{i // 4}",
            "subject": f"Routing proposal v{version}", "from": {"email": people[0]},
            "to": [{"email": p} for p in people[1:]] + [{"email": "rep@northwind.com"}],
            "sentAt": "2026-11-01T10:00:00Z",
        },
        unstructured_data={"bodyText": BODY}, source=_source("Email", external, version),
    )  # fmt: skip


async def run_store(name: str, store: ShardStore, args: argparse.Namespace) -> dict[str, float]:
    await ensure_shard_types(store)
    contacts = [contact(i) for i in range(args.contacts)]
    for start in range(0, len(contacts), args.batch):
        await store.upsert_many(contacts[start : start + args.batch])
    figures: dict[str, float] = {}
    for label, version in (("creates", 1), ("updates", 2)):
        drafts = [email(i, version, args.contacts) for i in range(args.emails)]
        began = time.perf_counter()
        for start in range(0, len(drafts), args.batch):
            outcomes = await store.upsert_many(drafts[start : start + args.batch])
            assert all(o.changed for o in outcomes), label
        figures[f"{label}/s"] = len(drafts) / (time.perf_counter() - began)
    addresses = [
        [f"person{(j * 5 + k) % args.contacts}@customer{((j * 5 + k) % args.contacts) % 200}.com"
         for k in range(5)]
        for j in range(args.lookups)
    ]  # fmt: skip
    began = time.perf_counter()
    found = 0
    for wanted in addresses:
        found += len(await store.find(TENANT, "Contact", "email", wanted))
    figures["look-ups/s"] = args.lookups / (time.perf_counter() - began)
    assert found == 5 * args.lookups, found
    ids = [shard_id(TENANT, "bench", "Email", f"m{i:06d}") for i in range(args.lookups)]
    began = time.perf_counter()
    for sid in ids:
        assert await store.get(TENANT, sid) is not None
    figures["point reads/s"] = len(ids) / (time.perf_counter() - began)
    print(f"  {name:7s} " + "  ".join(f"{k} {v:8.0f}" for k, v in figures.items()))
    return figures


async def charges(store: CosmosShardStore) -> None:
    """Server-reported charge of one write, one read, one look-up; and the estimates."""
    container = store._container("shards")
    headers = container.client_connection.last_response_headers
    draft = email(10**6, 1, 1000)
    (outcome,) = await store.upsert_many([draft])
    write_reported = headers.get("x-ms-request-charge")
    await store.get(TENANT, draft.id)
    read_reported = headers.get("x-ms-request-charge")
    await store.find(TENANT, "Contact", "email", ["person1@customer1.com"])
    query_reported = container.client_connection.last_response_headers.get("x-ms-request-charge")
    email_kb = len(json.dumps(_shard_doc(outcome.shard)).encode()) / 1024
    stored_contact = await store.get(TENANT, contact(1).id)
    assert stored_contact is not None
    contact_kb = len(json.dumps(_shard_doc(stored_contact)).encode()) / 1024
    write = _table(WRITE_RU, email_kb)
    read = _table(READ_RU, email_kb)
    print(
        f"\nrequest charge reported by the emulator: write {write_reported}, read "
        f"{read_reported}, look-up {query_reported} (a constant, not a real charge)"
    )
    sizes = f"Email shard {email_kb:.1f} KB, Contact {contact_kb:.1f} KB"
    print(f"estimate (Azure's size table; {sizes}):")
    print(f"  shard write (read, its share of a partition query, + write) ~{read + write:5.1f} RU")
    print(f"  point read (get)                                ~{read:5.1f} RU")
    for partitions in (1, 4, 16):
        lookup = partitions * QUERY_FLOOR_RU + _table(READ_RU, contact_kb)
        print(
            f"  look-up (find, 1 hit) touching {partitions:2d} physical partition(s) "
            f"~{lookup:5.1f} RU"
        )


async def batch_vs_points(server: CosmosDbServer, n: int) -> None:
    """One agent batch written as concurrent point upserts, then as transactional batches."""
    async with CosmosClient(server.endpoint, credential=COSMOS_KEY, connection_verify=False) as c:
        db = await c.create_database_if_not_exists(f"bench-raw-{time.monotonic_ns()}")
        try:
            container = await db.create_container_if_not_exists("shards", PartitionKey("/pk"))
            docs = []
            for i in range(n):
                draft = email(i, 1, 1000)
                doc: dict[str, Any] = {
                    "id": draft.id, "pk": shard_partition_key(TENANT, draft.id),
                    "tenantId": TENANT, "shardType": "Email",
                    "structuredData": draft.structured_data,
                    "unstructuredData": draft.unstructured_data,
                }  # fmt: skip
                docs.append(doc)
            limit = asyncio.Semaphore(32)

            async def put(doc: dict[str, Any]) -> None:
                async with limit:
                    await container.upsert_item(doc)

            began = time.perf_counter()
            await asyncio.gather(*(put(d) for d in docs))
            points = n / (time.perf_counter() - began)
            by_pk: dict[str, list[dict[str, Any]]] = {}
            for doc in docs:
                by_pk.setdefault(doc["pk"], []).append(doc)
            batches = [
                (pk, group[start : start + 100])
                for pk, group in by_pk.items()
                for start in range(0, len(group), 100)
            ]
            began = time.perf_counter()
            await asyncio.gather(
                *(
                    container.execute_item_batch(
                        [("upsert", (d,)) for d in group], partition_key=pk
                    )
                    for pk, group in batches
                )
            )
            batched = n / (time.perf_counter() - began)
            print(
                f"\none batch of {n} shards on the emulator: concurrent point upserts "
                f"{points:.0f}/s, transactional batches ({len(batches)} of <=100) {batched:.0f}/s"
            )
        finally:
            await c.delete_database(db.id)


async def main(args: argparse.Namespace) -> None:
    with CosmosDbServer() as server, tempfile.TemporaryDirectory() as tmp:
        print(
            f"{args.emails} Email shards (batches of {args.batch}), {args.contacts} contacts, "
            f"{args.lookups} look-ups of 5 addresses; one process, 2 shared cores (noisy)"
        )
        async with SqliteShardStore(Path(tmp) / "bench.db") as sqlite:
            lite = await run_store("sqlite", sqlite, args)
        database = f"bench-{time.monotonic_ns()}"
        async with CosmosShardStore.from_url(
            server.store_url(database), COSMOS_KEY, verify_tls=False
        ) as cosmos:
            try:
                cos = await run_store("cosmos", cosmos, args)
                await charges(cosmos)
            finally:
                async with CosmosClient(
                    server.endpoint, credential=COSMOS_KEY, connection_verify=False
                ) as c:
                    await c.delete_database(database)
        print("\ncosmos / sqlite: " + "  ".join(f"{k} {cos[k] / lite[k]:.2f}" for k in lite))
        await batch_vs_points(server, args.batch_docs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=1000)
    parser.add_argument("--contacts", type=int, default=500)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--lookups", type=int, default=100)
    parser.add_argument("--batch-docs", type=int, default=1000)
    asyncio.run(main(parser.parse_args()))
