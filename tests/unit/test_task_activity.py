"""A CRM task as an activity: linked by the records it names, counted by the ML fields."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.tenants import TenantConfig, TenantDirectory
from linking.activity import activity_of, lookup_keys
from linking.decisions import decide
from linking.memory import build_context
from linking.rules import CRM_REFERENCE, candidates
from linking.service import Linker
from mappings.crm import map_crm_event, shipped_mappings
from processors.startup import ensure_shard_types
from shards.keys import index_keys
from shards.model import Shard
from shards.sqlite import SqliteShardStore
from streams.models import RawEvent, shard_event
from tables.facts import activity_facts
from tables.features import OpportunityState, compute_features
from tests.fixtures import salesforce as sf
from tests.fixtures.linking_corpus import make_shard

T = "t-1"
TENANT = TenantConfig.model_validate({"internalDomains": ["northwind-sales.com"]})
ACME = make_shard(T, "Account", "acme", {"name": "Acme", "domain": "acme.com"})
PRIYA = make_shard(
    T, "Contact", "priya", {"fullName": "Priya", "email": "priya@acme.com", "accountId": "acme"}
)
ROLLOUT = make_shard(
    T, "Opportunity", "rollout", {"name": "Rollout", "accountId": "acme", "status": "open"}
)
RENEWAL = make_shard(
    T, "Opportunity", "renewal", {"name": "Renewal", "accountId": "acme", "status": "open"}
)


def task(shard_id: str = "task-1", **data: Any) -> Shard:
    base = {
        "subject": "Call Priya about the rollout",
        "taskType": "call",
        "status": "open",
        "dueDate": "2026-11-20",
        "opportunityIds": ["rollout"],
        "accountIds": ["acme"],
        "contactIds": ["priya"],
    }
    return make_shard(T, "Task", shard_id, {**base, **data}, "Agenda: timeline")


def link(shard: Shard, *world: Shard) -> dict[str, Any]:
    activity = activity_of(shard, TENANT)
    assert activity is not None
    context = build_context(activity, lookup_keys(activity, TENANT), list(world), [], {})
    found = candidates(activity, context, TENANT)
    decision = decide(activity, found, TENANT, {})
    return {c.target_shard_id: c for c in decision.links}


def test_a_task_links_to_the_records_it_names_with_certainty() -> None:
    linked = link(task(), ACME, PRIYA, ROLLOUT, RENEWAL)
    assert set(linked) == {"rollout", "acme", "priya"}
    c = linked["rollout"]
    assert (c.confidence, c.method, c.target_shard_type) == (
        CRM_REFERENCE,
        "crm_reference",
        "Opportunity",
    )
    (evidence,) = c.evidence
    assert (evidence.field, evidence.value) == ("opportunityIds", "rollout")
    assert evidence.detail == "the task names opportunity Rollout"


def test_a_named_deal_settles_the_deal_even_when_its_people_point_at_others() -> None:
    # The task also lists Priya as a participant: by the mail rules the account's two open
    # deals would tie; the deal the task names is the answer.
    shard = task(participants=[{"email": "priya@acme.com"}])
    linked = link(shard, ACME, PRIYA, ROLLOUT, RENEWAL)
    assert "renewal" not in linked
    assert linked["rollout"].method == "crm_reference"


def test_references_to_missing_or_foreign_records_link_nothing() -> None:
    foreign = make_shard("t-2", "Opportunity", "rollout", {"name": "Rollout", "accountId": "x"})
    assert link(task(accountIds=[], contactIds=[]), foreign) == {}
    assert link(task(opportunityIds=["nowhere"], accountIds=[], contactIds=[])) == {}


def test_a_deleted_task_links_nothing() -> None:
    assert activity_of(task(deleted=True), TENANT) is None


def test_a_task_is_indexed_under_the_records_it_names() -> None:
    keys = index_keys(task())
    assert {("reference", "rollout"), ("reference", "acme"), ("reference", "priya")} <= keys


def test_tasks_count_in_the_ml_fields() -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    done = task("t-done", status="completed", completedAt="2026-11-24T10:00:00Z")
    overdue = task("t-overdue", dueDate="2026-11-20")
    ahead = task("t-ahead", dueDate="2026-12-01")
    old = task("t-old", status="completed", completedAt="2026-09-01T10:00:00Z")
    acts = {}
    for shard in (done, overdue, ahead, old):
        facts = activity_facts(shard, TENANT)
        assert facts is not None and facts["k"] == "task"
        acts[shard.id] = facts
    assert acts["t-done"]["done"] is True and acts["t-done"]["tt"] == "call"
    fields = compute_features(OpportunityState({"status": "open"}, acts), now)
    assert fields["tasksCompleted30d"] == 1
    assert fields["openTasks"] == 2
    assert fields["overdueTasks"] == 1
    assert fields["activityCount"] == 4
    # the done task is the last activity; an open task due ahead is not in the past
    assert fields["lastActivityAt"].startswith("2026-11-24")


class LinkEvents:
    """Where the linker announces its decisions: recorded."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    async def link_events(self, events: Any) -> None:
        self.events.extend(events)


async def test_a_salesforce_task_that_arrives_before_its_deal_links_when_the_deal_arrives(
    tmp_path: Path,
) -> None:
    async with SqliteShardStore(tmp_path / "shards.db") as store:
        await ensure_shard_types(store)
        writer = LinkEvents()
        linker = Linker(store, TenantDirectory(), writer)

        async def write(envelope: dict[str, Any]) -> str:
            draft = map_crm_event(RawEvent.model_validate(envelope), shipped_mappings())
            [outcome] = await store.upsert_many([draft])
            await linker.process([shard_event(outcome)])
            return outcome.shard.id

        task_id = await write(sf.task("t1", completed=True))
        task = await store.get("t1", task_id)
        assert task is not None and task.links == []  # it names records not yet synced
        opportunity_id = await write(sf.opportunity("t1"))
        account_id = await write(sf.account("t1"))
        contact_id = await write(sf.contact("t1"))
        task = await store.get("t1", task_id)
        assert task is not None
        linked = {(k.target_shard_type, k.target_shard_id, k.method) for k in task.links}
        assert linked == {
            ("Opportunity", opportunity_id, "crm_reference"),
            ("Account", account_id, "crm_reference"),
            ("Contact", contact_id, "crm_reference"),
        }
        created = [e for e in writer.events if e.type == "link.created" and e.shard_id == task_id]
        assert {e.target_shard_id for e in created} == {opportunity_id, account_id, contact_id}
