from datetime import UTC, datetime
from pathlib import Path

import pytest

from mappings.crm import map_crm_event, shipped_mappings
from processors.startup import ensure_shard_types
from shards.links import write_links
from shards.model import Link
from shards.sqlite import SqliteShardStore
from shards.suggestions import SuggestedLink, suggestion_id
from streams.models import RawEvent
from tests.fixtures import salesforce as sf


def draft(envelope: dict):
    return map_crm_event(RawEvent.model_validate(envelope), shipped_mappings())


@pytest.fixture
async def store(tmp_path: Path):
    async with SqliteShardStore(tmp_path / "shards.db") as s:
        await ensure_shard_types(s)
        yield s


async def test_index_finds_contacts_accounts_and_opportunities(store) -> None:
    account, contact, opportunity = (
        draft(sf.account("t1")), draft(sf.contact("t1")), draft(sf.opportunity("t1"))
    )  # fmt: skip
    await store.upsert_many([account, contact, opportunity, draft(sf.account("t2"))])
    found = await store.find("t1", "Contact", "email", ["priya.raman@fabrikam-logistics.com"])
    assert [s.id for s in found] == [contact.id]
    by_domain = await store.find("t1", "Account", "domain", ["fabrikam-logistics.com"])
    assert [s.id for s in by_domain] == [account.id]
    assert await store.find("t1", "Account", "domain", ["other.com"]) == []
    opps = await store.find("t1", "Opportunity", "accountId", [account.id])
    assert [s.id for s in opps] == [opportunity.id]
    assert await store.find("t1", "Contact", "email", []) == []


async def test_index_follows_changes(store) -> None:
    await store.upsert_many([draft(sf.contact("t1"))])
    moved = sf.contact("t1", occurred_at="2026-11-05T00:00:00Z")
    moved["payload"]["Email"] = "priya@new-home.com"
    await store.upsert_many([draft(moved)])
    assert await store.find("t1", "Contact", "email", ["priya.raman@fabrikam-logistics.com"]) == []
    assert len(await store.find("t1", "Contact", "email", ["priya@new-home.com"])) == 1


async def test_links_keep_people_decisions(store) -> None:
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


async def test_suggestions_are_raised_once_and_decided_once(store) -> None:
    now = datetime.now(UTC)
    sid = suggestion_id("t1", "email-1", "opp-1")
    suggestion = SuggestedLink(
        id=sid, tenant_id="t1", source_shard_id="email-1", source_shard_type="Email",
        target_shard_id="opp-1", target_shard_type="Opportunity", confidence=0.7,
        method="opportunity_tie", created_at=now,
    )  # fmt: skip
    assert await store.put_suggestion(suggestion) is True
    assert await store.put_suggestion(suggestion) is False
    items, cursor = await store.list_suggestions("t1", status="pending_review")
    assert [i.id for i in items] == [sid] and cursor is None
    assert await store.list_suggestions("t2") == ([], None)
    assert (
        await store.decide_suggestion("t2", sid, "approved", user_id="u", reason=None, at=now)
        is None
    )
    result = await store.decide_suggestion(
        "t1", sid, "approved", user_id="u1", reason="yes", at=now
    )
    assert result is not None and result[0] == "changed" and result[1].decided_by == "u1"
    again = await store.decide_suggestion("t1", sid, "approved", user_id="u2", reason=None, at=now)
    assert again is not None and again[0] == "unchanged" and again[1].decided_by == "u1"
    flip = await store.decide_suggestion("t1", sid, "rejected", user_id="u2", reason=None, at=now)
    assert flip is not None and flip[0] == "conflict"
    assert await store.decisions_for("t1", "email-1") == {"opp-1": "approved"}
    # A decided suggestion is never reopened by automation.
    assert await store.put_suggestion(suggestion) is False
    (decided,), _ = await store.list_suggestions("t1")
    assert decided.status == "approved"
