"""One participant shape for every communication type, namespaced threads, and the
upgrade of shards written in the older shapes (on their next write, or by a command)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.tenants import TenantConfig
from normalisers.email import normalise_email
from normalisers.event import normalise_calendar_event
from normalisers.meeting import meeting_draft
from normalisers.message import normalise_message
from processors.startup import ensure_shard_types
from shards.model import Shard, ShardDraft, WriteKind, merge
from shards.sqlite import SqliteShardStore
from shards.types import definition
from shards.upgrades import upgrade_shard, upgrade_store
from streams.models import RawEvent
from tests.fixtures import (
    generic_chat,
    gmail,
    google_calendar,
    graph_calendar,
    graph_mail,
    slack,
    teams,
)
from tests.fixtures import generic_email as ge

TENANT = TenantConfig.model_validate({"internalDomains": ["northwind-sales.com"]})
NOW = datetime(2026, 11, 3, tzinfo=UTC)


def _meeting() -> dict[str, Any]:
    payload = {
        "meetingId": "zoom-88120",
        "title": "Fabrikam pricing review",
        "start": "2026-11-05T15:00:00Z",
        "end": "2026-11-05T15:45:00Z",
        "participants": [
            {"email": "Dan.Ortiz@northwind-sales.com", "name": "Dan Ortiz"},
            {"email": "priya.raman@fabrikam-logistics.com", "name": "Priya Raman"},
            {"email": "dan.ortiz@northwind-sales.com", "name": None},
        ],
        "transcript": "Dan: shall we go through the three-year option?",
    }
    return generic_chat.envelope("meeting", "zoom", "zoom-88120", payload)


def _draft(envelope: dict[str, Any]) -> ShardDraft:
    event = RawEvent.model_validate(envelope)
    if event.data_type == "email":
        return normalise_email(event, TENANT)
    if event.data_type == "message":
        return normalise_message(event, TENANT)
    if event.data_type == "event":
        return normalise_calendar_event(event, TENANT)
    return meeting_draft(event, TENANT, None)


ROLES = {
    "Email": {"from", "sender", "to", "cc", "bcc"},
    "Message": {"sender", "mention"},
    "CalendarEvent": {"organizer", "attendee"},
    "Meeting": {"participant"},
}
SOURCES: list[Callable[[], dict[str, Any]]] = [
    lambda: ge.sample(),
    gmail.reply,
    graph_mail.reply,
    slack.thread_reply,
    teams.channel_message,
    generic_chat.message,
    generic_chat.calendar_event,
    google_calendar.timed,
    graph_calendar.windows_zone,
    _meeting,
]


@pytest.mark.parametrize("make", SOURCES)
def test_every_communication_lists_person_objects_with_a_role(make: Callable[[], Any]) -> None:
    d = _draft(make())
    people = d.structured_data["participants"]
    assert people
    for p in people:
        assert {"email", "name", "role"} <= p.keys(), p
        assert p["role"] in ROLES[d.shard_type], p
        assert p["email"] is None or p["email"] == p["email"].lower()
    keys = [p["email"] or p.get("userId") for p in people]
    assert len(keys) == len(set(keys))  # once each


def test_an_email_participant_keeps_its_first_role_and_its_name() -> None:
    envelope = ge.email(
        "Dan.Ortiz@northwind-sales.com",
        ["priya.raman@fabrikam-logistics.com", "dan.ortiz@northwind-sales.com"],
        cc=["priya.raman@fabrikam-logistics.com", "jo@fabrikam-logistics.com"],
    )
    envelope["payload"]["from"]["name"] = "Dan Ortiz"
    people = _draft(envelope).structured_data["participants"]
    assert [(p["email"], p["role"], p["name"], p["internal"]) for p in people] == [
        ("dan.ortiz@northwind-sales.com", "from", "Dan Ortiz", True),
        ("priya.raman@fabrikam-logistics.com", "to", None, False),
        ("jo@fabrikam-logistics.com", "cc", None, False),
    ]


def test_a_meeting_participant_named_twice_is_one_person() -> None:
    people = _draft(_meeting()).structured_data["participants"]
    assert [p["email"] for p in people] == [
        "dan.ortiz@northwind-sales.com",
        "priya.raman@fabrikam-logistics.com",
    ]


def test_two_mailboxes_of_one_tenant_never_share_a_thread() -> None:
    dan = ge.email("priya.raman@fabrikam-logistics.com", ["dan.ortiz@northwind-sales.com"])
    ana = copy.deepcopy(dan)
    ana["integrationId"] = "int-gmail-ana"
    first, second = _draft(dan).structured_data, _draft(ana).structured_data
    assert first["providerThreadId"] == second["providerThreadId"] == "thr-msg-8001"
    assert first["threadId"] == "int-generic-1:thr-msg-8001"
    assert second["threadId"] == "int-gmail-ana:thr-msg-8001"


def test_chat_threads_are_namespaced_by_integration_and_channel() -> None:
    here = _draft(slack.thread_reply()).structured_data
    there = _draft(slack.thread_reply(channel="C09OTHER01")).structured_data
    assert here["providerThreadId"] == there["providerThreadId"] == slack.THREAD_TS
    assert here["threadId"] == f"int-slack-1:{slack.CHANNEL}:{slack.THREAD_TS}"
    assert there["threadId"] != here["threadId"]


# --- older shards ----------------------------------------------------------------------------


def _legacy(d: ShardDraft) -> ShardDraft:
    """The draft as the previous version wrote it: Email participants as addresses,
    others without a role; `threadId` the provider's."""
    data = copy.deepcopy(d.structured_data)
    if d.shard_type == "Email":
        data["participants"] = [p["email"] for p in data["participants"]]
    else:
        for p in data["participants"]:
            p.pop("role")
    if "providerThreadId" in data:
        data["threadId"] = data.pop("providerThreadId")
    version = definition(d.shard_type).schema_version - 1
    return ShardDraft(
        d.id,
        d.tenant_id,
        d.shard_type,
        version,
        data,
        d.unstructured_data,
        d.source.model_copy(update={"event_id": f"{d.source.event_id}-legacy"}),
    )


