"""Property: linking does not depend on the order data arrives in.

A random tenant — accounts (two may claim one domain, one may be another's parent or a
reseller), contacts, opportunities, users, emails in threads (some of them bulk mail),
edits of any of them, deletions, and people approving or rejecting
suggestions — is delivered in several random orders into a real SQLite store, each write
followed by what the linking agent does with its shard event. Whatever the order:

- the result is a fixpoint of one linking pass over the final store (activities in time
  order), which a pass reaches from any state: so it *is* that pass's result;
- orders in which people made the same decisions end with the same links and the same
  pending suggestions.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from core.tenants import TenantConfig, TenantDirectory
from linking.service import Linker, _covered_after
from processors.startup import ensure_shard_types
from shards.kinds import ACTIVITY_TYPES
from shards.links import write_links
from shards.model import Link, ShardDraft, ShardSource
from shards.sqlite import SqliteShardStore
from shards.suggestions import suggestion_id
from streams.models import shard_event

T = "t1"
TENANTS = TenantDirectory({T: TenantConfig.model_validate({"internalDomains": ["ours.com"]})})
START = datetime(2026, 6, 1, 9, tzinfo=UTC)  # long ago: no time window may hide anything
DOMAINS = ("acme.com", "beta.io", "mail.acme.com")
PEOPLE = ("ana@acme.com", "bo@acme.com", "cy@beta.io", "di@mail.acme.com", "ed@gmail.com")
REPS = ("rep@ours.com", "sam@ours.com")
OPP_NAMES = ("Rollout", "Renewal", "Pilot")


@dataclass(frozen=True)
class Write:
    """One version of one record; `version` orders versions of the same record."""

    shard_type: str
    shard_id: str
    version: int
    data: dict[str, Any]


@dataclass(frozen=True)
class Decide:
    """A person decides the suggestion (source, target), if it is pending at that moment."""

    source: str
    target: str
    approve: bool


def _account(
    i: int,
    version: int,
    domain: str,
    deleted: bool,
    parent: int | None = None,
    relationship: str | None = None,
) -> Write:
    data: dict[str, Any] = {
        "name": f"Account {i}", "domain": domain, "domains": [domain], "deleted": deleted,
    }  # fmt: skip
    if parent is not None and parent != i:
        data["parentId"] = f"acc-{parent}"  # a hierarchy: the more specific account wins
    if relationship:
        data["relationship"] = relationship  # a reseller: linked as a partner
    return Write("Account", f"acc-{i}", version, data)


def _contact(i: int, version: int, email: str, account: int, deleted: bool) -> Write:
    data = {
        "fullName": f"Person {i}",
        "email": email,
        "emails": [email],
        "accountId": f"acc-{account}",
        "deleted": deleted,
    }
    return Write("Contact", f"con-{i}", version, data)


def _opportunity(i: int, version: int, account: int, status: str, close_days: int) -> Write:
    data = {
        "name": OPP_NAMES[i % len(OPP_NAMES)],
        "accountId": f"acc-{account}",
        "status": status,
        "closeDate": (START + timedelta(days=close_days)).date().isoformat(),
        "createdDate": (START - timedelta(days=40)).isoformat(),
        "ownerId": "usr-0",
        "contactRoles": [],
    }
    return Write("Opportunity", f"opp-{i}", version, data)


def _email(
    i: int,
    version: int,
    sender: str,
    to: list[str],
    thread: int,
    hours: int,
    subject: str,
    bulk: bool = False,
) -> Write:
    data: dict[str, Any] = {
        "messageId": f"m{i}",
        "threadId": f"th{thread}",
        "from": {"email": sender},
        "to": [{"email": a} for a in to],
        "subject": subject,
        "sentAt": (START + timedelta(hours=hours)).isoformat(),
        "deleted": version > 9,  # a version past 9 is the message deleted
    }
    if bulk:
        data["bulkHeaders"] = {"List-Unsubscribe": "<mailto:u@list.example.net>"}
    return Write("Email", f"em-{i}", version, data)


people = st.sampled_from(PEOPLE + REPS)
crm_writes = st.one_of(
    st.builds(_account, st.integers(0, 2), st.integers(1, 3), st.sampled_from(DOMAINS),
              st.booleans().map(lambda b: b and False), st.sampled_from((None, None, 0, 1, 2)),
              st.sampled_from((None, None, None, "reseller"))),
    st.builds(_contact, st.integers(0, 3), st.integers(1, 3), st.sampled_from(PEOPLE),
              st.integers(0, 2), st.sampled_from((False, False, True))),
    st.builds(_opportunity, st.integers(0, 2), st.integers(1, 3), st.integers(0, 2),
              st.sampled_from(("open", "open", "closed_won")), st.integers(-20, 60)),
)  # fmt: skip
email_writes = st.builds(
    _email,
    st.integers(0, 5),
    st.integers(1, 10),
    people,
    st.lists(people, min_size=1, max_size=3, unique=True),
    st.integers(0, 2),
    st.integers(0, 24 * 30),
    st.sampled_from(("Hello", "Re: Rollout plan", "Renewal terms", "Pilot")),
    st.sampled_from((False, False, False, True)),
)
decisions = st.builds(
    Decide,
    st.integers(0, 5).map(lambda i: f"em-{i}"),
    st.sampled_from(("con-0", "con-1", "acc-0", "acc-1", "acc-2", "opp-0", "opp-1", "opp-2")),
    st.booleans(),
)


def _one_per_version(ops: list[Write | Decide]) -> list[Write | Decide]:
    """A record's version has one content (the first drawn): its versions are its history."""
    seen: set[tuple[str, int]] = set()
    kept: list[Write | Decide] = []
    for op in ops:
        if isinstance(op, Write):
            if (op.shard_id, op.version) in seen:
                continue
            seen.add((op.shard_id, op.version))
        kept.append(op)
    return kept


