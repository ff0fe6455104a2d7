import time
from typing import Any

import pytest

from core.exceptions import MappingError
from core.html import MAX_HTML_BYTES
from core.tenants import TenantConfig
from normalisers.message import normalise_message
from shards.ids import shard_id
from shards.model import ShardDraft
from streams.models import RawEvent
from tests.fixtures import generic_chat, slack, teams

NORTHWIND = TenantConfig.model_validate(
    {"internalDomains": ["northwind-sales.com"], "timeZone": "America/Chicago"}
)
NO_DOMAINS = TenantConfig()


def draft(envelope: dict[str, Any], tenant: TenantConfig = NORTHWIND) -> ShardDraft:
    return normalise_message(RawEvent.model_validate(envelope), tenant)


# --- generic ---------------------------------------------------------------------------------


def test_generic_message_is_mapped_field_by_field() -> None:
    d = draft(generic_chat.message())
    assert d.shard_type == "Message"
    assert d.id == shard_id(generic_chat.TENANT, "generic", "message", "C04PLQ:1730538900.0021")
    assert d.source.entity_type == "message"
    data = d.structured_data
    assert data["messageId"] == "1730538900.0021"
    assert data["threadId"] is None
    assert data["channelId"] == "C04PLQ"
    assert data["channelName"] == "ext-fabrikam"
    assert data["sender"] == {
        "email": "dan.ortiz@northwind-sales.com",
        "name": "Dan Ortiz",
        "userId": "U01DAN",
        "internal": True,
    }
    assert data["mentions"] == [
        {"email": "priya.raman@fabrikam-logistics.com", "name": "Priya Raman", "internal": False}
    ]
    assert [p["email"] for p in data["participants"]] == [
        "dan.ortiz@northwind-sales.com",
        "priya.raman@fabrikam-logistics.com",
    ]
    assert data["sentAt"] == "2026-11-02T11:55:00Z"
    assert data["editedAt"] is None
    assert data["deleted"] is False
    assert data["direction"] == "outbound"
    assert d.unstructured_data == {
        "text": "@Priya Raman sharing the three-year pricing sheet here as promised."
    }


def test_generic_mentions_may_be_bare_addresses_and_times_any_offset() -> None:
    d = draft(
        generic_chat.message(
            mentions=["Lee.Chen@Fabrikam-Logistics.com"], sentAt="2026-11-02T12:55:00+01:00"
        )
    )
    assert d.structured_data["mentions"][0]["email"] == "lee.chen@fabrikam-logistics.com"
    assert d.structured_data["sentAt"] == "2026-11-02T11:55:00Z"


def test_direction_follows_the_sender_and_the_people_named() -> None:
    inbound = generic_chat.message(
        sender={"email": "priya.raman@fabrikam-logistics.com", "name": "Priya Raman"},
        mentions=[{"email": "dan.ortiz@northwind-sales.com", "name": "Dan Ortiz"}],
    )
    internal = generic_chat.message(mentions=[{"email": "ana.ruiz@northwind-sales.com"}])
    assert draft(inbound).structured_data["direction"] == "inbound"
    assert draft(internal).structured_data["direction"] == "internal"


def test_a_tenant_without_internal_domains_marks_no_one() -> None:
    data = draft(generic_chat.message(), NO_DOMAINS).structured_data
    assert data["direction"] is None
    assert "internal" not in data["sender"]
    assert all("internal" not in p for p in data["participants"])


# --- Slack -----------------------------------------------------------------------------------