def _stored(d: ShardDraft) -> Shard:
    return merge(None, d, NOW).shard


@pytest.mark.parametrize("make", SOURCES)
def test_an_older_shard_is_upgraded_by_the_next_write_of_its_record(
    make: Callable[[], Any],
) -> None:
    current = _draft(make())
    old = _stored(_legacy(current))
    outcome = merge(old, current, NOW)
    assert outcome.kind is WriteKind.UPDATED
    assert outcome.shard.schema_version == definition(current.shard_type).schema_version
    assert outcome.shard.structured_data["participants"] == current.structured_data["participants"]
    assert outcome.shard.structured_data.get("threadId") == current.structured_data.get("threadId")


@pytest.mark.parametrize("make", SOURCES)
def test_the_upgrade_rebuilds_the_current_shapes_from_what_the_shard_has(
    make: Callable[[], Any],
) -> None:
    current = _draft(make())
    upgraded = upgrade_shard(_stored(_legacy(current)))
    assert upgraded is not None
    data = upgraded.structured_data
    assert upgraded.version == 2
    assert data.get("threadId") == current.structured_data.get("threadId")
    assert data.get("providerThreadId") == current.structured_data.get("providerThreadId")
    drop_internal = current.shard_type == "Email"  # bare addresses said nothing of it
    expected = [
        {k: v for k, v in p.items() if not (drop_internal and k == "internal")}
        for p in current.structured_data["participants"]
    ]
    assert data["participants"] == expected
    assert upgrade_shard(upgraded) is None  # idempotent


async def test_the_upgrade_command_rewrites_older_shards_once(tmp_path: Path) -> None:
    async with SqliteShardStore(tmp_path / "shards.db") as store:
        await ensure_shard_types(store)
        drafts = [_draft(make()) for make in SOURCES]
        drafts = [d for d in drafts if d.tenant_id == generic_chat.TENANT]
        await store.upsert_many([_legacy(d) for d in drafts])
        dry = await upgrade_store(store, tenant_id=generic_chat.TENANT, dry_run=True)
        assert (dry.read, dry.upgraded) == (len(drafts), len(drafts))
        done = await upgrade_store(store)
        assert done.upgraded == len(drafts)
        for d in drafts:
            shard = await store.get(d.tenant_id, d.id)
            assert shard is not None
            assert shard.structured_data["participants"][0]["role"]
            assert shard.schema_version == definition(d.shard_type).schema_version
        thread = next(d for d in drafts if d.shard_type == "Email").structured_data["threadId"]
        found = await store.find(generic_chat.TENANT, "Email", "threadId", [thread])
        assert found  # the look-up index follows the namespaced thread id
        again = await upgrade_store(store)
        assert again.upgraded == 0