tenants = st.lists(st.one_of(crm_writes, email_writes, email_writes, decisions), max_size=30).map(
    _one_per_version
)


def _draft(write: Write) -> ShardDraft:
    return ShardDraft(
        id=write.shard_id,
        tenant_id=T,
        shard_type=write.shard_type,
        schema_version=1,
        structured_data=write.data,
        unstructured_data={},
        source=ShardSource(
            provider="test",
            integration_id="i1",
            entity_type=write.shard_type,
            external_id=write.shard_id,
            event_id=f"{write.shard_id}:{write.version}",
            # the version is the record's own clock: an older version arriving late is stale
            occurred_at=START + timedelta(seconds=write.version),
        ),
    )


class Announced:
    async def link_events(self, events: Any) -> None:
        list(events)


async def _deliver(ops: list[Write | Decide], path: Path) -> tuple[dict[str, Any], set[Any]]:
    """Deliver `ops` in this order; the final links and pending suggestions per activity,
    after checking they are a fixpoint of one pass over the final store."""
    async with SqliteShardStore(path) as store:
        await ensure_shard_types(store)
        await store.upsert_many([_draft(Write("User", "usr-0", 1, {"email": REPS[0]}))])
        linker = Linker(store, TENANTS, Announced())
        decided: set[Any] = set()
        for op in ops:
            if isinstance(op, Write):
                for outcome in await store.upsert_many([_draft(op)]):
                    if outcome.changed:
                        await linker.process([shard_event(outcome)])
            else:
                await _decide(store, linker, op, decided)
        state = await _snapshot(store)
        shards = await _activities(store)
        for shard in sorted(shards, key=_key):
            await linker.link(T, shard.id)
        assert await _snapshot(store) == state, "not what one pass over the final store gives"
        return state, decided


async def _decide(store: SqliteShardStore, linker: Linker, op: Decide, decided: set[Any]) -> None:
    """What the approve/reject views do (web/suggestions.py)."""
    sid = suggestion_id(T, op.source, op.target)
    current = await store.get_suggestion(T, sid)
    if current is None or current.status != "pending_review":
        return
    status = "approved" if op.approve else "rejected"
    result = await store.decide_suggestion(T, sid, status, user_id="u", reason=None, at=START)
    assert result is not None
    decided.add((op.source, op.target, status))
    if status == "approved":
        link = Link(
            target_shard_id=current.target_shard_id,
            target_shard_type=current.target_shard_type,
            confidence=current.confidence,
            method=current.method,
            status="approved",
        )
        shard = await store.get(T, op.source)
        automatic = [k for k in shard.links if k.status == "auto"] if shard else []
        await write_links(store, T, op.source, automatic, approved=[link])
    await linker.relink(T, op.source)


async def _activities(store: SqliteShardStore) -> list[Any]:
    found = []
    for shard_type in sorted(ACTIVITY_TYPES):
        page = await store.query(T, shard_type=shard_type, limit=500)
        found += page.items
    return found


def _key(shard: Any) -> tuple[Any, str]:
    at = shard.structured_data.get("sentAt")
    return (at or "", shard.id)