def test_slack_thread_reply_resolves_mentions_and_cleans_mark_up() -> None:
    d = draft(slack.thread_reply())
    assert d.id == shard_id(generic_chat.TENANT, "slack", "message", slack.EXTERNAL_ID)
    data = d.structured_data
    assert data["messageId"] == slack.TS
    assert data["providerThreadId"] == slack.THREAD_TS
    assert data["channelId"] == slack.CHANNEL
    assert data["channelName"] == "ext-fabrikam"
    assert data["channelType"] == "channel"
    assert data["sentAt"] == "2026-11-02T11:55:00.002Z"
    assert data["sender"] == {
        "email": "dan.ortiz@northwind-sales.com",
        "name": "Dan Ortiz",
        "userId": slack.DAN,
        "internal": True,
    }
    assert data["mentions"] == [
        {
            "email": "priya.raman@fabrikam-logistics.com",
            "name": "Priya Raman",
            "userId": slack.PRIYA,
            "internal": False,
        },
        {"email": None, "name": None, "userId": slack.LEE},  # not in the directory
    ]
    assert [p.get("userId") for p in data["participants"]] == [slack.DAN, slack.PRIYA, slack.LEE]
    assert data["editedAt"] is None
    assert data["deleted"] is False
    assert data["direction"] == "outbound"
    assert data["attachments"] == [
        {
            "id": "F07PRICING1",
            "name": "fabrikam-3yr-pricing.xlsx",
            "contentType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "size": 48213,
        }
    ]
    assert d.unstructured_data["text"] == (
        "@Priya Raman sharing the three-year pricing sheet here as promised: "
        "pricing page (https://northwind-sales.com/pricing/fabrikam). "
        "Numbers & terms are in #deals too. @U03LEECHEN FYI @here"
    )


def test_slack_message_without_a_thread_is_its_own_thread() -> None:
    envelope = slack.thread_reply()
    del envelope["payload"]["thread_ts"]
    assert draft(envelope).structured_data["providerThreadId"] == slack.TS


def test_slack_without_a_directory_keeps_ids_and_the_profile_name() -> None:
    envelope = slack.thread_reply(user_profile={"real_name": "Dan Ortiz", "display_name": "dan"})
    del envelope["payload"]["userDirectory"]
    data = draft(envelope).structured_data
    assert data["sender"] == {"email": None, "name": "Dan Ortiz", "userId": slack.DAN}
    assert [m["userId"] for m in data["mentions"]] == [slack.PRIYA, slack.LEE]
    assert data["direction"] is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<https://example.com>", "https://example.com"),
        (
            "<mailto:priya@fabrikam-logistics.com|priya@fabrikam-logistics.com>",
            "priya@fabrikam-logistics.com",
        ),
        ("<#C05DEALS01>", "#C05DEALS01"),
        ("<!channel> and <!everyone>", "@channel and @everyone"),
        ("<!subteam^S012AB|@sales-team> please", "@sales-team please"),
        ("<!date^1793620500^{date_short}|Nov 2> call", "Nov 2 call"),
        ("<@U02PRIYARM|priya>", "@Priya Raman"),
        ("a &lt;b&gt; &amp;amp;", "a <b> &amp;"),
    ],
)
def test_slack_mark_up_becomes_plain_text(text: str, expected: str) -> None:
    assert draft(slack.thread_reply(text=text)).unstructured_data["text"] == expected


def test_slack_legacy_mention_label_names_a_user_missing_from_the_directory() -> None:
    d = draft(slack.thread_reply(text="<@U09NEWHIRE|sam> welcome"))
    assert d.unstructured_data["text"] == "@sam welcome"
    assert d.structured_data["mentions"] == [{"email": None, "name": "sam", "userId": "U09NEWHIRE"}]


def test_slack_edit_updates_the_same_shard() -> None:
    original = draft(slack.thread_reply())
    edited = draft(slack.edit())
    assert edited.id == original.id
    assert edited.source.event_id != original.source.event_id
    data = edited.structured_data
    assert data["messageId"] == slack.TS
    assert data["providerThreadId"] == slack.THREAD_TS
    assert data["sentAt"] == original.structured_data["sentAt"]
    assert data["editedAt"] == "2026-11-02T12:01:30Z"
    assert data["deleted"] is False
    assert data["sender"]["email"] == "dan.ortiz@northwind-sales.com"
    assert [m["userId"] for m in data["mentions"]] == [slack.PRIYA]
    assert edited.unstructured_data["text"] == (
        "@Priya Raman sharing the *revised* three-year pricing sheet."
    )


