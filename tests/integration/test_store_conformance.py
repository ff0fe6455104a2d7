"""One conformance suite for every shard store: the same tests on SQLite and on Cosmos DB.

Cosmos runs on the session's emulator (`cosmosdb` fixture), one uuid-named database per
test, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.exceptions import (
    ConcurrencyError,
    ConfigurationError,
    ShardTypeMissingError,
    StoreError,
)
from core.settings import Settings
from mappings.crm import map_crm_event, shipped_mappings
from processors.bootstrap import build_store
from processors.startup import ensure_shard_types
from shards.cosmos import CosmosShardStore, shard_partition_key
from shards.links import relinked, write_links
from shards.model import Link, ShardDraft, WriteKind
from shards.sqlite import SqliteShardStore
from shards.store import LinkingWrite, ShardStore, ShardView, view_of
from shards.suggestions import SuggestedLink, suggestion_id
from shards.types import definition
from streams.models import RawEvent
from tests.fixtures import salesforce as sf
from tests.fixtures.shards import draft as shard_draft
from tests.integration.cosmosdb import COSMOS_KEY, CosmosDbServer, drop_database


def draft(envelope: dict) -> ShardDraft:
    return map_crm_event(RawEvent.model_validate(envelope), shipped_mappings())


@dataclass(frozen=True)
class StoreSpec:
    """How to open one test's store, in this process or a child (picklable)."""

    kind: str
    location: str

    def open(self) -> ShardStore:
        if self.kind == "sqlite":
            return SqliteShardStore(Path(self.location))
        return CosmosShardStore.from_url(self.location, COSMOS_KEY, verify_tls=False)


