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
import contextvars
import json
import re
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.exceptions import ConcurrencyError, WritesLostError
from core.settings import Settings
from linking.service import Linker
from processors.bootstrap import build_store
from processors.startup import ensure_shard_types
from shards.ids import shard_id
from shards.keys import index_keys, key_values
from shards.model import Link, ShardDraft, WriteKind, merge
from shards.sqlite import MAX_HOLD, SqliteShardStore, _doc, _shard, _suggestion_doc, _views
from shards.store import LinkingWrite
from shards.suggestions import SuggestedLink
from tests.fixtures.linking_corpus import corpus
from tests.fixtures.shards import NullLinkWriter
from tests.fixtures.shards import draft as shard_draft
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


async def test_a_file_from_before_thread_views_gets_them_when_opened(tmp_path: Path) -> None:
    """A database written before `thread_views` existed (user_version 0): opening it fills
    them from the stored messages, once."""
    path = tmp_path / "old.db"

    def mail(n: int) -> dict[str, object]:
        return {"messageId": f"<e{n}@x>", "threadId": "thr-1", "sentAt": f"2026-11-0{n + 1}T10:00"}

    thread = [shard_draft(T, "gmail", "email", "Email", f"e{n}", mail(n)) for n in range(3)]
    async with SqliteShardStore(path) as store:
        await ensure_shard_types(store)
        await store.upsert_many(thread)
        expected = await store.find_views(T, "Email", "threadId", ["thr-1"], ["sentAt"])
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM thread_views")
        conn.execute("PRAGMA user_version = 0")
    async with SqliteShardStore(path) as store:
        views = await store.find_views(T, "Email", "threadId", ["thr-1"], ["sentAt"])
    assert len(expected) == 3
    assert sorted(views, key=lambda v: v.id) == sorted(expected, key=lambda v: v.id)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1