def test_slack_change_without_an_edit_mark_has_no_edit_time() -> None:
    envelope = slack.edit()
    del envelope["payload"]["message"]["edited"]  # e.g. an unfurl was added
    assert draft(envelope).structured_data["editedAt"] is None


def test_slack_delete_keeps_the_shard_and_marks_it_deleted() -> None:
    original = draft(slack.thread_reply())
    deleted = draft(slack.delete())
    assert deleted.id == original.id
    data = deleted.structured_data
    assert data["deleted"] is True
    assert data["messageId"] == slack.TS
    assert data["sentAt"] == original.structured_data["sentAt"]
    assert data["sender"] == original.structured_data["sender"]
    assert data["providerThreadId"] == slack.THREAD_TS


def test_slack_delete_without_the_previous_message_still_maps() -> None:
    deleted = draft(slack.delete(with_previous=False))
    assert deleted.id == draft(slack.thread_reply()).id
    data = deleted.structured_data
    assert data["deleted"] is True
    assert data["sender"] is None
    assert data["sentAt"] == "2026-11-02T11:55:00.002Z"
    assert data["participants"] == []
    assert deleted.unstructured_data == {"text": ""}


def test_slack_event_callback_wrapper_is_unwrapped() -> None:
    assert (
        draft(slack.event_callback()).structured_data == draft(slack.thread_reply()).structured_data
    )


def test_slack_bot_message_names_the_bot() -> None:
    envelope = slack.thread_reply(subtype="bot_message", bot_id="B07DEALBOT", username="Deal Desk")
    del envelope["payload"]["user"]
    sender = draft(envelope).structured_data["sender"]
    assert sender == {"email": None, "name": "Deal Desk", "userId": "B07DEALBOT"}


def test_slack_huge_text_is_cut_and_flagged() -> None:
    d = draft(slack.thread_reply(text="deal " * 2_100_000))
    assert d.unstructured_data["truncated"] is True
    assert len(d.unstructured_data["text"]) == MAX_HTML_BYTES


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"ts": "yesterday"}, "ts: not a Slack timestamp"),
        ({"ts": "99999999999999.1"}, "ts: not a Slack timestamp"),
        ({"ts": None}, "payload has no ts"),
        ({"channel": None}, "payload has no channel"),
        ({"channel": ["C1"]}, "channel: expected an id"),
        ({"text": 42}, "text: expected a string"),
        ({"text": {"rich": True}}, "text: expected a string"),
        ({"userDirectory": ["U1"]}, "userDirectory: expected an object"),
        ({"userDirectory": {slack.DAN: {"email": "not-an-address"}}}, "not an email address"),
        ({"edited": {"user": slack.DAN, "ts": "soon"}}, "edited.ts: not a Slack timestamp"),
        ({"files": "x.pdf"}, "files: expected a list"),
    ],
)
def test_malformed_slack_messages_are_mapping_errors(changes: dict[str, Any], reason: str) -> None:
    envelope = slack.thread_reply(**changes)
    envelope["payload"] = {k: v for k, v in envelope["payload"].items() if v is not None}
    with pytest.raises(MappingError, match=reason):
        draft(envelope)


def test_slack_change_without_its_message_is_a_mapping_error() -> None:
    envelope = slack.edit()
    del envelope["payload"]["message"]
    with pytest.raises(MappingError, match="message: expected an object"):
        draft(envelope)


def test_slack_delete_without_deleted_ts_is_a_mapping_error() -> None:
    envelope = slack.delete()
    del envelope["payload"]["deleted_ts"]
    with pytest.raises(MappingError, match="deleted_ts"):
        draft(envelope)


