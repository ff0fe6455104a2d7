"""The embedded store's statements on the linking path (and the review page's listing)
find their rows through an index narrower than the tenant; its small writes never block
the event loop while another process writes.

Without `ANALYZE` statistics SQLite chose the primary key's `tenant_id` prefix for the
look-ups of one activity's suggestions and link context (a scan of all the tenant's
rows per evaluation): linking slowed as suggestions accumulated, 119 emails/s over 2,000
emails against 283/s with the index named. Each statement a linking evaluation runs is
traced and its plan checked.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from pathlib import Path

from linking.service import Linker
from shards.ids import shard_id
from tests.fixtures.shards import NullLinkWriter
from tests.unit.test_linking_reads import ACCOUNT, TENANTS, T, draft, email, seeded

#: a plan step that reads more than one activity's rows: a scan, or only the tenant known
_WIDE = re.compile(r"^SCAN |USING (?:COVERING )?(?:INDEX \w+|PRIMARY KEY) \(tenant_id=\?\)$")


async def test_every_statement_of_a_linking_evaluation_searches_narrower_than_the_tenant(
    tmp_path: Path,
) -> None:
    store = await seeded(tmp_path)
    try:
        # a second open deal of the account: its contacts' mail becomes a suggestion
        await store.upsert_many([
            draft("opportunity", "Opportunity", "o2", {
                "name": "Fleet Renewal", "status": "open", "closeDate": "2027-03-01",
                "accountId": ACCOUNT}),
            *(email(n, "priya@fabrikam.com") for n in range(20)),
        ])  # fmt: skip
        linker = Linker(store, TENANTS, NullLinkWriter())
        for n in range(19):
            await linker.relink(T, shard_id(T, "test", "email", f"m{n}"))
        statements: list[str] = []
        # the store's connections: its thread's, the event loop's reader and writer
        connections = [store._db(), store._reader, store._inline]
        for conn in connections:
            assert conn is not None
            conn.set_trace_callback(statements.append)
        try:
            await linker.relink(T, shard_id(T, "test", "email", "m19"))
            # the review page's list of what is pending
            pending, _ = await store.list_suggestions(T, status="pending_review")
            assert pending, "no suggestion made: the withdrawal's write was not exercised"
        finally:
            for conn in connections:
                assert conn is not None
                conn.set_trace_callback(None)
        db = store._db()
        searched = [s for s in statements if re.match(r"\s*(SELECT|UPDATE|DELETE)", s)]
        assert len(searched) >= 5, statements
        for sql in searched:
            plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")]
            wide = [step for step in plan if _WIDE.search(step)]
            assert not wide, f"{sql}\n  plan: {plan}"
    finally:
        await store.__aexit__(None, None, None)


async def test_a_small_write_waits_on_the_store_thread_while_another_process_writes(
    tmp_path: Path,
) -> None:
    store = await seeded(tmp_path)
    try:
        other = sqlite3.connect(tmp_path / "shards.sqlite3", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process's write transaction
        first = asyncio.create_task(store.put_link_context(T, "m1", {"a": ""}))
        second = asyncio.create_task(store.put_link_context(T, "m1", {"b": "x"}))
        started = time.perf_counter()
        await asyncio.sleep(0.3)
        # the event loop ran on (the sleep took its time), and both writes wait
        assert time.perf_counter() - started < 0.5
        assert not first.done()
        assert not second.done()
        other.execute("COMMIT")
        await asyncio.wait_for(asyncio.gather(first, second), 10)
        # in the order asked: the second replaced the first
        assert await store.link_readers(T, "b") == {"m1": "x"}
        assert await store.link_readers(T, "a") == {}
        other.close()
        # the database free again: the next write is done at once, on the event loop
        await store.put_link_context(T, "m2", {"a": ""})
        assert await store.link_readers(T, "a") == {"m2": ""}
    finally:
        await store.__aexit__(None, None, None)
