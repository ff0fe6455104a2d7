"""Chat edits and deletes find their message in the payload, whatever `externalId` says.

Two conventions of integration-sync are tested for each provider: the envelope's
`externalId` names the message the event changes (`<channel>:<message ts>`, the Teams
message id), or the event itself (`<channel>:<event ts>`, a bare ts, the message id
and its etag, a notification's id). Both must end on the message's one shard.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from core.exceptions import MappingError
from core.tenants import TenantConfig
from normalisers.message import normalise_message
from shards.ids import shard_id
from shards.model import Shard, ShardDraft, WriteKind, merge
from streams.models import RawEvent
from tests.fixtures import generic_chat, slack, teams

NORTHWIND = TenantConfig.model_validate({"internalDomains": ["northwind-sales.com"]})
SLACK_ID = shard_id(generic_chat.TENANT, "slack", "message", f"{slack.CHANNEL}:{slack.TS}")
TEAMS_ID = shard_id(generic_chat.TENANT, "teams", "message", teams.MESSAGE_ID)
NOW = datetime(2026, 11, 3, tzinfo=UTC)


def draft(envelope: dict[str, Any]) -> ShardDraft:
    return normalise_message(RawEvent.model_validate(envelope), NORTHWIND)


def replay(*envelopes: dict[str, Any]) -> Shard:
    """The shard after merging the envelopes' drafts in this order (one shard id)."""
    shard: Shard | None = None
    for envelope in envelopes:
        d = draft(envelope)
        assert shard is None or d.id == shard.id
        shard = merge(shard, d, NOW).shard
    assert shard is not None
    return shard


def with_external_id(envelope: dict[str, Any], external_id: str) -> dict[str, Any]:
    changed = copy.deepcopy(envelope)
    changed["externalId"] = external_id
    changed["eventId"] = f"{changed['eventId']}|{external_id}"
    return changed


def without_time(envelope: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(envelope)
    changed.pop("occurredAt")
    return changed


# --- Slack -----------------------------------------------------------------------------------

SLACK_EDIT_IDS = [f"{slack.CHANNEL}:{slack.TS}", f"{slack.CHANNEL}:{slack.EDIT_TS}", slack.EDIT_TS]
SLACK_DELETE_IDS = [
    f"{slack.CHANNEL}:{slack.TS}",
    f"{slack.CHANNEL}:{slack.DELETE_TS}",
    slack.DELETE_TS,
]


@pytest.mark.parametrize("external_id", SLACK_EDIT_IDS)
def test_a_slack_edit_is_about_the_message_the_payload_names(external_id: str) -> None:
    d = draft(with_external_id(slack.edit(), external_id))
    assert d.id == SLACK_ID
    assert d.source.external_id == f"{slack.CHANNEL}:{slack.TS}"
    assert d.structured_data["messageId"] == slack.TS
    assert "revised" in d.unstructured_data["text"]


@pytest.mark.parametrize("external_id", SLACK_DELETE_IDS)
def test_a_slack_delete_empties_the_message_the_payload_names(external_id: str) -> None:
    shard = replay(slack.thread_reply(), with_external_id(slack.delete(), external_id))
    assert shard.id == SLACK_ID
    assert shard.version == 2
    data = shard.structured_data
    assert data["deleted"] is True
    assert data["deletedAt"] == "2026-11-02T12:10:00Z"
    assert data["mentions"] == []
    assert data["attachments"] == []
    assert [p["userId"] for p in data["participants"]] == [slack.DAN]  # the author stays
    assert data["sender"]["email"] == "dan.ortiz@northwind-sales.com"
    assert data["sentAt"] == "2026-11-02T11:55:00.002Z"
    assert shard.unstructured_data == {"text": ""}


def test_slack_original_edit_delete_in_any_order_end_deleted_and_empty() -> None:
    events = [slack.thread_reply(), slack.edit(), with_external_id(slack.delete(), slack.DELETE_TS)]
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]):
        shard = replay(*(events[i] for i in order))
        assert shard.structured_data["deleted"] is True, order
        assert shard.unstructured_data == {"text": ""}, order
        assert shard.structured_data["mentions"] == [], order


def test_a_slack_edit_before_its_original_stays_the_edit() -> None:
    edit = with_external_id(slack.edit(), slack.EDIT_TS)
    shard = replay(edit, slack.thread_reply())
    assert "revised" in shard.unstructured_data["text"]
    assert shard.structured_data["editedAt"] == "2026-11-02T12:01:30Z"
    assert shard.version == 1


def test_without_occurred_at_the_payloads_own_times_order_slack_versions() -> None:
    original, edit = without_time(slack.thread_reply()), without_time(slack.edit())
    assert draft(edit).source.occurred_at == datetime(2026, 11, 2, 12, 1, 30, tzinfo=UTC)
    assert "revised" in replay(edit, original).unstructured_data["text"]
    deleted = replay(without_time(slack.delete()), edit, original)
    assert deleted.structured_data["deleted"] is True
    assert deleted.unstructured_data == {"text": ""}


# --- Microsoft Teams -------------------------------------------------------------------------

TEAMS_IDS = [teams.MESSAGE_ID, f"{teams.MESSAGE_ID}:1793620890456", "notification-7f3a"]


