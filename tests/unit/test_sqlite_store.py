import asyncio
import multiprocessing
from pathlib import Path

import pytest

from core.exceptions import ConcurrencyError, ShardTypeMissingError
from mappings.crm import map_crm_event, shipped_mappings
from processors.startup import ensure_shard_types
from shards.model import WriteKind
from shards.sqlite import SqliteShardStore
from shards.types import definition
from streams.models import RawEvent
from tests.fixtures import salesforce as sf


def draft(envelope: dict):
    return map_crm_event(RawEvent.model_validate(envelope), shipped_mappings())


@pytest.fixture
async def store(tmp_path: Path):
    async with SqliteShardStore(tmp_path / "shards.db") as s:
        await ensure_shard_types(s)
        yield s


async def test_upsert_is_idempotent_and_ordered_by_occurred_at(store: SqliteShardStore) -> None:
    first = await store.upsert_many([draft(sf.opportunity("t1"))])
    assert [o.kind for o in first] == [WriteKind.CREATED]
    replay = await store.upsert_many([draft(sf.opportunity("t1"))])
    assert [o.kind for o in replay] == [WriteKind.UNCHANGED]
    newer = draft(sf.opportunity("t1", stage="Negotiation", occurred_at="2026-11-03T00:00:00Z"))
    older = draft(sf.opportunity("t1", stage="Prospecting", occurred_at="2026-11-01T00:00:00Z"))
    outcomes = await store.upsert_many([newer, older])
    assert [o.kind for o in outcomes] == [WriteKind.UPDATED, WriteKind.STALE]
    stored = await store.get("t1", newer.id)
    assert stored is not None
    assert stored.version == 2
    assert stored.structured_data["stage"] == "Negotiation"


async def test_tenants_are_isolated(store: SqliteShardStore) -> None:
    d = draft(sf.account("t1"))
    await store.upsert_many([d])
    assert await store.get("t2", d.id) is None
    assert (await store.query("t2")).items == []


async def test_query_by_type_field_and_pages(store: SqliteShardStore) -> None:
    drafts = [draft(sf.account("t1", f"001{i:03d}")) for i in range(25)]
    drafts.append(draft(sf.contact("t1")))
    await store.upsert_many(drafts)
    seen, cursor = [], None
    while True:
        page = await store.query("t1", shard_type="Account", limit=10, continuation=cursor)
        seen.extend(s.id for s in page.items)
        cursor = page.continuation
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 25
    found = await store.query(
        "t1", where={"structuredData.email": "priya.raman@fabrikam-logistics.com"}
    )
    assert [s.shard_type for s in found.items] == ["Contact"]
    with pytest.raises(ValueError, match="not a field path"):
        await store.query("t1", where={"x') OR 1=1 --": 1})


async def test_replace_checks_the_etag(store: SqliteShardStore) -> None:
    (outcome,) = await store.upsert_many([draft(sf.account("t1"))])
    shard = outcome.shard
    assert shard.etag
    changed = shard.model_copy(update={"ml_fields": {"x": 1}})
    written = await store.replace(changed, if_match=shard.etag)
    assert written.etag != shard.etag
    with pytest.raises(ConcurrencyError):
        await store.replace(changed, if_match=shard.etag)


async def test_missing_shard_type_is_reported(tmp_path: Path) -> None:
    async with SqliteShardStore(tmp_path / "empty.db") as s:
        with pytest.raises(ShardTypeMissingError, match="Account"):
            await s.upsert_many([draft(sf.account("t1"))])
        await s.put_shard_type(definition("Account"))
        assert [o.kind for o in await s.upsert_many([draft(sf.account("t1"))])] == [
            WriteKind.CREATED
        ]


async def test_ensure_shard_types_creates_then_updates_changed_versions(tmp_path: Path) -> None:
    async with SqliteShardStore(tmp_path / "types.db") as s:
        assert set((await ensure_shard_types(s)).values()) == {"created"}
        assert set((await ensure_shard_types(s)).values()) == {"unchanged"}
        old = definition("Account")
        bumped = type(old)(old.id, old.name, old.description, old.schema_version + 1, old.schema)
        result = await ensure_shard_types(s, wanted={"Account": bumped})
        assert result == {"Account": "updated"}
        stored = await s.get_shard_type("Account")
        assert stored is not None
        assert stored.schema_version == old.schema_version + 1


def _writer(path: str, worker: int) -> None:
    async def run() -> None:
        async with SqliteShardStore(Path(path)) as s:
            for round_ in range(20):
                batch = [
                    draft(
                        sf.account(
                            "t1",
                            f"001{i:03d}",
                            occurred_at=f"2026-11-{1 + round_:02d}T00:00:00Z",
                            event_id=f"e-{worker}-{round_}-{i}",
                        )
                    )
                    for i in range(50)
                ]
                await s.upsert_many(batch)

    asyncio.run(run())


async def test_several_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    async with SqliteShardStore(path) as s:
        await ensure_shard_types(s)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    async with SqliteShardStore(path) as s:
        page = await s.query("t1", limit=500)
    assert len(page.items) == 50
    # Every id exists once; versions only went up (one per accepted newer event).
    assert all(1 <= shard.version <= 20 for shard in page.items)