async def test_a_file_whose_shards_are_clustered_by_id_is_rebuilt_as_a_rowid_table(
    tmp_path: Path,
) -> None:
    """A database from before version 2 (`shards` `WITHOUT ROWID`): opening it moves every
    shard to the rowid table, once, and drops the indexes by shard (version 3); reads,
    look-ups and upserts go on as before."""
    path = tmp_path / "old.db"
    account = shard_draft(T, "sf", "account", "Account", "a1", {"name": "Fabrikam"})
    contact = shard_draft(T, "sf", "contact", "Contact", "c1", {"email": "p@fabrikam.com"})
    async with SqliteShardStore(path) as store:
        await ensure_shard_types(store)
        await store.upsert_many([account, contact])
        before = await store.get(T, contact.id)
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.executescript(
            """
            BEGIN;
            CREATE TABLE old (tenant_id TEXT NOT NULL, id TEXT NOT NULL,
                shard_type TEXT NOT NULL, etag TEXT NOT NULL, doc TEXT NOT NULL,
                PRIMARY KEY (tenant_id, id)) WITHOUT ROWID;
            INSERT INTO old SELECT tenant_id, id, shard_type, etag, doc FROM shards;
            DROP TABLE shards;
            ALTER TABLE old RENAME TO shards;
            CREATE INDEX shards_by_type ON shards (tenant_id, shard_type, id);
            CREATE INDEX shard_keys_by_shard ON shard_keys (tenant_id, shard_id);
            CREATE INDEX thread_views_by_shard ON thread_views (tenant_id, shard_id);
            PRAGMA user_version = 1;
            COMMIT;
            """
        )
    async with SqliteShardStore(path) as store:
        assert await store.get(T, contact.id) == before
        found = await store.find(T, "Contact", "email", ["p@fabrikam.com"])
        assert [s.id for s in found] == [contact.id]
        (again,) = await store.upsert_many([account])
        assert again.kind is WriteKind.UNCHANGED
        renamed = shard_draft(
            T, "sf", "account", "Account", "a1", {"name": "Fabrikam Logistics"}, event_id="e2"
        )
        (updated,) = await store.upsert_many([renamed])
        assert updated.shard.version == 2
        page = await store.query(T, shard_type="Account", limit=10)
        assert [s.structured_data["name"] for s in page.items] == ["Fabrikam Logistics"]
    with sqlite3.connect(path) as conn:
        (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'shards'").fetchone()
        assert "WITHOUT ROWID" not in sql.upper()
        assert conn.execute("SELECT COUNT(*) FROM shards").fetchone()[0] == 2
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        dropped = "SELECT name FROM sqlite_master WHERE name LIKE '%_by_shard'"
        assert conn.execute(dropped).fetchall() == []  # version 3
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_stored_document_is_the_shard_document_without_its_etag() -> None:
    """`_doc` (pydantic's serialiser) writes what `Shard.to_doc` says, etag left out."""
    draft = shard_draft(
        T, "gmail", "email", "Email", "e1",
        {"subject": "Prix révisés — 20 %", "sentAt": "2026-11-02T09:14:03Z", "cc": None,
         "scores": [0.1, 1e16, 3], "nested": {"ok": True, "none": None}},
    )  # fmt: skip
    shard = merge(None, draft, datetime(2026, 12, 1, tzinfo=UTC)).shard
    shard = shard.model_copy(
        update={
            "etag": "abc",
            "links": [
                Link(
                    target_shard_id="o1",
                    target_shard_type="Opportunity",
                    confidence=0.9,
                    method="account_domain",
                    status="confirmed",
                    evidence=[{"rule": "x"}],
                )
            ],
            "ml_fields": {"emailCount": 3},
        }
    )
    expected = shard.to_doc()
    assert expected.pop("_etag") == "abc"
    assert json.loads(_doc(shard)) == expected
    assert "é" in _doc(shard)  # UTF-8, not escaped


async def test_a_thread_read_again_sees_what_another_process_changed_in_it(
    tmp_path: Path,
) -> None:
    """A thread's views are kept by its change count (`thread_seq`, kept by triggers): a
    message another store (process) adds, moves away or relinks is read the next time."""
    path = tmp_path / "shared.db"

    def mail(n: int, thread: str, sent: str) -> ShardDraft:
        data = {"messageId": f"<e{n}@x>", "threadId": thread, "sentAt": sent}
        return shard_draft(T, "gmail", "email", "Email", f"e{n}", data, event_id=f"e{n}-{thread}")

    async def ids(store: SqliteShardStore, thread: str) -> list[str]:
        views = await store.find_views(T, "Email", "threadId", [thread], ["sentAt"])
        return sorted(v.id for v in views)

    first, second = mail(1, "thr-1", "2026-11-01T10:00"), mail(2, "thr-1", "2026-11-02T10:00")
    async with SqliteShardStore(path) as reader, SqliteShardStore(path) as writer:
        await ensure_shard_types(writer)
        await writer.upsert_many([first])
        assert await ids(reader, "thr-1") == [first.id]
        assert await ids(reader, "thr-1") == [first.id]  # kept
        await writer.upsert_many([second])
        assert await ids(reader, "thr-1") == sorted([first.id, second.id])
        await writer.upsert_many([mail(1, "thr-2", "2026-11-01T10:00")])  # moved away
        assert await ids(reader, "thr-1") == [second.id]
        assert await ids(reader, "thr-2") == [first.id]
        stored = await writer.get(T, second.id)
        assert stored is not None and stored.etag is not None
        link = Link(target_shard_id="o1", target_shard_type="Opportunity", confidence=1.0,
                    method="thread", status="auto")  # fmt: skip
        await writer.replace(stored.model_copy(update={"links": [link]}), if_match=stored.etag)
        (view,) = await reader.find_views(T, "Email", "threadId", ["thr-1"], ["sentAt"])
        assert [k.target_shard_id for k in view.links] == ["o1"]


async def test_an_update_rewrites_only_the_keys_and_views_that_changed(tmp_path: Path) -> None:
    """The look-up keys follow an update (the old address finds nothing), and a new version
    whose thread view is as before leaves its thread's change count alone."""
    path = tmp_path / "keys.db"

    def mail(version: int, sender: str, sent: str) -> ShardDraft:
        data = {"messageId": "<e1@x>", "threadId": "thr-1", "sentAt": sent,
                "from": {"email": sender}, "subject": f"v{version}"}  # fmt: skip
        return shard_draft(T, "gmail", "email", "Email", "e1", data, event_id=f"v{version}")

    def rows(sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(path) as conn:
            return sorted(conn.execute(sql).fetchall())

    seq = "SELECT seq FROM thread_seq WHERE thread_id = 'thr-1'"
    async with SqliteShardStore(path) as store:
        await ensure_shard_types(store)
        (first,) = await store.upsert_many([mail(1, "ana@fabrikam.com", "2026-11-01T10:00")])
        assert rows(seq) == [(1,)]
        (second,) = await store.upsert_many([mail(2, "ana@fabrikam.com", "2026-11-01T10:00")])
        assert second.shard.version == 2  # a new subject: the view (times, links) unchanged
        assert rows(seq) == [(1,)]
        (third,) = await store.upsert_many([mail(3, "bo@contoso.com", "2026-11-03T10:00")])
        assert rows(seq) == [(3,)]  # the view changed: its row updated (old and new counted)
        assert await store.find(T, "Email", "participant", ["ana@fabrikam.com"]) == []
        found = await store.find(T, "Email", "participant", ["bo@contoso.com"])
        assert [s.id for s in found] == [first.shard.id]
        expected = sorted((T, "Email", k, v, first.shard.id) for k, v in index_keys(third.shard))
        assert rows("SELECT * FROM shard_keys") == expected


async def test_the_threads_a_store_keeps_are_bounded_by_their_views(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past `VIEWS_KEPT` views the kept threads are dropped (and read again when asked)."""
    monkeypatch.setattr("shards.sqlite.VIEWS_KEPT", 3)

    def mail(n: int, thread: str) -> ShardDraft:
        data = {"messageId": f"<e{n}@x>", "threadId": thread, "sentAt": f"2026-11-0{n}T10:00"}
        return shard_draft(T, "gmail", "email", "Email", f"e{n}", data)

    async with SqliteShardStore(tmp_path / "kept.db") as store:
        await ensure_shard_types(store)
        await store.upsert_many([mail(1, "a"), mail(2, "a"), mail(3, "b"), mail(4, "b")])
        for thread, expected in (("a", 2), ("b", 2), ("a", 2)):
            views = await store.find_views(T, "Email", "threadId", [thread], ["sentAt"])
            assert len(views) == expected
            kept = store._threads  # what the bound is about
            assert kept.held == sum(len(v) for _, _, v in kept.values()) <= 3
            assert list(kept) == [(T, "Email", thread)]


def _committed_readers(path: Path, target: str) -> int:
    """Link-context rows for `target` another connection sees (what is committed)."""
    with sqlite3.connect(path) as other:
        return int(
            other.execute(
                "SELECT COUNT(*) FROM link_context WHERE target_id = ?", (target,)
            ).fetchone()[0]
        )


async def test_held_writes_commit_together_at_the_end_of_the_block(tmp_path: Path) -> None:
    store = await seeded(tmp_path)
    path = tmp_path / "shards.sqlite3"
    try:
        with store.held_writes():
            for n in range(20):
                await store.put_link_context(T, f"m{n}", {"held": ""})
            # the block reads its own writes; nobody else sees them yet
            assert len(await store.link_readers(T, "held")) == 20
            assert _committed_readers(path, "held") == 0
        assert _committed_readers(path, "held") == 20
        # a block left waiting (no more writes) commits after MAX_HOLD all the same
        with store.held_writes():
            await store.put_link_context(T, "m-late", {"waited": ""})
            await asyncio.sleep(MAX_HOLD * 3)
            assert _committed_readers(path, "waited") == 1
    finally:
        await store.__aexit__(None, None, None)


async def test_a_failed_write_in_a_held_block_undoes_only_itself(tmp_path: Path) -> None:
    store = await seeded(tmp_path)
    try:
        shard = await store.get(T, shard_id(T, "test", "account", "a1"))
        assert shard is not None
        with store.held_writes():
            await store.put_link_context(T, "m1", {"before": ""})
            with pytest.raises(ConcurrencyError):
                await store.replace(shard, if_match="not-its-etag")
            await store.put_link_context(T, "m2", {"after": ""})
        assert await store.link_readers(T, "before") == {"m1": ""}
        assert await store.link_readers(T, "after") == {"m2": ""}
    finally:
        await store.__aexit__(None, None, None)


async def test_writes_of_others_end_a_held_transaction_instead_of_waiting_for_it(
    tmp_path: Path,
) -> None:
    """While a held block is open (as linking's is over a batch), the store thread's batch
    and another task's small write go ahead at once, neither waits for the block's timer,
    and the other task's write is committed when it returns."""
    store = await seeded(tmp_path)
    path = tmp_path / "shards.sqlite3"
    try:
        with store.held_writes():
            await store.put_link_context(T, "m1", {"x": ""})
            started = time.perf_counter()
            await store.upsert_many([email(100, "priya@fabrikam.com")])
            assert time.perf_counter() - started < MAX_HOLD / 2
            assert _committed_readers(path, "x") == 1
            await store.put_link_context(T, "m2", {"x": ""})
            outside = contextvars.Context()  # a task of its own, not in the block
            started = time.perf_counter()
            await asyncio.create_task(store.put_link_context(T, "web", {"y": ""}), context=outside)
            assert time.perf_counter() - started < MAX_HOLD / 2
            assert _committed_readers(path, "y") == 1
            assert _committed_readers(path, "x") == 2
    finally:
        await store.__aexit__(None, None, None)


class _FailingCommits:
    """A connection whose COMMITs fail (a full disk), otherwise itself."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql == "COMMIT":
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)


async def test_a_held_commit_that_fails_is_reported_and_loses_only_its_writes(
    tmp_path: Path,
) -> None:
    store = await seeded(tmp_path)
    inline = store._inline
    try:
        with store.held_writes():
            await store.put_link_context(T, "m1", {"kept": ""})
        with pytest.raises(WritesLostError), store.held_writes():
            store._inline = _FailingCommits(inline)  # type: ignore[assignment]
            await store.put_link_context(T, "m2", {"lost": ""})
        store._inline = inline
        assert await store.link_readers(T, "kept") == {"m1": ""}
        assert await store.link_readers(T, "lost") == {}
        # done again without holding, as the linking agent does
        await store.put_link_context(T, "m2", {"lost": ""})
        assert await store.link_readers(T, "lost") == {"m2": ""}
    finally:
        store._inline = inline
        await store.__aexit__(None, None, None)


def _derived_rows(path: Path) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """The look-up keys and thread views every stored document calls for."""
    keys: set[tuple[str, ...]] = set()
    views: set[tuple[str, ...]] = set()
    with sqlite3.connect(path) as conn:
        for doc, etag in conn.execute("SELECT doc, etag FROM shards"):
            shard = _shard(doc, etag)
            own = index_keys(shard)
            keys |= {(shard.tenant_id, shard.shard_type, k, v, shard.id) for k, v in own}
            views |= {
                (shard.tenant_id, shard.shard_type, thread, shard.id, view)
                for thread, view in _views(shard, own)
            }
    return keys, views


def _stored_index_rows(path: Path) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    with sqlite3.connect(path) as conn:
        return (
            set(conn.execute("SELECT tenant_id, shard_type, key, value, shard_id FROM shard_keys")),
            set(
                conn.execute(
                    "SELECT tenant_id, shard_type, thread_id, shard_id, view FROM thread_views"
                )
            ),
        )


async def test_the_index_rows_are_those_the_stored_documents_call_for_after_every_write(
    tmp_path: Path,
) -> None:
    """What a write replaces is worked out from the stored version (no rows read): after
    creates, updates that move a message to another thread and change its people, two
    versions of one shard in one batch, a relink with and without the version read, the
    rows are exactly those the stored documents call for."""
    path = tmp_path / "rows.db"

    def mail(n: int, version: int, thread: str, people: list[str]) -> ShardDraft:
        data = {"messageId": f"<e{n}@x>", "threadId": thread, "sentAt": f"2026-11-0{version}",
                "from": {"email": people[0]}, "to": [{"email": p} for p in people[1:]]}  # fmt: skip
        return shard_draft(T, "gmail", "email", "Email", f"e{n}", data, event_id=f"e{n}v{version}")

    link = Link(target_shard_id="o1", target_shard_type="Opportunity", confidence=1.0,
                method="thread", status="auto")  # fmt: skip
    async with SqliteShardStore(path) as store:
        await ensure_shard_types(store)
        await store.upsert_many(
            [mail(1, 1, "a", ["ana@fabrikam.com", "dan@northwind.com"]),
             mail(2, 1, "a", ["bo@contoso.com"]),
             mail(3, 1, "b", ["cy@eu.adatum.com", "dan@northwind.com"])]
        )  # fmt: skip
        assert _stored_index_rows(path) == _derived_rows(path)
        await store.upsert_many(
            [mail(1, 2, "b", ["ana@fabrikam.com"]),  # moved to b, one person fewer
             mail(2, 2, "a", ["bo@contoso.com", "eve@tailspin.com"]),
             mail(2, 3, "c", ["bo@contoso.com"]),  # a second version in the same batch
             mail(4, 1, "c", ["fay@litware.io"])]
        )  # fmt: skip
        assert _stored_index_rows(path) == _derived_rows(path)
        first = await store.get(T, shard_id(T, "gmail", "email", "e1"))
        assert first is not None and first.etag is not None
        relinked = first.model_copy(update={"links": [link]})
        written = await store.write_linking(
            LinkingWrite(tenant_id=T, shard_id=first.id, looked_at={}, relinked=relinked,
                         suggestions=[], keep=frozenset(), at=datetime.now(UTC), read=first)
        )  # fmt: skip
        assert _stored_index_rows(path) == _derived_rows(path)
        # relinked again from the version written (only the links' rows are worked out)
        assert written.shard is not None
        other = link.model_copy(update={"target_shard_id": "o2"})
        await store.write_linking(
            LinkingWrite(tenant_id=T, shard_id=first.id, looked_at={},
                         relinked=written.shard.model_copy(update={"links": [other]}),
                         suggestions=[], keep=frozenset(), at=datetime.now(UTC),
                         read=written.shard)
        )  # fmt: skip
        assert _stored_index_rows(path) == _derived_rows(path)
        assert (T, "Email", "linkedTarget", "o2", first.id) in _stored_index_rows(path)[0]
        current = await store.get(T, first.id)
        assert current is not None
        relinked = current.model_copy(update={"links": [link]})
        await store.write_linking(
            LinkingWrite(tenant_id=T, shard_id=first.id, looked_at={}, relinked=relinked,
                         suggestions=[], keep=frozenset(), at=datetime.now(UTC), read=None)
        )  # fmt: skip
        assert _stored_index_rows(path) == _derived_rows(path)
        second = await store.get(T, shard_id(T, "gmail", "email", "e2"))
        assert second is not None and second.etag is not None
        await store.replace(second.model_copy(update={"links": [link]}), if_match=second.etag)
        third = await store.get(T, shard_id(T, "gmail", "email", "e3"))
        assert third is not None and third.etag is not None
        # a version read at another etag (here already with the link): trusted, it would
        # leave the thread view and the linked-target key as they were
        stale = third.model_copy(update={"etag": "not-what-is-stored", "links": [link]})
        await store.write_linking(  # the version read is not the one matched: read again
            LinkingWrite(tenant_id=T, shard_id=third.id, looked_at={},
                         relinked=third.model_copy(update={"links": [link]}), suggestions=[],
                         keep=frozenset(), at=datetime.now(UTC), read=stale)
        )  # fmt: skip
        keys, views = _stored_index_rows(path)
        assert (keys, views) == _derived_rows(path)
        assert (T, "Email", "linkedTarget", "o1", third.id) in keys
        assert {(r[2], r[3]) for r in views} == {
            ("b", first.id), ("c", second.id), ("b", third.id),
            ("c", shard_id(T, "gmail", "email", "e4")),
        }  # fmt: skip
        with pytest.raises(ConcurrencyError):
            await store.replace(third.model_copy(update={"links": []}), if_match=third.etag)
        assert _stored_index_rows(path) == (keys, views)


def test_a_stored_document_calls_for_the_rows_its_shard_was_written_with() -> None:
    """`_index_many` works out a shard's stored rows from its stored document: for every
    shard of the linking corpus (real mappings and normalisers, every type), with a link,
    the document read back gives the same look-up keys and thread views."""
    link = Link(target_shard_id="o1", target_shard_type="Opportunity", confidence=0.5,
                method="thread", status="auto")  # fmt: skip
    shards = [*corpus().crm, *(item.shard for item in corpus().items)]
    assert {s.shard_type for s in shards} >= {
        "Account", "Contact", "Opportunity", "User", "Email", "Message", "CalendarEvent",
    }  # fmt: skip
    for shard in shards:
        shard = shard.model_copy(update={"links": [link], "etag": "e"})
        again = _shard(_doc(shard), "e")
        assert index_keys(again) == index_keys(shard), shard.id
        assert _views(again, index_keys(again)) == _views(shard, index_keys(shard)), shard.id


async def test_the_batch_writer_keeps_the_pages_the_settings_give_it(
    tmp_path: Path, monkeypatch
) -> None:
    """`SQLITE_CACHE_MB` sizes the page cache of the store thread's connection (every batch
    write goes through it); 0 leaves SQLite's default (2 MB, `-2000`)."""

    async def cache_size(store: SqliteShardStore) -> int:
        return int(await store._run(lambda: store._db().execute("PRAGMA cache_size").fetchone()[0]))

    monkeypatch.delenv("STORE_URL", raising=False)
    for mb, expected in (("48", -48 * 1024), ("0", -2000)):
        monkeypatch.setenv("SQLITE_CACHE_MB", mb)
        monkeypatch.setenv("DATA_DIR", str(tmp_path / mb))
        store = build_store(Settings())
        assert isinstance(store, SqliteShardStore)
        async with store:
            assert await cache_size(store) == expected
    async with SqliteShardStore.from_url(f"sqlite://{tmp_path}/u.db", cache_mb=8) as store:
        assert await cache_size(store) == -8 * 1024


def test_a_stored_suggestion_is_its_document() -> None:
    """`_suggestion_doc` (pydantic's serialiser) writes what `SuggestedLink.to_doc` says,
    read back as the same suggestion."""
    suggestion = SuggestedLink(
        id="s1", tenant_id=T, source_shard_id="e1", source_shard_type="Email",
        target_shard_id="o1", target_shard_type="Opportunity", target_name="Zoë — Prix 20 %",
        confidence=0.62, method="opportunity_open", evidence=[{"rule": "r", "score": 1e16}],
        alternatives=[{"targetShardId": "o2", "confidence": 0.5, "extra": None}],
        reason="two open opportunities", raised_by="linking",
        created_at=datetime(2026, 12, 1, 9, 30, 0, 123456, tzinfo=UTC),
    )  # fmt: skip
    assert json.loads(_suggestion_doc(suggestion)) == suggestion.to_doc()
    assert SuggestedLink.model_validate_json(_suggestion_doc(suggestion)) == suggestion
    assert "Zoë" in _suggestion_doc(suggestion)


def test_one_keys_values_are_those_index_keys_gives_under_it() -> None:
    """`key_values` (what a CRM look-up by one key reads of each found shard) agrees with
    `index_keys` for every shard type, key and shard of the linking corpus."""
    shards = [*corpus().crm, *(item.shard for item in corpus().items)]
    keys = {k for shard in shards for k, _ in index_keys(shard)} | {"nothing"}
    assert {"email", "domain", "accountId", "participant", "threadId"} <= keys
    for shard in shards:
        every = index_keys(shard)
        for key in keys:
            assert key_values(shard, key) == {v for k, v in every if k == key}, (shard.id, key)


def _pending(source: str, target: str) -> SuggestedLink:
    return SuggestedLink(
        id=f"{source}:{target}", tenant_id=T, source_shard_id=source,
        source_shard_type="Email", target_shard_id=target, target_shard_type="Opportunity",
        confidence=0.6, method="opportunity_open", raised_by="linking",
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
    )  # fmt: skip


def _linking(source: str, suggestions: list[SuggestedLink], seen: dict[str, str]) -> LinkingWrite:
    return LinkingWrite(
        tenant_id=T, shard_id=source, looked_at=seen, relinked=None, suggestions=suggestions,
        keep=frozenset(s.target_shard_id for s in suggestions), at=datetime.now(UTC),
    )  # fmt: skip


async def test_a_linking_write_in_a_held_block_works_from_its_read_only_while_nothing_came_between(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a held transaction a linking write takes the suggestions and link context it read
    (to learn whether anything changes) as what it writes over, without reading them
    again: nothing else can write in between. When something did (here a person approves
    the suggestion while the write's read waits), it reads again: the approval stays, and
    the suggestion is not raised as new."""
    store = await seeded(tmp_path)
    try:
        with store.held_writes():
            # a write that opens the held transaction, then one that works from its read
            first = await store.write_linking(_linking("e1", [_pending("e1", "o1")], {"a": ""}))
            assert [s.id for s in first.raised] == ["e1:o1"]
            again = await store.write_linking(
                _linking("e1", [_pending("e1", "o1"), _pending("e1", "o2")], {"b": "x"})
            )
            assert [s.id for s in again.raised] == ["e1:o2"]  # o1 was pending already
            assert await store.link_readers(T, "a") == {}
            assert await store.link_readers(T, "b") == {"e1": "x"}
            withdrawn = await store.write_linking(_linking("e1", [_pending("e1", "o2")], {}))
            assert [s.id for s in withdrawn.withdrawn] == ["e1:o1"]

            # the read yields, and another task (the review page) approves o2 meanwhile
            read = store._read

            async def read_then_yield(fn: Any) -> Any:
                found = await read(fn)
                await asyncio.create_task(
                    store.decide_suggestion(T, "e1:o2", "approved", user_id="u", reason=None,
                                            at=datetime.now(UTC)),
                    context=contextvars.Context(),
                )  # fmt: skip
                return found

            monkeypatch.setattr(store, "_read", read_then_yield)
            late = await store.write_linking(
                _linking("e1", [_pending("e1", "o2"), _pending("e1", "o3")], {"c": ""})
            )
            monkeypatch.undo()
            assert [s.id for s in late.raised] == ["e1:o3"]
        stored = await store.get_suggestion(T, "e1:o2")
        assert stored is not None and stored.status == "approved"
        assert await store.decisions_for(T, "e1") == {"o2": "approved"}
        assert await store.link_readers(T, "c") == {"e1": ""}
    finally:
        await store.__aexit__(None, None, None)
