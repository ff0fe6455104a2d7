"""Property: the ML fields kept incrementally equal the rebuild from the store alone.

Random sequences of activities (new, edited, deleted), links and unlinks (automatic
and approved, and automatic links a re-evaluation takes away), opportunity changes
(close date pushed, stage moved), contact title changes, replays of any earlier event
and clock advances run against a real SQLite store. Every write emits the events the
agents emit for it; the incremental side only sees those events (through the router
and `apply_changes`, as the agents do), the rebuild only sees the store. At every clock
advance and at the end, every opportunity's fields must be equal.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.tenants import TenantConfig, TenantDirectory
from linking.service import link_change_events
from processors.startup import ensure_shard_types
from shards.links import write_links
from shards.model import Link, ShardDraft, ShardSource
from shards.sqlite import SqliteShardStore
from streams.models import LinkEvent, ShardEvent, shard_event
from tables.features import OpportunityState, compute_features
from tables.state import ChangeRouter, apply_changes, rebuild_state, table_key

TENANT = "t1"
TENANTS = TenantDirectory(
    {
        TENANT: TenantConfig.model_validate(
            {"internalDomains": ["ours.com"], "timeZone": "Europe/Berlin"}
        )
    }
)
OPPS = ("opp-1", "opp-2")
PEOPLE = ("ana@cust.com", "bo@cust.com", "di@other.io")
REPS = ("rep@ours.com", "sam@ours.com")
KINDS = ("Email", "Message", "CalendarEvent", "Meeting", "Document", "Task")
TITLES = (None, "Engineer", "IT Manager", "Director of Ops", "VP Sales", "CFO")
START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

activity_op = st.tuples(
    st.just("put"),
    st.integers(0, 3),  # which activity
    st.sampled_from(KINDS),
    st.integers(-60 * 24, 20 * 24),  # hours from the clock
    st.booleans(),  # customer wrote it (inbound)
    st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=3, unique=True),
    st.integers(0, 2),  # thread
    st.sampled_from(("accepted", "declined", "tentative", "needsAction")),
)
link_op = st.tuples(
    st.sampled_from(("link", "approve", "unlink")), st.integers(0, 3), st.sampled_from(OPPS)
)
delete_op = st.tuples(st.just("delete"), st.integers(0, 3))
opp_op = st.tuples(
    st.just("opp"), st.sampled_from(OPPS), st.integers(-20, 40), st.sampled_from(("a", "b", "c"))
)
title_op = st.tuples(st.just("title"), st.integers(0, len(PEOPLE) - 1), st.sampled_from(TITLES))
replay_op = st.tuples(st.just("replay"), st.integers(0, 10_000))
advance_op = st.tuples(st.just("advance"), st.integers(1, 24 * 20))
operations = st.lists(
    st.one_of(activity_op, link_op, link_op, delete_op, opp_op, title_op, replay_op, advance_op),
    min_size=10,
    max_size=60,
)


@dataclass
class World:
    store: SqliteShardStore
    now: datetime = START
    table: dict[str, dict[str, Any]] = field(default_factory=dict)
    emitted: list[ShardEvent | LinkEvent] = field(default_factory=list)
    tick: int = 0

    async def deliver(self, events: list[ShardEvent | LinkEvent]) -> None:
        """What the agents do with events: route to snapshots, apply them to the table."""
        self.emitted.extend(events)
        changes = await ChangeRouter(self.store, TENANTS).route(events)
        for change in changes:
            self.table[change.key] = apply_changes(self.table.get(change.key), [change])

    async def upsert(self, draft: ShardDraft) -> None:
        [outcome] = await self.store.upsert_many([draft])
        if outcome.changed:
            await self.deliver([shard_event(outcome)])

    def source(self, entity: str, external_id: str) -> ShardSource:
        self.tick += 1
        return ShardSource(
            provider="test",
            integration_id="i1",
            entity_type=entity,
            external_id=external_id,
            event_id=f"e{self.tick}",
            occurred_at=START + timedelta(seconds=self.tick),
        )

    async def check(self) -> None:
        zone = TENANTS.of(TENANT).zone
        for opp in OPPS:
            rebuilt = await rebuild_state(self.store, TENANTS, TENANT, opp)
            assert rebuilt is not None
            incremental = OpportunityState.from_value(self.table.get(table_key(TENANT, opp)))
            assert incremental.activities == rebuilt.activities, opp
            assert compute_features(incremental, self.now, zone) == compute_features(
                rebuilt, self.now, zone
            ), opp


def _activity(world: World, op: tuple[Any, ...]) -> ShardDraft:
    _, index, kind, hours, inbound, people, thread, answer = op
    at = (world.now + timedelta(hours=hours)).isoformat()
    rep = REPS[index % 2]
    data: dict[str, Any]
    if kind == "Email":
        sender, recipients = (people[0], [rep]) if inbound else (rep, people)
        data = {
            "messageId": f"m{index}",
            "threadId": f"th{thread}",
            "from": {"email": sender},
            "to": [{"email": r} for r in recipients],
            "sentAt": at,
            "direction": "inbound" if inbound else "outbound",
        }
    elif kind == "Message":
        sender = people[0] if inbound else rep
        data = {
            "messageId": f"c{index}",
            "threadId": f"th{thread}",
            "sender": {"email": sender},
            "mentions": [{"email": p} for p in people[1:]],
            "sentAt": at,
        }
    elif kind == "CalendarEvent":
        data = {
            "eventId": f"ev{index}",
            "start": at,
            "end": (world.now + timedelta(hours=hours, minutes=30 + 15 * thread)).isoformat(),
            "status": "confirmed",
            "organizer": {"email": rep},
            "attendees": [
                {"email": p, "responseStatus": answer if i == 0 else "accepted"}
                for i, p in enumerate(people)
            ],
        }
    elif kind == "Meeting":
        data = {
            "meetingId": f"mt{index}",
            "start": at,
            "durationMinutes": 20 + 10 * thread,
            "participants": [{"email": p} for p in [rep, *people]],
        }
    elif kind == "Task":
        # done when the customer "wrote" (inbound): completed at `at`; else open, due at `at`
        data = {
            "subject": f"call {index}",
            "taskType": "call" if thread else "todo",
            "status": "completed" if inbound else "open",
            "completedAt": at if inbound else None,
            "dueDate": at[:10],
            "participants": [{"email": p} for p in people],
        }
    else:
        data = {
            "documentId": f"d{index}",
            "fileName": f"d{index}.pdf",
            "modifiedAt": at,
            "owner": {"email": people[0] if inbound else rep},
        }
    return ShardDraft(
        id=f"act-{index}",
        tenant_id=TENANT,
        shard_type=kind,
        schema_version=1,
        structured_data=data,
        unstructured_data={},
        source=world.source(kind, f"x{index}"),
    )


async def _link(world: World, op: tuple[Any, ...]) -> None:
    action, index, opp = op
    # aim at what exists: the index-th stored activity, its index-th link for an unlink
    existing = [i for i in range(4) if await world.store.get(TENANT, f"act-{i}")]
    if not existing:
        return
    shard = await world.store.get(TENANT, f"act-{existing[index % len(existing)]}")
    assert shard is not None
    if action == "unlink" and shard.links:
        opp = shard.links[index % len(shard.links)].target_shard_id
    automatic = [k for k in shard.links if k.status == "auto" and k.target_shard_id != opp]
    approved: list[Link] = []
    link = Link(
        target_shard_id=opp, target_shard_type="Opportunity", confidence=0.9,
        method="test", status="auto" if action == "link" else "approved",
    )  # fmt: skip
    if action == "link":
        automatic.append(link)
    elif action == "approve":
        approved.append(link)
    _, new, removed = await write_links(world.store, TENANT, shard.id, automatic, approved=approved)
    events = link_change_events(TENANT, shard.id, new, removed, world.now)
    events += [
        LinkEvent(
            type="link.approved",
            event_id=f"{shard.id}:{k.target_shard_id}:approved",
            tenant_id=TENANT,
            shard_id=shard.id,
            target_shard_id=k.target_shard_id,
            target_shard_type="Opportunity",
            confidence=0.9,
            method="test",
            status="approved",
            occurred_at=world.now,
        )
        for k in new
        if k.status == "approved"
    ]
    await world.deliver(list(events))


async def _run(ops: list[tuple[Any, ...]], path: Path) -> None:
    async with SqliteShardStore(path) as store:
        await ensure_shard_types(store)
        world = World(store)
        for i, opp in enumerate(OPPS):
            await world.upsert(_opportunity(world, opp, 10 * i, "a"))
        for i in range(len(PEOPLE)):
            await world.upsert(_contact(world, i, TITLES[(i + 1) % len(TITLES)]))
        for op in ops:
            kind = op[0]
            if kind == "put":
                await world.upsert(_activity(world, op))
            elif kind in ("link", "approve", "unlink"):
                await _link(world, op)
            elif kind == "delete":
                shard = await store.get(TENANT, f"act-{op[1]}")
                if shard is not None:
                    await world.upsert(
                        ShardDraft(
                            id=shard.id,
                            tenant_id=TENANT,
                            shard_type=shard.shard_type,
                            schema_version=1,
                            structured_data={**shard.structured_data, "deleted": True},
                            unstructured_data={},
                            source=world.source(shard.shard_type, shard.source.external_id),
                        )
                    )
            elif kind == "opp":
                await world.upsert(_opportunity(world, op[1], op[2], op[3]))
            elif kind == "title":
                await world.upsert(_contact(world, op[1], op[2]))
            elif kind == "replay" and world.emitted:
                await world.deliver([world.emitted[op[1] % len(world.emitted)]])
            elif kind == "advance":
                world.now += timedelta(hours=op[1])
                await world.check()
        await world.check()


def _opportunity(world: World, opp: str, close_in_days: int, stage: str) -> ShardDraft:
    return ShardDraft(
        id=opp,
        tenant_id=TENANT,
        shard_type="Opportunity",
        schema_version=3,
        structured_data={
            "name": opp,
            "status": "open",
            "stage": stage,
            "closeDate": (world.now + timedelta(days=close_in_days)).date().isoformat(),
        },
        unstructured_data={},
        source=world.source("Opportunity", opp),
    )


def _contact(world: World, index: int, title: str | None) -> ShardDraft:
    return ShardDraft(
        id=f"contact-{index}",
        tenant_id=TENANT,
        shard_type="Contact",
        schema_version=2,
        structured_data={"email": PEOPLE[index], "title": title},
        unstructured_data={},
        source=world.source("Contact", f"c{index}"),
    )


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(operations)
# Sequences random search finds rarely, kept as explicit cases: a contact's title
# changing after their mail was counted; a link taken away again; a stage move and a
# pushed close date; a replay of an old link event after the unlink.
@example(
    [
        ("put", 0, "Email", -5, True, ["ana@cust.com"], 0, "accepted"),
        ("link", 0, "opp-1"),
        ("title", 0, "CFO"),
        ("advance", 1),
    ]
)
@example(
    [
        ("put", 1, "CalendarEvent", 30, False, ["bo@cust.com", "ana@cust.com"], 1, "declined"),
        ("link", 0, "opp-2"),
        ("approve", 0, "opp-1"),
        ("unlink", 0, "opp-2"),
        ("replay", 3),
        ("opp", "opp-1", 30, "b"),
        ("advance", 24 * 31),
    ]
)
def test_incremental_fields_equal_the_rebuild(ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_run(ops, Path(folder) / "shards.db"))


def test_the_property_can_fail_when_an_event_is_lost() -> None:
    """The same check catches a lost event: drop the unlink's event, the two disagree."""
    ops: list[tuple[Any, ...]] = [
        ("put", 0, "Email", -5, True, ["ana@cust.com"], 0, "accepted"),
        ("link", 0, "opp-1"),
    ]

    async def run(path: Path) -> None:
        async with SqliteShardStore(path) as store:
            await ensure_shard_types(store)
            world = World(store)
            await world.upsert(_opportunity(world, "opp-1", 10, "a"))
            await world.upsert(_activity(world, ops[0]))
            await _link(world, ops[1])
            # the unlink, written to the store with its event lost
            await write_links(store, TENANT, "act-0", [])
            rebuilt = await rebuild_state(store, TENANTS, TENANT, "opp-1")
            assert rebuilt is not None
            incremental = OpportunityState.from_value(world.table[table_key(TENANT, "opp-1")])
            assert len(incremental.activities) == 1
            assert len(rebuilt.activities) == 0

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run(Path(folder) / "shards.db"))