# --- Microsoft Teams -------------------------------------------------------------------------


def test_teams_channel_message_is_mapped_field_by_field() -> None:
    d = draft(teams.channel_message())
    assert d.id == shard_id(generic_chat.TENANT, "teams", "message", teams.MESSAGE_ID)
    data = d.structured_data
    assert data["messageId"] == teams.MESSAGE_ID
    assert data["providerThreadId"] == teams.ROOT_ID
    assert data["channelId"] == teams.CHANNEL_ID
    assert data["channelName"] == "Fabrikam deal"
    assert data["teamId"] == teams.TEAM_ID
    assert data["chatId"] is None
    assert data["messageType"] == "message"
    assert data["sentAt"] == "2026-11-02T11:55:00.123Z"
    assert data["editedAt"] is None
    assert data["deleted"] is False
    assert data["sender"] == {
        "email": "dan.ortiz@northwind-sales.com",
        "name": "Dan Ortiz",
        "userId": teams.DAN,
        "internal": True,
    }
    assert data["mentions"] == [
        {
            "email": "priya.raman@fabrikam-logistics.com",
            "name": "Priya Raman",
            "userId": teams.PRIYA,
            "internal": False,
        }
    ]
    assert data["direction"] == "outbound"
    assert data["attachments"][0]["name"] == "pricing.xlsx"
    assert data["attachments"][0]["contentType"] == "reference"


def test_teams_html_body_becomes_text_without_scripts_or_images() -> None:
    d = draft(teams.channel_message())
    text = d.unstructured_data["text"]
    assert text.startswith("@Priya Raman the three-year option is attached.\nTotals:")
    assert "\nYear 1 $185,000\n" in text
    assert text.endswith("Let me know before Friday.")
    assert "alert" not in text
    assert "tracker" not in text
    assert "truncated" not in d.unstructured_data


def test_teams_without_a_directory_keeps_ids_and_display_names() -> None:
    envelope = teams.channel_message()
    del envelope["payload"]["userDirectory"]
    data = draft(envelope).structured_data
    assert data["sender"] == {"email": None, "name": "Dan Ortiz", "userId": teams.DAN}
    assert data["mentions"] == [{"email": None, "name": "Priya Raman", "userId": teams.PRIYA}]


def test_teams_edit_and_delete_update_the_same_shard() -> None:
    original = draft(teams.channel_message())
    edited = draft(teams.edited())
    deleted = draft(teams.deleted())
    assert original.id == edited.id == deleted.id
    assert edited.structured_data["editedAt"] == "2026-11-02T12:01:30.456Z"
    assert edited.structured_data["sentAt"] == original.structured_data["sentAt"]
    assert edited.unstructured_data["text"] == "The revised option is attached."
    assert deleted.structured_data["deleted"] is True
    assert deleted.structured_data["deletedAt"] == "2026-11-02T12:10:00Z"
    assert deleted.structured_data["sender"] == original.structured_data["sender"]


def test_teams_chat_message_is_one_conversation() -> None:
    data = draft(teams.chat_message()).structured_data
    assert data["channelId"] == teams.CHAT_ID
    assert data["chatId"] == teams.CHAT_ID
    assert data["providerThreadId"] == teams.CHAT_ID
    assert data["teamId"] is None
    assert data["sender"] == {"email": None, "name": "Priya Raman", "userId": teams.PRIYA}
    assert data["direction"] is None  # no address, no direction
    assert draft(teams.chat_message()).unstructured_data["text"] == (
        "Can we move the review to Thursday?"
    )


def test_teams_system_message_has_no_sender() -> None:
    envelope = teams.channel_message(
        messageType="systemEventMessage",
        body={"contentType": "html", "content": "<systemEventMessage/>"},
        mentions=[],
    )
    envelope["payload"]["from"] = None
    data = draft(envelope).structured_data
    assert data["sender"] is None
    assert data["messageType"] == "systemEventMessage"


