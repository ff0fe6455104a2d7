import json
from pathlib import Path

import pytest

from agents.pipeline import ShardPipeline
from core.exceptions import ConcurrencyError, StoreError
from mappings.crm import map_crm_event, shipped_mappings
from processors.startup import ensure_shard_types
from shards.sqlite import SqliteShardStore
from streams.incoming import IncomingEvent
from streams.models import shard_event
from tests.fixtures import salesforce as sf


class RecordingWriter:
    """Stands in for the topics; records what the pipeline emits."""

    def __init__(self) -> None:
        self.events = []
        self.letters = []
        self.raw = []

    async def announce(self, writes) -> None:
        self.events.extend(shard_event(w) for w in writes)

    async def dead_letter(self, letters) -> None:
        self.letters.extend(letters)

    async def send_raw(self, events) -> None:
        self.raw.extend(events)


def incoming(value: bytes, offset: int) -> IncomingEvent:
    return IncomingEvent(
        value=value, key=b"k", topic="integration.raw.crm", partition=0, offset=offset
    )


@pytest.fixture
async def store(tmp_path: Path):
    async with SqliteShardStore(tmp_path / "shards.db") as s:
        await ensure_shard_types(s)
        yield s


def pipeline(store, writer, retries: int = 2) -> ShardPipeline:
    return ShardPipeline(
        agent="crm",
        data_type="crm",
        to_draft=lambda e: map_crm_event(e, shipped_mappings()),
        store=store,
        writer=writer,
        retries=retries,
        retry_max_delay=0.01,
    )


async def test_bad_events_are_dead_lettered_and_the_rest_written(store) -> None:
    writer = RecordingWriter()
    no_tenant = sf.account("t1")
    del no_tenant["tenantId"]
    bad_amount = sf.opportunity("t1")
    bad_amount["payload"]["Amount"] = "lots"
    batch = [
        incoming(b"not json", 0),
        incoming(json.dumps(no_tenant).encode(), 1),
        incoming(json.dumps(bad_amount).encode(), 2),
        incoming(sf.line(sf.account("t1")), 3),
        incoming(sf.line({**sf.account("t1", "001X"), "dataType": "email"}), 4),
    ]
    outcomes = await pipeline(store, writer).process(batch)
    assert [o.kind.value for o in outcomes] == ["created"]
    letters = sorted(writer.letters, key=lambda letter: int(letter.source["sourceOffset"]))
    assert [(letter.stage, letter.source["sourceOffset"]) for letter in letters] == [
        ("validate", "0"),
        ("validate", "1"),
        ("map", "2"),
        ("validate", "4"),
    ]
    assert "Amount" in letters[2].error
    assert [e.type for e in writer.events] == ["shard.created"]


async def test_replay_re_announces_the_same_event_id_but_writes_nothing(store) -> None:
    writer = RecordingWriter()
    p = pipeline(store, writer)
    await p.process([incoming(sf.line(sf.account("t1")), 0)])
    outcomes = await p.process([incoming(sf.line(sf.account("t1")), 1)])
    assert [o.kind.value for o in outcomes] == ["unchanged"]
    assert len({e.event_id for e in writer.events}) == 1
    assert writer.events[0].version == 1


async def test_store_failures_are_retried_then_dead_lettered(store) -> None:
    calls = 0

    class FailingStore:
        async def upsert_many(self, drafts):
            nonlocal calls
            calls += 1
            raise StoreError("disk on fire")

    writer = RecordingWriter()
    outcomes = await pipeline(FailingStore(), writer, retries=3).process(
        [incoming(sf.line(sf.account("t1")), 0)]
    )
    assert outcomes == []
    assert calls == 3
    assert [(letter.stage, letter.error_type) for letter in writer.letters] == [
        ("store", "StoreError")
    ]


async def test_a_lost_merge_race_is_retried(store) -> None:
    calls = 0

    class RacingStore:
        async def upsert_many(self, drafts):
            nonlocal calls
            calls += 1
            if calls == 1:
                raise ConcurrencyError("another worker kept winning")
            return await store.upsert_many(drafts)

    writer = RecordingWriter()
    outcomes = await pipeline(RacingStore(), writer, retries=3).process(
        [incoming(sf.line(sf.account("t1")), 0)]
    )
    assert [o.kind.value for o in outcomes] == ["created"]
    assert calls == 2
    assert writer.letters == []


async def test_missing_shard_type_is_created_and_the_write_retried(tmp_path: Path) -> None:
    writer = RecordingWriter()
    async with SqliteShardStore(tmp_path / "no-types.db") as bare:
        outcomes = await pipeline(bare, writer).process([incoming(sf.line(sf.account("t1")), 0)])
        assert [o.kind.value for o in outcomes] == ["created"]
        assert await bare.get_shard_type("Account") is not None
    assert writer.letters == []