async def _snapshot(store: SqliteShardStore) -> dict[str, Any]:
    state: dict[str, Any] = {}
    pending, _ = await store.list_suggestions(T, status="pending_review", limit=500)
    for shard in await _activities(store):
        links = sorted(
            (k.target_shard_id, k.status, round(k.confidence, 6), k.method) for k in shard.links
        )
        mine = sorted(
            (s.target_shard_id, round(s.confidence, 6), s.method)
            for s in pending
            if s.source_shard_id == shard.id
        )
        state[shard.id] = (links, mine)
    return state


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tenants, st.randoms(use_true_random=False))
def test_any_arrival_order_links_as_one_pass_over_the_final_store(
    ops: list[Write | Decide], rng: Any
) -> None:
    note(f"ops: {ops!r}")
    orders = [ops, list(reversed(ops))]
    for _ in range(2):
        shuffled = list(ops)
        rng.shuffle(shuffled)
        orders.append(shuffled)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for i, order in enumerate(orders):
            results.append(asyncio.run(_deliver(order, Path(folder) / f"{i}.db")))
    by_decisions: dict[frozenset[Any], dict[str, Any]] = {}
    for state, decided in results:
        same = by_decisions.setdefault(frozenset(decided), state)
        assert state == same, "two orders with the same decisions linked differently"


def test_a_backfill_of_old_mail_before_its_contacts_links_it_all() -> None:
    """The reported case: mail sent long ago arrives before its contacts and accounts."""
    mails = [
        _email(i, 1, PEOPLE[i % 2], [REPS[0]], i % 3, -24 * 31 + i, f"Subject {i}")
        for i in range(6)
    ]
    crm = [_account(0, 1, "acme.com", False), _contact(0, 1, PEOPLE[0], 0, False)]
    crm += [_contact(1, 1, PEOPLE[1], 0, False), _opportunity(0, 1, 0, "open", 300)]
    with tempfile.TemporaryDirectory() as folder:
        mail_first, _ = asyncio.run(_deliver([*mails, *crm], Path(folder) / "a.db"))
        crm_first, _ = asyncio.run(_deliver([*crm, *mails], Path(folder) / "b.db"))
    assert mail_first == crm_first
    for links, _ in mail_first.values():
        assert {t for t, status, _, _ in links if status == "auto"} >= {"acc-0", "opp-0"}


def _thread_shard(i: int, hours: int, links: list[tuple[str, str]]) -> Any:
    """Email `em-<i>` of thread 0 sent `hours` after START with links (target, status)."""
    shard = asyncio.run(_stored([_draft(_email(i, 1, PEOPLE[0], [REPS[0]], 0, hours, "Hi"))]))
    return shard.model_copy(
        update={
            "links": [
                Link(
                    target_shard_id=t,
                    target_shard_type="Account",
                    confidence=0.9,
                    method="test",
                    status=s,
                )
                for t, s in links
            ]
        }
    )


async def _stored(drafts: list[ShardDraft]) -> Any:
    with tempfile.TemporaryDirectory() as folder:
        async with SqliteShardStore(Path(folder) / "s.db") as store:
            await ensure_shard_types(store)
            return (await store.upsert_many(drafts))[0].shard


def test_later_messages_that_inherit_nothing_new_are_covered() -> None:
    new = _thread_shard(0, 10, [("acc-0", "auto")])
    earlier = _thread_shard(1, 5, [("acc-0", "auto")])
    later = _thread_shard(2, 20, [])
    assert _covered_after(new, [earlier, later]) == {"em-2"}
    # what it passes on is new to a message with nothing before it but itself
    assert _covered_after(new, [later]) == set()
    # an approved link is more than an automatic one to the same target ...
    approved = _thread_shard(0, 10, [("acc-0", "approved")])
    assert _covered_after(approved, [earlier, later]) == set()
    # ... and an automatic one adds nothing to an approved one
    earlier_approved = _thread_shard(1, 5, [("acc-0", "approved")])
    assert _covered_after(new, [earlier_approved, later]) == {"em-2"}
    # two targets: covered from the message after which both have come before
    both = _thread_shard(0, 10, [("acc-0", "auto"), ("acc-1", "auto")])
    between = _thread_shard(5, 12, [])
    middle = _thread_shard(3, 15, [("acc-1", "auto")])
    assert _covered_after(both, [earlier, between, later, middle]) == {"em-2"}
    # nothing to pass on: nothing new for anyone later; earlier messages never count
    bare = _thread_shard(0, 10, [])
    assert _covered_after(bare, [earlier, between, later, middle]) == {"em-5", "em-2", "em-3"}


