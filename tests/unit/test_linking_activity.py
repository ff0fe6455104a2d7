"""Communication shards read as activities, and the look-ups they need."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.tenants import TenantConfig
from linking.activity import MAX_TEXT_CHARS, Activity, Participant, activity_of, lookup_keys
from normalisers.email import normalise_email
from normalisers.event import normalise_calendar_event
from normalisers.message import normalise_message
from shards.model import Shard, ShardDraft, merge
from streams.models import RawEvent
from tests.fixtures import generic_chat, generic_email
from tests.fixtures.linking_corpus import make_shard

NORTHWIND = TenantConfig.model_validate(
    {
        "internalDomains": ["northwind-sales.com"],
        "excludedAddresses": ["founder.private@gmail.com"],
        "excludedDomains": ["newsletters.example.com"],
    }
)
DAN = "dan.ortiz@northwind-sales.com"
JO = "jo.lee@northwind-sales.com"
PRIYA = "priya.raman@fabrikam-logistics.com"


def stored(draft: ShardDraft) -> Shard:
    return merge(None, draft).shard


def email(envelope: dict[str, Any], tenant: TenantConfig = NORTHWIND) -> Shard:
    return stored(normalise_email(RawEvent.model_validate(envelope), tenant))


def activity(shard: Shard, tenant: TenantConfig = NORTHWIND) -> Activity:
    found = activity_of(shard, tenant)
    assert found is not None
    return found


# --- activity_of ---------------------------------------------------------------------------


def test_an_email_names_everyone_with_their_role_once() -> None:
    shard = email(
        generic_email.email(
            PRIYA,
            [DAN, "ana@contoso-retail.com"],
            cc=[JO, DAN],
            bcc=[{"email": "audit@fabrikam-logistics.com", "name": None}],
            **{"from": "Priya Raman <Priya.Raman@Fabrikam-Logistics.com>"},
        )
    )
    a = activity(shard)
    assert [(p.email, p.role) for p in a.participants] == [
        (PRIYA, "from"),
        (DAN, "to"),
        ("ana@contoso-retail.com", "to"),
        (JO, "cc"),
        ("audit@fabrikam-logistics.com", "bcc"),
    ]
    assert a.participants[0].name == "Priya Raman"
    assert a.shard_type == "Email" and a.tenant_id == "t-demo" and a.shard_id == shard.id
    assert a.subject == "Pricing review"
    assert a.text == "See you on Thursday."
    # structuredData.threadId as it is (namespaced by the integration): the index key
    assert a.thread_id == "int-generic-1:thr-msg-8001"
    assert a.occurred_at == datetime(2026, 11, 2, 9, 14, 3, tzinfo=UTC)
    assert not a.internal_only


def test_email_participant_strings_count_when_no_person_object_names_them() -> None:
    shard = make_shard(
        "t-1",
        "Email",
        "e-1",
        {"participants": [DAN, "Ana@Contoso-Retail.com"], "from": {"email": DAN}},
    )
    assert [(p.email, p.role) for p in activity(shard).participants] == [
        (DAN, "from"),
        ("ana@contoso-retail.com", "participant"),
    ]


def test_excluded_addresses_and_domains_are_dropped() -> None:
    shard = email(
        generic_email.email(
            "founder.private@gmail.com", [DAN], cc=["editor@news.newsletters.example.com", PRIYA]
        )
    )
    assert [p.email for p in activity(shard).participants] == [DAN, PRIYA]


def test_internal_only_when_everyone_left_is_the_tenants_own() -> None:
    assert activity(email(generic_email.email(DAN, [JO]))).internal_only
    assert activity(email(generic_email.email("founder.private@gmail.com", [DAN]))).internal_only
    assert not activity(email(generic_email.email(DAN, [JO, PRIYA]))).internal_only
    # Without internal domains no one is internal: nothing is internal-only.
    bare = TenantConfig()
    assert not activity(email(generic_email.email(DAN, [JO]), bare), bare).internal_only


def test_a_chat_message_has_a_sender_and_mentions() -> None:
    draft = normalise_message(RawEvent.model_validate(generic_chat.message()), NORTHWIND)
    a = activity(stored(draft))
    assert [(p.email, p.role) for p in a.participants] == [(DAN, "sender"), (PRIYA, "mention")]
    assert a.text.startswith("@Priya Raman sharing")
    assert a.occurred_at == datetime(2026, 11, 2, 11, 55, tzinfo=UTC)


def test_a_deleted_message_and_a_cancelled_event_are_no_activity() -> None:
    deleted = normalise_message(
        RawEvent.model_validate(generic_chat.message(deleted=True)), NORTHWIND
    )
    assert activity_of(stored(deleted), NORTHWIND) is None
    cancelled = normalise_calendar_event(
        RawEvent.model_validate(generic_chat.calendar_event(status="cancelled")), NORTHWIND
    )
    assert activity_of(stored(cancelled), NORTHWIND) is None
    gone = make_shard("t-1", "Document", "d-1", {"deleted": True, "owner": {"email": PRIYA}})
    assert activity_of(gone, NORTHWIND) is None


def test_a_calendar_event_has_an_organizer_and_attendees() -> None:
    draft = normalise_calendar_event(
        RawEvent.model_validate(generic_chat.calendar_event()), NORTHWIND
    )
    a = activity(stored(draft))
    assert [(p.email, p.role) for p in a.participants] == [
        (DAN, "organizer"),
        (PRIYA, "attendee"),
    ]
    assert a.subject == "Fabrikam / Northwind — pricing review"
    assert a.text == "Walk through 1- and 3-year options."
    assert a.occurred_at == datetime(2026, 11, 5, 15, 0, tzinfo=UTC)
    assert a.thread_id is None


def test_a_meeting_reads_its_participants_title_and_transcript() -> None:
    shard = make_shard(
        "t-1",
        "Meeting",
        "m-1",
        {"title": "Discovery", "start": "2026-11-06T15:00:00Z", "participants": [
            {"email": DAN, "name": "Dan"}, {"email": PRIYA, "name": None}]},
        text="Dan: welcome.",
    )  # fmt: skip
    a = activity(shard)
    assert [(p.email, p.role) for p in a.participants] == [
        (DAN, "participant"),
        (PRIYA, "participant"),
    ]
    assert (a.subject, a.text) == ("Discovery", "Dan: welcome.")
    assert a.occurred_at == datetime(2026, 11, 6, 15, 0, tzinfo=UTC)


def test_a_document_has_its_owner_and_its_file_name_as_subject() -> None:
    shard = make_shard(
        "t-1",
        "Document",
        "d-1",
        {"fileName": "requirements.pdf", "owner": {"email": PRIYA},
         "createdAt": "2026-11-01T08:00:00Z", "modifiedAt": "2026-11-02T08:00:00Z"},
        text="Requirements",
    )  # fmt: skip
    a = activity(shard)
    assert a.participants == (Participant(PRIYA, None, "owner"),)
    assert a.subject == "requirements.pdf"
    assert a.occurred_at == datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def test_only_the_first_characters_of_a_long_text_are_read() -> None:
    shard = make_shard("t-1", "Meeting", "m-1", {"participants": []}, text="x" * 100_000)
    assert len(activity(shard).text) == MAX_TEXT_CHARS


def test_shards_that_are_no_communication_have_no_activity() -> None:
    for shard_type in ("Account", "Contact", "Opportunity", "User"):
        shard = make_shard("t-1", shard_type, "x-1", {"email": PRIYA, "name": "X"})
        assert activity_of(shard, NORTHWIND) is None


def test_addresses_without_a_domain_are_ignored() -> None:
    shard = make_shard("t-1", "Email", "e-1", {"participants": ["dan@", "nobody", 42, None]})
    assert activity(shard).participants == ()


# --- lookup_keys -----------------------------------------------------------------------------


def keys_of(sender: str, *to: str) -> Any:
    a = activity(email(generic_email.email(sender, list(to))))
    return lookup_keys(a, NORTHWIND)


def test_keys_are_the_external_addresses_their_domains_and_the_internal_people() -> None:
    keys = keys_of(PRIYA, DAN, "Ana@Contoso-Retail.com")
    assert keys.emails == {PRIYA, "ana@contoso-retail.com"}
    assert keys.domains == {"fabrikam-logistics.com", "contoso-retail.com"}
    assert keys.internal_emails == {DAN}
    assert not keys.empty


def test_a_subdomain_is_looked_up_with_its_parents_down_to_the_registrable_domain() -> None:
    keys = keys_of("ops@eu.mail.acme.co.uk", DAN)
    assert keys.domains == {"eu.mail.acme.co.uk", "mail.acme.co.uk", "acme.co.uk"}


def test_free_mail_is_looked_up_by_address_never_by_domain() -> None:
    keys = keys_of("priya.raman.home@gmail.com", DAN)
    assert keys.emails == {"priya.raman.home@gmail.com"}
    assert keys.domains == frozenset()


def test_no_reply_senders_are_looked_up_neither_by_address_nor_by_domain() -> None:
    keys = keys_of("no-reply@fabrikam-logistics.com", DAN)
    assert keys.emails == frozenset() and keys.domains == frozenset()
    assert keys.empty
    # A person of the same company on the same message still counts.
    keys = keys_of("notifications@fabrikam-logistics.com", DAN, PRIYA)
    assert keys.emails == {PRIYA} and keys.domains == {"fabrikam-logistics.com"}


def test_the_tenants_own_domains_and_subdomains_are_never_looked_up() -> None:
    keys = keys_of("ops@eu.northwind-sales.com", DAN, PRIYA)
    assert keys.emails == {PRIYA} and keys.domains == {"fabrikam-logistics.com"}
    assert keys.internal_emails == {"ops@eu.northwind-sales.com", DAN}


def test_an_internal_only_activity_needs_no_look_up() -> None:
    keys = keys_of(DAN, JO)
    assert keys.empty and keys.internal_emails == frozenset()