@pytest.mark.parametrize("external_id", TEAMS_IDS)
def test_a_teams_edit_and_delete_are_about_the_message_they_carry(external_id: str) -> None:
    edited = draft(with_external_id(teams.edited(), external_id))
    assert edited.id == TEAMS_ID
    assert edited.source.external_id == teams.MESSAGE_ID
    shard = replay(teams.channel_message(), with_external_id(teams.deleted(), external_id))
    assert shard.id == TEAMS_ID
    assert shard.structured_data["deleted"] is True
    assert shard.structured_data["deletedAt"] == "2026-11-02T12:10:00Z"
    assert shard.structured_data["mentions"] == []
    assert shard.structured_data["attachments"] == []
    assert shard.unstructured_data == {"text": ""}


def _notification(change: str, resource: str, **extra: Any) -> dict[str, Any]:
    """A Graph change notification as Graph posts it, one of its `value` collection."""
    item = {
        "subscriptionId": "9f0e8c2a-1b7d-4e5f-8a6b-3c2d1e0f9a8b",
        "changeType": change,
        "clientState": "secretClientState",
        "subscriptionExpirationDateTime": "2026-11-02T13:00:00.0000000+00:00",
        "resource": resource,
        "resourceData": {
            "id": teams.MESSAGE_ID,
            "@odata.type": "#Microsoft.Graph.chatMessage",
            "@odata.id": resource,
        },
        "tenantId": "2432b57b-0abd-43db-aa7b-16eadd115d34",
        **extra,
    }
    return generic_chat.envelope(
        "message",
        "teams",
        f"{item['subscriptionId']}:{change}",
        {"value": [item]},
        occurred_at="2026-11-02T12:10:00Z",
    )


CHANNEL_REPLY = (
    f"teams('{teams.TEAM_ID}')/channels('{teams.CHANNEL_ID}')"
    f"/messages('{teams.ROOT_ID}')/replies('{teams.MESSAGE_ID}')"
)


def test_a_graph_deleted_notification_empties_the_channel_reply_it_names() -> None:
    notification = _notification("deleted", CHANNEL_REPLY)
    d = draft(notification)
    assert d.id == TEAMS_ID
    assert d.structured_data["providerThreadId"] == teams.ROOT_ID
    assert d.structured_data["channelId"] == teams.CHANNEL_ID
    shard = replay(teams.channel_message(), notification)
    assert shard.structured_data["deleted"] is True
    assert shard.structured_data["sender"]["userId"] == teams.DAN
    assert shard.structured_data["sentAt"] == "2026-11-02T11:55:00.123Z"
    assert shard.structured_data["mentions"] == []
    assert shard.unstructured_data == {"text": ""}


def test_a_graph_deleted_notification_before_its_message_leaves_a_tombstone() -> None:
    resource = f"chats('{teams.CHAT_ID}')/messages('{teams.MESSAGE_ID}')"
    notification = _notification("deleted", resource)
    notification["payload"]["value"][0]["resourceData"].pop("id")  # the path still names it
    shard = replay(notification, teams.channel_message())
    assert shard.id == TEAMS_ID
    assert shard.structured_data["deleted"] is True
    assert shard.structured_data["chatId"] == teams.CHAT_ID
    assert shard.unstructured_data == {"text": ""}


def test_a_graph_updated_notification_with_its_content_edits_the_message() -> None:
    content = teams.edited()["payload"]
    notification = _notification("updated", CHANNEL_REPLY)
    notification["payload"]["value"][0]["resourceData"].update(
        {k: v for k, v in content.items() if k not in ("channelName", "userDirectory")}
    )
    notification["payload"]["userDirectory"] = content["userDirectory"]
    shard = replay(teams.channel_message(), notification)
    assert shard.version == 2
    assert shard.unstructured_data["text"] == "The revised option is attached."
    assert shard.structured_data["sender"]["email"] == "dan.ortiz@northwind-sales.com"


def test_a_graph_notification_without_content_or_message_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match="without the message's content"):
        draft(_notification("updated", CHANNEL_REPLY))
    nameless = _notification("deleted", f"teams('{teams.TEAM_ID}')/channels('x')")
    nameless["payload"]["value"][0]["resourceData"].pop("id")
    with pytest.raises(MappingError, match="names no message"):
        draft(nameless)


# --- generic and the merge -------------------------------------------------------------------


def test_a_generic_delete_empties_the_message() -> None:
    deleted = {**generic_chat.message(deleted=True), "eventId": "evt-generic-delete"}
    deleted["occurredAt"] = "2026-11-02T12:20:00Z"
    shard = replay(generic_chat.message(), deleted)
    assert shard.version == 2
    assert shard.structured_data["deleted"] is True
    assert shard.structured_data["mentions"] == []
    assert shard.structured_data["sender"]["email"] == "dan.ortiz@northwind-sales.com"
    assert shard.unstructured_data == {"text": ""}


def test_a_delete_clears_only_what_its_draft_names() -> None:
    original = draft(slack.thread_reply())
    deleted = draft(slack.delete())
    assert deleted.cleared == frozenset({"mentions", "participants", "attachments"})
    assert original.cleared == frozenset()
    outcome = merge(merge(None, original, NOW).shard, deleted, NOW)
    assert outcome.kind is WriteKind.UPDATED
    assert outcome.shard.structured_data["channelName"] == "ext-fabrikam"