def test_a_thread_delivered_newest_first_costs_evaluations_in_proportion() -> None:
    """A mailbox backfill arrives newest first: each message is earlier than all before it.
    Re-evaluating every later message of the thread at each arrival was n²/2 evaluations
    (the throughput benchmark's email run asked for 130,000 of them for 20,000 emails)."""
    n = 30
    crm = [_account(0, 1, "acme.com", False), _contact(0, 1, PEOPLE[0], 0, False)]
    mails = [_email(i, 1, PEOPLE[0], [REPS[0]], 0, -i, "Re: Rollout plan") for i in range(n)]

    async def deliver() -> int:
        with tempfile.TemporaryDirectory() as folder:
            async with SqliteShardStore(Path(folder) / "s.db") as store:
                await ensure_shard_types(store)
                linker = Linker(store, TENANTS, Announced())
                evaluations = 0
                for op in [*crm, *mails]:
                    for outcome in await store.upsert_many([_draft(op)]):
                        evaluations += await linker.process([shard_event(outcome)])
                linked = [s for s in await _activities(store) if s.links]
                assert len(linked) == n
                return evaluations

    def counted(trigger: str) -> float:
        value = REGISTRY.get_sample_value(
            "integration_link_evaluations_total", {"trigger": trigger}
        )
        return value or 0.0

    before = {t: counted(t) for t in ("activity", "thread", "crm")}
    evaluations = asyncio.run(deliver())
    assert evaluations <= 3 * n
    counts = {t: counted(t) - before[t] for t in before}
    assert counts["activity"] == n  # each email's own shard event
    assert counts["crm"] == 0  # the CRM records came first: nothing to re-evaluate yet
    assert sum(counts.values()) == evaluations


def test_a_thread_of_unlinked_messages_records_nothing_until_they_link() -> None:
    """Each message records the earlier ones it inherits from; one that passes nothing on is
    not recorded (a chat thread of n unlinked messages wrote n²/2 records), and when the
    thread's messages gain links, the later ones inherit all the same."""
    n = 12
    mails = [_email(i, 1, PEOPLE[0], [REPS[0]], 0, i, "Re: Rollout plan") for i in range(n)]
    crm = [_account(0, 1, "acme.com", False), _contact(0, 1, PEOPLE[0], 0, False)]

    async def deliver() -> None:
        with tempfile.TemporaryDirectory() as folder:
            async with SqliteShardStore(Path(folder) / "s.db") as store:
                await ensure_shard_types(store)
                linker = Linker(store, TENANTS, Announced())
                for op in mails:
                    for outcome in await store.upsert_many([_draft(op)]):
                        await linker.process([shard_event(outcome)])
                assert not [s for s in await _activities(store) if s.links]
                for i in range(n):
                    assert await store.link_readers(T, f"em-{i}") == {}
                for op in crm:
                    for outcome in await store.upsert_many([_draft(op)]):
                        await linker.process([shard_event(outcome)])
                linked = {s.id: s for s in await _activities(store) if s.links}
                assert len(linked) == n
                # every later message now records every earlier one it inherits from
                for i in range(n):
                    readers = await store.link_readers(T, f"em-{i}")
                    assert set(readers) == {f"em-{j}" for j in range(i + 1, n)}

    asyncio.run(deliver())


def test_later_messages_lose_what_an_earlier_message_stops_passing_on() -> None:
    """A thread whose first message is linked through its sender's contact, and whose
    replies come from an address nothing in the CRM names: the replies inherit the link.
    When the contact is deleted, the first message loses its link and passes nothing on;
    the replies, which looked at nothing but the thread, must lose it too (only the
    thread's follow-ups reach them)."""
    crm = [_account(0, 1, "acme.com", False), _contact(0, 1, PEOPLE[2], 0, False)]
    mails = [
        _email(0, 1, PEOPLE[2], [REPS[0]], 0, 1, "Re: Rollout plan"),
        _email(1, 1, PEOPLE[4], [REPS[0]], 0, 2, "Re: Rollout plan"),
        _email(2, 1, PEOPLE[4], [REPS[0]], 0, 3, "Re: Rollout plan"),
    ]

    async def deliver() -> None:
        with tempfile.TemporaryDirectory() as folder:
            async with SqliteShardStore(Path(folder) / "s.db") as store:
                await ensure_shard_types(store)
                linker = Linker(store, TENANTS, Announced())

                async def write(op: Write) -> None:
                    for outcome in await store.upsert_many([_draft(op)]):
                        await linker.process([shard_event(outcome)])

                for op in [*crm, *mails]:
                    await write(op)
                linked = {
                    s.id: {k.target_shard_id for k in s.links} for s in await _activities(store)
                }
                assert linked == {"em-0": {"acc-0", "con-0"}, "em-1": {"acc-0"}, "em-2": {"acc-0"}}
                assert set(await store.link_readers(T, "em-0")) == {"em-1", "em-2"}
                await write(_contact(0, 2, PEOPLE[2], 0, True))
                assert not [s.id for s in await _activities(store) if s.links]

    asyncio.run(deliver())