def test_teams_bot_sender_is_the_application() -> None:
    envelope = teams.channel_message()
    envelope["payload"]["from"] = {
        "user": None,
        "application": {
            "id": "28b3b1c4-bot",
            "displayName": "Deal Desk",
            "applicationIdentityType": "bot",
        },
    }
    assert draft(envelope).structured_data["sender"] == {
        "email": None,
        "name": "Deal Desk",
        "userId": "28b3b1c4-bot",
    }


def test_teams_html_bomb_is_cut_quickly_and_flagged() -> None:
    bomb = "<div>" + "<p>spam <b>spam</b></p>" * 450_000 + "</div>"  # ~10 MB
    assert len(bomb) > 10_000_000
    started = time.perf_counter()
    d = draft(teams.channel_message(body={"contentType": "html", "content": bomb}))
    assert time.perf_counter() - started < 10
    assert d.unstructured_data["truncated"] is True
    assert d.unstructured_data["text"].startswith("spam spam")


def test_teams_unclosed_mention_tags_do_not_stall() -> None:
    content = "<at " * 500_000
    started = time.perf_counter()
    draft(teams.channel_message(body={"contentType": "html", "content": content}))
    assert time.perf_counter() - started < 10


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id": None}, "payload has no id"),
        ({"createdDateTime": None}, "payload has no createdDateTime"),
        ({"createdDateTime": "2026-13-45T99:00:00Z"}, "createdDateTime: not an ISO 8601"),
        ({"lastEditedDateTime": "last Tuesday"}, "lastEditedDateTime: not an ISO 8601"),
        (
            {"body": {"contentType": "html", "content": ["<p>x</p>"]}},
            "body.content: expected a string",
        ),
        ({"body": "<p>x</p>"}, "body: expected an object"),
        ({"mentions": [42]}, "mentions: expected objects"),
        ({"from": "Dan"}, "from: expected an object"),
    ],
)
def test_malformed_teams_messages_are_mapping_errors(changes: dict[str, Any], reason: str) -> None:
    envelope = teams.channel_message(**changes)
    envelope["payload"] = {
        k: v for k, v in envelope["payload"].items() if v is not None or k not in changes
    }
    with pytest.raises(MappingError, match=reason):
        draft(envelope)


def test_teams_message_in_neither_channel_nor_chat_is_a_mapping_error() -> None:
    envelope = teams.channel_message(channelIdentity=None, chatId=None)
    with pytest.raises(MappingError, match=r"no channelIdentity\.channelId or chatId"):
        draft(envelope)


# --- generic, malformed ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"messageId": None}, "payload has no messageId"),
        ({"channelId": None}, "payload has no channelId"),
        ({"sentAt": None}, "payload has no sentAt"),
        ({"sentAt": "2026-11-02 noon"}, "sentAt: not an ISO 8601"),
        ({"text": 3.14}, "text: expected a string"),
        ({"text": ["a", "b"]}, "text: expected a string"),
        ({"sender": None}, "sender: expected a person"),
        ({"sender": {"title": "CEO"}}, "sender: names no one"),
        ({"sender": {"email": "dan at northwind"}}, "not an email address"),
        ({"mentions": "priya"}, "mentions: expected a list"),
        ({"mentions": [7]}, "mentions: expected a person"),
        ({"deleted": "yes"}, "deleted: expected true or false"),
        ({"messageId": {"id": 1}}, "messageId: expected an id"),
    ],
)
def test_malformed_generic_messages_are_mapping_errors(
    changes: dict[str, Any], reason: str
) -> None:
    envelope = generic_chat.message()
    for key, value in changes.items():
        if value is None:
            envelope["payload"].pop(key)
        else:
            envelope["payload"][key] = value
    with pytest.raises(MappingError, match=reason):
        draft(envelope)
