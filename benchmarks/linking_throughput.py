"""Links per second for a large tenant: the linker's indexed look-ups against a naive scan.

    .venv/bin/python benchmarks/linking_throughput.py [--accounts 10000 --contacts 50000
        --opportunities 20000 --emails 300 --naive-emails 10 --batch 500]

Both sides read the same embedded store and run the same rules; the naive side reads
every shard of the tenant (paged `query`) for each email and filters in memory
(`linking.memory.build_context`), which is what linking without an index costs. The
indexed side runs twice, on two sets of emails alike: one evaluation at a time, each
committed (`Linker.link`), and as the linking agent runs a backlog: batches of `--batch`
with the batch's activities read together (`Linker.prefetch`), its CRM reads shared
(`Linker.batch`) and its writes committed together (`ShardStore.held_writes`). The
garbage collector is set as a worker sets it (`GC_THRESHOLD`; `--gc-threshold 0`: Python's).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.settings import Settings
from core.tenants import TenantConfig, TenantDirectory
from linking.activity import activity_of, lookup_keys
from linking.decisions import decide
from linking.memory import build_context
from linking.rules import candidates
from linking.service import Linker
from processors.cli import tune_gc
from processors.startup import ensure_shard_types
from shards.ids import shard_id
from shards.model import Shard, ShardDraft
from shards.sqlite import SqliteShardStore
from tests.fixtures.shards import NullLinkWriter, draft

TENANT = "t-bench"
TENANTS = TenantDirectory({TENANT: TenantConfig(internal_domains=frozenset({"northwind.com"}))})


def _draft(kind: str, shard_type: str, external: str, data: dict[str, object]) -> ShardDraft:
    return draft(TENANT, "bench", kind, shard_type, external, data)


def crm_drafts(accounts: int, contacts: int, opportunities: int) -> list[ShardDraft]:
    drafts = []
    for a in range(accounts):
        drafts.append(_draft("account", "Account", f"a{a}",
                             {"name": f"Account {a}", "domain": f"account{a}.com"}))  # fmt: skip
    for c in range(contacts):
        a = c % accounts
        drafts.append(_draft("contact", "Contact", f"c{c}", {
            "fullName": f"Person {c}", "email": f"p{c}@account{a}.com",
            "accountId": shard_id(TENANT, "bench", "account", f"a{a}"),
        }))  # fmt: skip
    for o in range(opportunities):
        a = o % accounts
        drafts.append(_draft("opportunity", "Opportunity", f"o{o}", {
            "name": f"Deal {o} platform", "status": "open", "closeDate": "2027-02-01",
            "accountId": shard_id(TENANT, "bench", "account", f"a{a}"),
        }))  # fmt: skip
    return drafts


def email_drafts(n: int, contacts: int, accounts: int) -> list[ShardDraft]:
    rng = random.Random(7)
    drafts = []
    for e in range(n):
        c = rng.randrange(contacts)
        sender = f"p{c}@account{c % accounts}.com"
        drafts.append(_draft("email", "Email", f"m{e}", {
            "messageId": f"<m{e}@x>", "threadId": f"t{e}", "subject": "Pricing",
            "from": {"email": sender, "name": None},
            "to": [{"email": "dan@northwind.com", "name": "Dan"}], "cc": [], "bcc": [],
            "participants": [sender, "dan@northwind.com"], "sentAt": "2026-11-20T10:00:00Z",
            "direction": "inbound", "attachments": [], "bodyTruncated": False,
        }))  # fmt: skip
    return drafts


async def naive_link(store: SqliteShardStore, email: Shard) -> int:
    shards, cursor = [], None
    while True:
        page = await store.query(TENANT, limit=5000, continuation=cursor)
        shards.extend(page.items)
        cursor = page.continuation
        if cursor is None:
            break
    tenant = TENANTS.of(TENANT)
    activity = activity_of(email, tenant)
    assert activity is not None
    context = build_context(activity, lookup_keys(activity, tenant), shards, [], {})
    decision = decide(activity, candidates(activity, context, tenant), tenant, {})
    return len(decision.links) + len(decision.suggestions)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--opportunities", type=int, default=20_000)
    parser.add_argument("--emails", type=int, default=300)
    parser.add_argument("--naive-emails", type=int, default=10)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--gc-threshold", type=int, default=Settings().GC_THRESHOLD)
    args = parser.parse_args()
    tune_gc(args.gc_threshold)
    with tempfile.TemporaryDirectory() as tmp:
        async with SqliteShardStore(Path(tmp) / "bench.db") as store:
            await ensure_shard_types(store)
            started = time.perf_counter()
            crm = crm_drafts(args.accounts, args.contacts, args.opportunities)
            for i in range(0, len(crm), 2000):
                await store.upsert_many(crm[i : i + 2000])
            drafted = email_drafts(2 * args.emails, args.contacts, args.accounts)
            emails, batched = drafted[: args.emails], drafted[args.emails :]
            outcomes = await store.upsert_many(drafted)
            print(f"loaded {len(crm)} CRM shards and {len(drafted)} emails "
                  f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
            linker = Linker(store, TENANTS, NullLinkWriter())
            alone = together = 0.0  # the two ways take turns, a batch each
            for i in range(0, args.emails, args.batch):
                started = time.perf_counter()
                for draft in emails[i : i + args.batch]:
                    await linker.link(TENANT, draft.id)
                alone += time.perf_counter() - started
                started = time.perf_counter()
                with store.held_writes(), linker.batch():
                    await linker.prefetch((TENANT, d.id) for d in batched[i : i + args.batch])
                    for draft in batched[i : i + args.batch]:
                        await linker.link(TENANT, draft.id)
                together += time.perf_counter() - started
            indexed, in_batches = len(emails) / alone, len(batched) / together
            stored = [await store.get(TENANT, d.id) for d in drafted]
            linked = sum(1 for shard in stored if shard is not None and shard.links)
            started = time.perf_counter()
            naive_count = 0
            for outcome in outcomes[: args.naive_emails]:
                naive_count += await naive_link(store, outcome.shard)
            naive = args.naive_emails / (time.perf_counter() - started)
    print(f"indexed, one at a time: {indexed:9.1f} emails linked/s")
    print(f"indexed, in batches   : {in_batches:9.1f} emails linked/s  "
          f"({in_batches / indexed:.2f}x; {linked}/{len(drafted)} got links)")  # fmt: skip
    print(f"naive tenant scan     : {naive:9.2f} emails linked/s  ({args.naive_emails} emails)")
    print(f"ratio (one at a time) : {indexed / naive:9.0f}x")


if __name__ == "__main__":
    asyncio.run(main())
