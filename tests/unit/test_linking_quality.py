"""The linker on the labelled corpus meets the issue's quality targets, and the in-memory
look-ups behave as the store's must."""

from __future__ import annotations

import pytest

from linking.activity import activity_of, lookup_keys
from linking.memory import build_context
from tests.fixtures.linking_corpus import NORTHWIND, TAILWIND, Quality, corpus, evaluate


@pytest.fixture(scope="module")
def quality() -> Quality:
    return evaluate(corpus())


def test_auto_links_are_precise(quality: Quality) -> None:
    assert quality.ratio(quality.precision["Opportunity"]) >= 0.97
    assert quality.ratio(quality.precision["Account"]) >= 0.99
    assert quality.ratio(quality.precision["Contact"]) >= 0.99
    assert all(total >= 100 for _, total in quality.precision.values())  # a real sample


def test_auto_and_suggested_links_find_what_they_should(quality: Quality) -> None:
    assert quality.ratio(quality.recall) >= 0.95


def test_at_most_a_fifth_of_linkable_items_go_to_review(quality: Quality) -> None:
    assert quality.ratio(quality.review) <= 0.20


def test_what_should_link_to_nothing_links_to_nothing(quality: Quality) -> None:
    quiet = [o for o in quality.outcomes if not o.item.expected]
    assert len(quiet) >= 15
    assert [o.item.note for o in quiet if o.links or o.suggestions] == []


def test_no_link_or_suggestion_ever_crosses_tenants(quality: Quality) -> None:
    tenant_of = {s.id: s.tenant_id for s in corpus().crm}
    for o in quality.outcomes:
        for _, target in o.links | o.suggested:
            assert tenant_of[target] == o.item.shard.tenant_id, o.item.note


def test_the_corpus_holds_what_the_issue_asks_for() -> None:
    c = corpus()
    assert {i.shard.tenant_id for i in c.items} == {NORTHWIND, TAILWIND}
    notes = " ".join(i.note for i in c.items)
    for case in (
        "internal only",
        "personal",
        "look-alike",
        "no-reply",
        "before its opportunity",
        "(reply)",
        "a tie",
        "names the deal",
        "a subdomain",
        "two accounts claim",
        "after the deal closed",
        "same person and domain as in the other tenant",
    ):
        assert case in notes, case  # fmt: skip
    assert {i.shard.shard_type for i in c.items} == {
        "Email", "Message", "CalendarEvent", "Meeting", "Document",
    }  # fmt: skip


def test_a_late_created_opportunity_gets_the_earlier_emails(quality: Quality) -> None:
    streaming = corpus().shard("O:streaming").id
    early = [o for o in quality.outcomes if "before its opportunity was entered" in o.item.note]
    assert early and all(("Opportunity", streaming) in o.links for o in early)


def test_build_context_makes_the_store_look_ups() -> None:
    c = corpus()
    item = next(i for i in c.items if i.note == "names the deal, contact role, owner")
    tenant = c.tenants[NORTHWIND]
    activity = activity_of(item.shard, tenant)
    assert activity is not None
    context = build_context(activity, lookup_keys(activity, tenant), c.crm, [], {"x": "rejected"})
    assert [s.id for s in context.contacts] == [c.shard("C:priya").id]  # not Tailwind's Priya
    assert {s.id for s in context.accounts} == {c.shard("A:fabrikam").id}
    assert {s.id for s in context.opportunities} == {
        c.shard(h).id for h in ("O:route", "O:telematics", "O:fab_renewal", "O:warehouse")
    }
    assert [s.id for s in context.users] == [c.shard("U:dana").id]
    assert context.decided == {"x": "rejected"}
    assert all(s.tenant_id == NORTHWIND for s in context.contacts + context.accounts)