@pytest.fixture(params=["sqlite", "cosmos"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSpec:
    if request.param == "sqlite":
        return StoreSpec("sqlite", str(tmp_path / "shards.db"))
    server: CosmosDbServer = request.getfixturevalue("cosmosdb")
    return StoreSpec("cosmos", server.store_url(f"test-{uuid.uuid4().hex[:12]}"))


@pytest.fixture
async def bare(spec: StoreSpec) -> AsyncIterator[ShardStore]:
    """The store of `spec`, started, with no shard types; Cosmos: its database dropped after."""
    store = spec.open()
    await store.start()
    try:
        yield store
    finally:
        await store.stop()
        if spec.kind == "cosmos":
            await drop_database(spec.location)


@pytest.fixture
async def store(bare: ShardStore) -> ShardStore:
    await ensure_shard_types(bare)
    return bare


# --- upsert, merge, versions ------------------------------------------------------------


async def test_upsert_is_idempotent_and_ordered_by_occurred_at(store: ShardStore) -> None:
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
    assert stored.etag == outcomes[0].shard.etag
    # The merge's own history fields come from the shared merge (shards.model.merge).
    assert stored.structured_data["stageEnteredAt"].startswith("2026-11-03")


async def test_replayed_batch_writes_nothing_new(store: ShardStore) -> None:
    batch = [draft(sf.account("t1", f"001{i:03d}")) for i in range(5)]
    assert {o.kind for o in await store.upsert_many(batch)} == {WriteKind.CREATED}
    before = {s.id: (s.version, s.etag) for s in (await store.query("t1")).items}
    again = await store.upsert_many(batch + batch)
    assert {o.kind for o in again} == {WriteKind.UNCHANGED}
    after = {s.id: (s.version, s.etag) for s in (await store.query("t1")).items}
    assert after == before


async def test_one_batch_merges_several_versions_of_a_shard_in_order(store: ShardStore) -> None:
    versions = [
        draft(sf.opportunity("t1", stage=s, occurred_at=f"2026-11-0{i + 1}T00:00:00Z"))
        for i, s in enumerate(["Prospecting", "Qualification", "Negotiation"])
    ]
    outcomes = await store.upsert_many(versions)
    assert [o.kind for o in outcomes] == [WriteKind.CREATED, WriteKind.UPDATED, WriteKind.UPDATED]
    assert [o.shard.version for o in outcomes] == [1, 2, 3]
    stored = await store.get("t1", versions[0].id)
    assert stored is not None
    assert (stored.version, stored.structured_data["stage"]) == (3, "Negotiation")
    # Only the last write's etag is the stored one.
    assert outcomes[2].shard.etag == stored.etag
    assert outcomes[1].shard.etag != stored.etag


async def test_replace_checks_the_etag(store: ShardStore) -> None:
    (outcome,) = await store.upsert_many([draft(sf.account("t1"))])
    shard = outcome.shard
    assert shard.etag
    changed = shard.model_copy(update={"ml_fields": {"x": 1}})
    written = await store.replace(changed, if_match=shard.etag)
    assert written.etag != shard.etag
    assert written.ml_fields == {"x": 1}
    with pytest.raises(ConcurrencyError):
        await store.replace(changed, if_match=shard.etag)
    stored = await store.get("t1", shard.id)
    assert stored is not None and stored.etag == written.etag


def _concurrent_writer(spec: StoreSpec, worker: int, rounds: int, shards: int) -> dict[str, int]:
    """Write `rounds` new versions of each shard; count the versions this writer made."""

    async def run() -> dict[str, int]:
        made: Counter[str] = Counter()
        store = spec.open()
        async with store:  # type: ignore[attr-defined]  # both stores are context managers
            for round_ in range(rounds):
                batch = [
                    draft(
                        sf.envelope(
                            "t1",
                            "Account",
                            f"001{i:03d}",
                            {"Name": f"Fabrikam {worker}-{round_}"},
                            event_id=f"e-{worker}-{round_}-{i}",
                        )
                    )
                    for i in range(shards)
                ]
                for outcome in await store.upsert_many(batch):
                    if outcome.changed:
                        made[outcome.shard.id] += 1
        return dict(made)

    return asyncio.run(run())


async def test_concurrent_merges_from_two_processes_lose_no_update(spec: StoreSpec) -> None:
    store = spec.open()
    await store.start()
    try:
        await ensure_shard_types(store)
        rounds, shards = 8, 20
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(2, mp_context=ctx) as pool:
            loop = asyncio.get_running_loop()
            made = await asyncio.gather(
                *(
                    loop.run_in_executor(pool, _concurrent_writer, spec, w, rounds, shards)
                    for w in range(2)
                )
            )
        page = await store.query("t1", limit=100)
        assert len(page.items) == shards
        for shard in page.items:
            # Every version a writer was told it made is in the count: a lost update
            # (two writers building the same next version) would leave fewer versions.
            assert shard.version == made[0].get(shard.id, 0) + made[1].get(shard.id, 0)
            assert shard.version == 2 * rounds  # every event changed the name
    finally:
        await store.stop()
        if spec.kind == "cosmos":
            await drop_database(spec.location)


# --- reads, paging, tenants ---------------------------------------------------------------


async def test_tenants_are_isolated(store: ShardStore) -> None:
    d = draft(sf.account("t1"))
    await store.upsert_many([d])
    assert await store.get("t2", d.id) is None
    assert (await store.query("t2")).items == []
    assert await store.find("t2", "Account", "domain", ["fabrikam-logistics.com"]) == []
    assert await store.tenant_ids("Account") == ["t1"]
    await store.upsert_many([draft(sf.account("t0")), draft(sf.contact("t3"))])
    assert await store.tenant_ids("Account") == ["t0", "t1"]
    assert await store.tenant_ids("Contact") == ["t3"]


async def test_shard_types_present_are_those_a_tenant_has(store: ShardStore) -> None:
    wanted = {"Account", "Contact", "Message", "Email"}
    assert await store.shard_types_present("t1", wanted) == set()
    await store.upsert_many([draft(sf.account("t1")), message("t1", 1, "th-1")])
    await store.upsert_many([draft(sf.contact("t2"))])
    assert await store.shard_types_present("t1", wanted) == {"Account", "Message"}
    assert await store.shard_types_present("t1", ["Message", "Message"]) == {"Message"}
    assert await store.shard_types_present("t2", wanted) == {"Contact"}
    assert await store.shard_types_present("t3", wanted) == set()
    assert await store.shard_types_present("t1", []) == set()


async def test_get_many_finds_the_stored_ones_of_one_tenant(store: ShardStore) -> None:
    drafts = [draft(sf.account("t1", f"001{i:012d}")) for i in range(3)]
    await store.upsert_many([*drafts, draft(sf.account("t2", "001999999999999"))])
    wanted = [drafts[2].id, "nope", drafts[0].id, drafts[0].id]
    found = await store.get_many("t1", wanted)
    assert set(found) == {drafts[0].id, drafts[2].id}
    assert found[drafts[2].id] == await store.get("t1", drafts[2].id)
    other = draft(sf.account("t2", "001999999999999")).id
    assert await store.get_many("t1", [other]) == {}
    assert await store.get_many("t1", []) == {}


async def test_query_by_type_field_and_pages(store: ShardStore) -> None:
    drafts = [draft(sf.account("t1", f"001{i:03d}")) for i in range(25)]
    drafts.append(draft(sf.contact("t1")))
    await store.upsert_many(drafts)
    seen, cursor, pages = [], None, 0
    while True:
        page = await store.query("t1", shard_type="Account", limit=10, continuation=cursor)
        seen.extend(s.id for s in page.items)
        pages += 1
        cursor = page.continuation
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 25
    assert seen == sorted(seen)
    found = await store.query(
        "t1", where={"structuredData.email": "priya.raman@fabrikam-logistics.com"}
    )
    assert [s.shard_type for s in found.items] == ["Contact"]
    with pytest.raises(ValueError, match="not a field path"):
        await store.query("t1", where={"x') OR 1=1 --": 1})
    with pytest.raises(ValueError, match="not a continuation token"):
        await store.query("t1", continuation="garbage!")


async def test_missing_shard_type_is_reported(bare: ShardStore) -> None:
    with pytest.raises(ShardTypeMissingError, match="Account"):
        await bare.upsert_many([draft(sf.account("t1"))])
    await bare.put_shard_type(definition("Account"))
    assert [o.kind for o in await bare.upsert_many([draft(sf.account("t1"))])] == [
        WriteKind.CREATED
    ]


async def test_ensure_shard_types_creates_then_updates_changed_versions(bare: ShardStore) -> None:
    assert set((await ensure_shard_types(bare)).values()) == {"created"}
    assert set((await ensure_shard_types(bare)).values()) == {"unchanged"}
    old = definition("Account")
    bumped = type(old)(old.id, old.name, old.description, old.schema_version + 1, old.schema)
    result = await ensure_shard_types(bare, wanted={"Account": bumped})
    assert result == {"Account": "updated"}
    stored = await bare.get_shard_type("Account")
    assert stored is not None
    assert stored.schema_version == old.schema_version + 1
    assert await bare.get_shard_type("NoSuchType") is None


# --- look-ups and links -------------------------------------------------------------------


async def test_index_finds_contacts_accounts_and_opportunities(store: ShardStore) -> None:
    account, contact, opportunity = (
        draft(sf.account("t1")), draft(sf.contact("t1")), draft(sf.opportunity("t1"))
    )  # fmt: skip
    await store.upsert_many([account, contact, opportunity, draft(sf.account("t2"))])
    found = await store.find("t1", "Contact", "email", ["priya.raman@fabrikam-logistics.com"])
    assert [s.id for s in found] == [contact.id]
    by_domain = await store.find("t1", "Account", "domain", ["fabrikam-logistics.com", "x.com"])
    assert [s.id for s in by_domain] == [account.id]
    assert await store.find("t1", "Account", "domain", ["other.com"]) == []
    opps = await store.find("t1", "Opportunity", "accountId", [account.id])
    assert [s.id for s in opps] == [opportunity.id]
    assert await store.find("t1", "Contact", "email", []) == []
    # A type filter applies: the contact's address does not find an account.
    assert await store.find("t1", "Account", "email", ["priya.raman@fabrikam-logistics.com"]) == []


async def test_index_follows_changes(store: ShardStore) -> None:
    await store.upsert_many([draft(sf.contact("t1"))])
    moved = sf.contact("t1", occurred_at="2026-11-05T00:00:00Z")
    moved["payload"]["Email"] = "priya@new-home.com"
    await store.upsert_many([draft(moved)])
    assert await store.find("t1", "Contact", "email", ["priya.raman@fabrikam-logistics.com"]) == []
    assert len(await store.find("t1", "Contact", "email", ["priya@new-home.com"])) == 1


async def test_many_look_up_values_in_one_call(store: ShardStore) -> None:
    accounts = [draft(sf.account("t1", f"001{i:03d}")) for i in range(3)]
    await store.upsert_many(accounts)
    wanted = [f"nobody-{i}@example.com" for i in range(250)] + [accounts[1].id]
    opps = await store.find("t1", "Opportunity", "accountId", wanted)
    assert opps == []
    contacts = await store.find(
        "t1", "Contact", "email", [f"c{i}@x.com" for i in range(250)]
    )  # more values than one query takes
    assert contacts == []


async def test_links_keep_people_decisions_and_are_indexed(store: ShardStore) -> None:
    (outcome,) = await store.upsert_many([draft(sf.account("t1"))])
    shard_id = outcome.shard.id

    def link(target: str, status: str) -> Link:
        return Link(
            target_shard_id=target, target_shard_type="Opportunity", confidence=0.9,
            method="m", status=status,
        )  # fmt: skip

    shard, new, _ = await write_links(store, "t1", shard_id, [link("o1", "auto")])
    assert [k.target_shard_id for k in new] == ["o1"]
    assert shard is not None and shard.version == outcome.shard.version + 1
    _, new, removed = await write_links(
        store, "t1", shard_id, [], approved=[link("o2", "approved")]
    )
    assert [k.target_shard_id for k in new] == ["o2"]
    assert [(k.target_shard_id, k.status) for k in removed] == [("o1", "auto")]
    shard, new, removed = await write_links(store, "t1", shard_id, [])
    assert new == []
    assert removed == []
    assert shard is not None
    assert [(k.target_shard_id, k.status) for k in shard.links] == [("o2", "approved")]
    # A re-sync of the record keeps the links (owned by linking, not by the CRM agent).
    resync = draft(sf.account("t1", occurred_at="2026-11-09T00:00:00Z"))
    resync.structured_data["name"] = "Fabrikam Logistics Ltd"
    (updated,) = await store.upsert_many([resync])
    assert updated.kind == WriteKind.UPDATED
    assert [k.target_shard_id for k in updated.shard.links] == ["o2"]


async def test_views_are_the_found_shards_in_part(store: ShardStore) -> None:
    (outcome,) = await store.upsert_many([draft(sf.account("t1"))])
    await store.upsert_many([draft(sf.account("t2"))])  # another tenant's, same domain
    link = Link(target_shard_id="o1", target_shard_type="Opportunity", confidence=0.9,
                method="m", status="auto")  # fmt: skip
    await write_links(store, "t1", outcome.shard.id, [link])
    domain = outcome.shard.structured_data["domain"]
    fields = ["name", "domain", "nothingHere"]
    views = await store.find_views("t1", "Account", "domain", [domain, "other.example"], fields)
    found = await store.find("t1", "Account", "domain", [domain, "other.example"])
    assert views == [view_of(s, fields) for s in found]
    (view,) = views
    assert view.id == outcome.shard.id and view.shard_type == "Account"
    assert set(view.structured_data) == {"name", "domain"}
    assert view.source_occurred_at == outcome.shard.source.occurred_at
    assert [(k.target_shard_id, k.status) for k in view.links] == [("o1", "auto")]
    assert await store.find_views("t1", "Account", "domain", [], fields) == []


async def test_views_by_id_are_the_shards_in_part(store: ShardStore) -> None:
    (account,) = await store.upsert_many([draft(sf.account("t1"))])
    (other,) = await store.upsert_many([draft(sf.account("t2"))])  # another tenant's
    link = Link(target_shard_id="o1", target_shard_type="Opportunity", confidence=0.9,
                method="m", status="auto")  # fmt: skip
    await write_links(store, "t1", account.shard.id, [link])
    fields = ["domain", "domains", "nothingHere"]
    ids = [account.shard.id, other.shard.id, "missing", account.shard.id]
    views = await store.get_views("t1", ids, fields)
    stored = await store.get_many("t1", ids)
    assert views == {i: view_of(s, fields) for i, s in stored.items()}
    assert list(views) == [account.shard.id]
    assert [k.target_shard_id for k in views[account.shard.id].links] == ["o1"]
    assert await store.get_views("t1", [], fields) == {}


def message(tenant_id: str, n: int, thread: str, event: str = "", **data: object) -> ShardDraft:
    return shard_draft(tenant_id, "slack", "message", "Message", f"m{n}", {
        "messageId": f"m-{n}", "threadId": thread, "channelId": "C1",
        "sender": {"email": "dan@northwind.example", "name": "Dan"},
        "sentAt": f"2026-11-02T09:{n:02d}:00Z", "text": "pricing", **data,
    }, event_id=event or None)  # fmt: skip


async def test_thread_views_follow_messages_their_links_and_moves(store: ShardStore) -> None:
    """`find_views` by thread (what linking reads of a thread's other messages) are the
    messages' views, before and after their links change and one moves to another thread."""
    fields = ["sentAt"]
    await store.upsert_many([message("t1", n, "th-1") for n in range(5)])
    await store.upsert_many([message("t2", 0, "th-1")])  # another tenant's, same thread id
    unsent = message("t1", 5, "th-1")
    del unsent.structured_data["sentAt"]
    await store.upsert_many([unsent])

    async def views() -> list[ShardView]:
        found = await store.find("t1", "Message", "threadId", ["th-1", "th-none"])
        expected = sorted((view_of(s, fields) for s in found), key=lambda v: v.id)
        got = await store.find_views("t1", "Message", "threadId", ["th-1", "th-none"], fields)
        assert sorted(got, key=lambda v: v.id) == expected
        return expected

    assert len(await views()) == 6
    first = message("t1", 0, "th-1").id
    link = Link(target_shard_id="o1", target_shard_type="Opportunity", confidence=0.9,
                method="m", status="auto")  # fmt: skip
    await write_links(store, "t1", first, [link])
    linked = [v for v in await views() if v.links]
    assert [(v.id, [k.target_shard_id for k in v.links]) for v in linked] == [(first, ["o1"])]
    edited = message("t1", 1, "th-2", "e-edited", sentAt="2026-11-03T10:00:00Z")
    (outcome,) = await store.upsert_many([edited])
    assert outcome.persist
    assert len(await views()) == 5
    (moved,) = await store.find_views("t1", "Message", "threadId", ["th-2"], fields)
    assert moved.structured_data == {"sentAt": "2026-11-03T10:00:00Z"}
    assert moved.source_occurred_at == datetime(2026, 11, 1, tzinfo=UTC)


async def test_link_context_readers_and_sources(store: ShardStore) -> None:
    await store.put_link_context("t1", "email-1", {"opp-1": "d1", "acc-1": "d2"})
    await store.put_link_context("t1", "email-2", {"opp-1": "d3"})
    await store.put_link_context("t2", "email-9", {"opp-1": "d9"})
    assert await store.link_readers("t1", "opp-1") == {"email-1": "d1", "email-2": "d3"}
    assert await store.link_context_sources("t1", ["opp-1", "acc-1", "none"]) == [
        "email-1",
        "email-2",
    ]
    # Linking again replaces what the activity looked at.
    await store.put_link_context("t1", "email-1", {"acc-1": "d4"})
    assert await store.link_readers("t1", "opp-1") == {"email-2": "d3"}
    assert await store.link_readers("t1", "acc-1") == {"email-1": "d4"}
    assert await store.link_context_sources("t1", ["opp-1"]) == ["email-2"]
    await store.put_link_context("t1", "email-2", {})
    assert await store.link_context_sources("t1", ["opp-1", "acc-1"]) == ["email-1"]
    assert await store.link_context_sources("t1", []) == []


# --- suggestions and decisions ------------------------------------------------------------


def suggestion(
    source: str, target: str, *, tenant: str = "t1", raised_by: str | None = "linking"
) -> SuggestedLink:
    return SuggestedLink(
        id=suggestion_id(tenant, source, target), tenant_id=tenant, source_shard_id=source,
        source_shard_type="Email", target_shard_id=target, target_shard_type="Opportunity",
        confidence=0.7, method="opportunity_tie", created_at=datetime.now(UTC),
        raised_by=raised_by,
    )  # fmt: skip


async def test_suggestions_are_raised_once_and_decided_once(store: ShardStore) -> None:
    now = datetime.now(UTC)
    s = suggestion("email-1", "opp-1")
    assert await store.put_suggestion(s) is True
    assert await store.put_suggestion(s) is False
    items, cursor = await store.list_suggestions("t1", status="pending_review")
    assert [i.id for i in items] == [s.id] and cursor is None
    assert await store.list_suggestions("t2") == ([], None)
    assert await store.get_suggestion("t2", s.id) is None
    assert (
        await store.decide_suggestion("t2", s.id, "approved", user_id="u", reason=None, at=now)
        is None
    )
    result = await store.decide_suggestion(
        "t1", s.id, "approved", user_id="u1", reason="yes", at=now
    )
    assert result is not None and result[0] == "changed" and result[1].decided_by == "u1"
    again = await store.decide_suggestion("t1", s.id, "approved", user_id="u2", reason=None, at=now)
    assert again is not None and again[0] == "unchanged" and again[1].decided_by == "u1"
    flip = await store.decide_suggestion("t1", s.id, "rejected", user_id="u2", reason=None, at=now)
    assert flip is not None and flip[0] == "conflict"
    assert await store.decisions_for("t1", "email-1") == {"opp-1": "approved"}
    # A decided suggestion is never reopened by automation.
    assert await store.put_suggestion(s) is False
    stored = await store.get_suggestion("t1", s.id)
    assert stored is not None
    assert (stored.status, stored.decision_reason) == ("approved", "yes")


async def test_withdrawn_suggestions_come_back_only_when_raised_again(store: ShardStore) -> None:
    now = datetime.now(UTC)
    keep, drop, person = (
        suggestion("email-1", "opp-1"), suggestion("email-1", "opp-2"),
        suggestion("email-1", "opp-3", raised_by=None),
    )  # fmt: skip
    decided = suggestion("email-1", "opp-4")
    for s in (keep, drop, person, decided):
        assert await store.put_suggestion(s) is True
    await store.decide_suggestion("t1", decided.id, "rejected", user_id="u", reason=None, at=now)
    gone = await store.withdraw_suggestions("t1", "email-1", {"opp-1"}, now)
    assert [g.target_shard_id for g in gone] == ["opp-2"]
    assert await store.withdraw_suggestions("t1", "email-1", {"opp-1"}, now) == []
    statuses = {
        i.target_shard_id: i.status for i in (await store.list_suggestions("t1", limit=10))[0]
    }
    assert statuses == {
        "opp-1": "pending_review", "opp-2": "withdrawn", "opp-3": "pending_review",
        "opp-4": "rejected",
    }  # fmt: skip
    assert await store.decisions_for("t1", "email-1") == {"opp-4": "rejected"}
    assert await store.put_suggestion(drop) is True  # raised again after the withdrawal
    back = await store.get_suggestion("t1", drop.id)
    assert back is not None and back.status == "pending_review"


async def test_one_evaluations_writes_go_together(store: ShardStore) -> None:
    """`write_linking`: context, links, suggestions, withdrawals of one evaluation; a
    changed etag writes none of them on a store with transactions (SQLite)."""
    now = datetime.now(UTC)
    opp = draft(sf.opportunity("t1"))
    await store.upsert_many([opp])
    shard = await store.get("t1", opp.id)
    assert shard is not None and shard.etag is not None
    link = Link.model_validate({
        "targetShardId": "acc-1", "targetShardType": "Account", "confidence": 0.9,
        "method": "domain", "status": "auto",
    })  # fmt: skip
    old = suggestion(opp.id, "opp-old")
    await store.put_suggestion(old)
    updated, new, removed = relinked(shard, [link])
    assert updated is not None and [n.target_shard_id for n in new] == ["acc-1"] and not removed
    raised = suggestion(opp.id, "opp-new")
    written = await store.write_linking(
        LinkingWrite(tenant_id="t1", shard_id=opp.id, looked_at={"acc-1": ""}, relinked=updated,
                     suggestions=[raised], keep=frozenset({"opp-new"}),
                     at=now)
    )  # fmt: skip
    assert written.shard is not None and [k.target_shard_id for k in written.shard.links] == [
        "acc-1"
    ]
    assert [s.id for s in written.raised] == [raised.id]
    assert [s.id for s in written.withdrawn] == [old.id]
    stored = await store.get("t1", opp.id)
    assert stored is not None and stored.etag == written.shard.etag
    assert await store.link_readers("t1", "acc-1") == {opp.id: ""}
    statuses = {i.target_shard_id: i.status for i in (await store.list_suggestions("t1"))[0]}
    assert statuses == {"opp-old": "withdrawn", "opp-new": "pending_review"}
    # the same evaluation again: nothing new raised or withdrawn, the links as they are
    again = await store.write_linking(
        LinkingWrite(tenant_id="t1", shard_id=opp.id, looked_at={"acc-1": ""}, relinked=None,
                     suggestions=[raised], keep=frozenset({"opp-new"}),
                     at=now)
    )  # fmt: skip
    assert (again.shard, again.raised, again.withdrawn) == (None, [], [])
    # decided from an out-of-date version (the first read): refused
    stale, _, _ = relinked(shard, [link.model_copy(update={"target_shard_id": "acc-2"})])
    assert stale is not None
    with pytest.raises(ConcurrencyError):
        await store.write_linking(
            LinkingWrite(tenant_id="t1", shard_id=opp.id, looked_at={"acc-2": ""},
                         relinked=stale, suggestions=[],
                         keep=frozenset(), at=now)
        )  # fmt: skip
    current = await store.get("t1", opp.id)
    assert current is not None and [k.target_shard_id for k in current.links] == ["acc-1"]
    if isinstance(store, SqliteShardStore):  # one transaction: the context not written either
        assert await store.link_readers("t1", "acc-1") == {opp.id: ""}
        assert await store.link_readers("t1", "acc-2") == {}
    assert {i.status for i in (await store.list_suggestions("t1"))[0]} == {
        "withdrawn",
        "pending_review",
    }


async def test_suggestions_page_and_filter(store: ShardStore) -> None:
    for i in range(7):
        await store.put_suggestion(suggestion(f"email-{i}", "opp-1" if i % 2 else "opp-2"))
    seen, cursor = [], None
    while True:
        items, cursor = await store.list_suggestions("t1", limit=3, continuation=cursor)
        seen.extend(i.id for i in items)
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7
    assert seen == sorted(seen)
    by_target, _ = await store.list_suggestions("t1", target_shard_id="opp-1")
    assert len(by_target) == 3
    by_type, _ = await store.list_suggestions("t1", source_shard_type="Message")
    assert by_type == []
    with pytest.raises(ValueError, match="not a continuation token"):
        await store.list_suggestions("t1", continuation="x")


async def test_ping_answers(store: ShardStore) -> None:
    await store.ping()


# --- Cosmos only: throttling, settings ------------------------------------------------


async def test_cosmos_honours_429_then_gives_the_batch_back(cosmosdb: CosmosDbServer) -> None:
    url = cosmosdb.store_url(f"test-{uuid.uuid4().hex[:12]}")
    patient = CosmosShardStore.from_url(url, COSMOS_KEY, verify_tls=False, throttle_retries=5)
    impatient = CosmosShardStore.from_url(url, COSMOS_KEY, verify_tls=False, throttle_retries=1)
    try:
        async with patient, impatient:
            await ensure_shard_types(patient)
            cosmosdb.throttle(3, retry_after_ms=20)  # within the budget: waits, then writes
            (outcome,) = await patient.upsert_many([draft(sf.account("t1"))])
            assert outcome.kind == WriteKind.CREATED
            cosmosdb.throttle(50, retry_after_ms=1)  # beyond it: a StoreError, retried by agents
            with pytest.raises(StoreError, match="429"):
                await impatient.upsert_many([draft(sf.contact("t1"))])
            cosmosdb.throttle(0)
            assert await patient.get("t1", outcome.shard.id) is not None
    finally:
        cosmosdb.throttle(0)
        await drop_database(url)


async def test_cosmos_splits_a_partitions_batch_under_the_request_limit(
    cosmosdb: CosmosDbServer,
) -> None:
    """4 MB of shards of one partition: written in several transactional batches, since the
    service (and the launcher) refuse a request over 2 MB."""
    url = cosmosdb.store_url(f"test-{uuid.uuid4().hex[:12]}")
    bucket = shard_partition_key("t1", draft(sf.account("t1", "001000")).id)
    drafts = []
    for i in range(2000):
        d = draft(sf.account("t1", f"001{i:06d}"))
        if shard_partition_key("t1", d.id) == bucket:
            d.unstructured_data["text"] = "x" * 100_000
            drafts.append(d)
        if len(drafts) == 40:
            break
    try:
        async with CosmosShardStore.from_url(url, COSMOS_KEY, verify_tls=False) as store:
            await ensure_shard_types(store)
            outcomes = await store.upsert_many(drafts)
            assert {o.kind for o in outcomes} == {WriteKind.CREATED}
            stored = await store.get("t1", drafts[-1].id)
            assert stored is not None and len(stored.unstructured_data["text"]) == 100_000
    finally:
        await drop_database(url)


def test_cosmos_store_url_and_key_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "cosmos://acct.documents.azure.com:443/shards"
    with pytest.raises(ConfigurationError, match="COSMOS_KEY"):
        build_store(Settings(STORE_URL=url))
    store = build_store(Settings(STORE_URL=url, COSMOS_KEY=COSMOS_KEY))  # type: ignore[arg-type]
    assert isinstance(store, CosmosShardStore)
    assert COSMOS_KEY not in repr(store)
    assert "acct.documents.azure.com" in repr(store)
    with pytest.raises(ConfigurationError, match="expected cosmos://"):
        CosmosShardStore.from_url("cosmos://acct.documents.azure.com", COSMOS_KEY)
    monkeypatch.setenv("COSMOS_KEY", COSMOS_KEY)
    assert COSMOS_KEY not in repr(Settings())
