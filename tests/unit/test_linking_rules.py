"""The linking rules, one by one: who and what a communication is linked to, and why."""

from __future__ import annotations

from typing import Any

import pytest

from core.tenants import TenantConfig
from linking.activity import Activity, activity_of, lookup_keys
from linking.memory import build_context
from linking.rules import Candidate, LinkContext, candidates
from shards.model import Link, Shard
from tests.fixtures.linking_corpus import make_shard

T = "t-1"
TENANT = TenantConfig.model_validate(
    {"internalDomains": ["northwind-sales.com"], "excludedDomains": ["newsletters.example.com"]}
)
DANA = "dana@northwind-sales.com"
DAN = "dan@northwind-sales.com"
PRIYA = "priya@acme.com"


# --- a small world ---------------------------------------------------------------------------


def account(shard_id: str, name: str, *domains: str, tenant: str = T, **extra: Any) -> Shard:
    data = {"name": name, "domain": domains[0] if domains else None, "domains": list(domains)}
    return make_shard(tenant, "Account", shard_id, {**data, **extra})


def contact(
    shard_id: str, email: str, account_id: str | None, *others: str, tenant: str = T
) -> Shard:
    data = {"fullName": shard_id.title(), "email": email, "emails": [email, *others],
            "accountId": account_id}  # fmt: skip
    return make_shard(tenant, "Contact", shard_id, data)


def opportunity(
    shard_id: str,
    name: str,
    account_id: str,
    *,
    status: str = "open",
    close: str = "2026-12-18",
    created: str = "2026-08-01T10:00:00Z",
    owner: str | None = None,
    roles: tuple[str, ...] = (),
    tenant: str = T,
    **extra: Any,
) -> Shard:
    data = {
        "name": name,
        "accountId": account_id,
        "status": status,
        "closeDate": close,
        "createdDate": created,
        "ownerId": owner,
        "contactRoles": [{"contactId": r, "role": "Decision Maker"} for r in roles],
        **extra,
    }
    return make_shard(tenant, "Opportunity", shard_id, data)


def user(shard_id: str, email: str) -> Shard:
    return make_shard(T, "User", shard_id, {"fullName": shard_id.title(), "email": email})


def mail(
    sender: str,
    *to: str,
    subject: str = "Hello",
    text: str = "",
    thread: str | None = None,
    at: str = "2026-11-02T09:00:00Z",
    tenant: str = T,
) -> Activity:
    data = {
        "from": {"email": sender, "name": None},
        "to": [{"email": a, "name": None} for a in to],
        "subject": subject,
        "threadId": thread,
        "sentAt": at,
    }
    found = activity_of(make_shard(tenant, "Email", f"mail-{subject}-{at}", data, text), TENANT)
    assert found is not None
    return found


def run(
    activity: Activity,
    *shards: Shard,
    thread_links: list[Link] | None = None,
    tenant: TenantConfig = TENANT,
) -> dict[str, Candidate]:
    """Candidates by target id, with the context the agent's look-ups would give."""
    keys = lookup_keys(activity, tenant)
    context = build_context(activity, keys, list(shards), thread_links or [], {})
    found = candidates(activity, context, tenant)
    assert len({c.target_shard_id for c in found}) == len(found)
    return {c.target_shard_id: c for c in found}


def thread_link(target: str, target_type: str, status: str = "auto") -> Link:
    return Link(
        target_shard_id=target,
        target_shard_type=target_type,
        confidence=0.9,
        method="earlier",
        status=status,
    )


ACME = account("acme", "Acme Corp", "acme.com")
PRIYA_C = contact("priya", PRIYA, "acme")


# --- contacts ------------------------------------------------------------------------------


def test_a_participant_whose_address_is_a_contacts_email_links_to_it() -> None:
    found = run(mail(PRIYA, DANA), PRIYA_C)
    c = found["priya"]
    assert (c.target_shard_type, c.confidence, c.method) == ("Contact", 0.97, "contact_email")
    (evidence,) = c.evidence
    assert (evidence.rule, evidence.field, evidence.value) == ("contact_email", "email", PRIYA)
    assert evidence.detail == "priya@acme.com (from) is the email of contact Priya"


def test_a_contacts_other_addresses_link_to_it() -> None:
    priya = contact("priya", PRIYA, "acme", "priya.home@gmail.com")
    c = run(mail("Priya.Home@gmail.com", DANA), priya, ACME)["priya"]
    assert (c.confidence, c.method) == (0.95, "contact_secondary_email")
    assert c.evidence[0].field == "emails"
    assert "other addresses of contact Priya" in c.evidence[0].detail


def test_an_address_two_contacts_carry_is_a_question() -> None:
    twin = contact("twin", PRIYA, "acme")
    found = run(mail(PRIYA, DANA), PRIYA_C, twin)
    assert {found["priya"].confidence, found["twin"].confidence} == {0.7}
    assert found["priya"].group == found["twin"].group == f"address:{PRIYA}"
    assert "is an email of 2 contacts" in found["priya"].evidence[0].detail


def test_a_main_email_wins_over_another_contacts_old_address() -> None:
    old = contact("old", "old@acme.com", "acme", PRIYA)
    found = run(mail(PRIYA, DANA), PRIYA_C, old)
    assert found["priya"].confidence == 0.97
    assert found["old"].confidence == 0.6


def test_the_tenants_own_people_are_never_contacts() -> None:
    dana_as_contact = contact("dana", DANA, "acme")
    assert "dana" not in run(mail(DANA, PRIYA), dana_as_contact, PRIYA_C)


# --- accounts ------------------------------------------------------------------------------


def test_the_account_of_a_matched_contact_links_and_its_domain_confirms_it() -> None:
    a = run(mail(PRIYA, DANA), PRIYA_C, ACME)["acme"]
    assert a.target_shard_type == "Account" and a.method == "account_contact"
    assert a.confidence == 0.99  # 0.97, two independent rules agree
    assert [e.rule for e in a.evidence] == ["account_contact", "account_domain"]
    assert a.evidence[0].detail == "contact Priya (priya@acme.com) belongs to account Acme Corp"


def test_a_contacts_account_links_without_any_domain() -> None:
    bare = account("bare", "Bare Inc")
    c = contact("c", "ceo@bare-consulting.net", "bare")
    a = run(mail("ceo@bare-consulting.net", DANA), c, bare)["bare"]
    assert (a.confidence, a.method) == (0.97, "account_contact")


def test_a_participant_domain_links_the_account_that_holds_it() -> None:
    a = run(mail("someone@acme.com", DANA), ACME)["acme"]
    assert (a.confidence, a.method) == (0.9, "account_domain")
    assert a.evidence[0].detail == (
        "domain acme.com of someone@acme.com (from) is a domain of account Acme Corp"
    )
    extra = account("extra", "Extra", "extra.com", "extra-group.de")
    assert run(mail("x@extra-group.de", DANA), extra)["extra"].confidence == 0.9


def test_a_subdomain_links_the_account_of_its_parent() -> None:
    a = run(mail("ops@eu.mail.acme.com", DANA), ACME)["acme"]
    assert (a.confidence, a.method) == (0.87, "account_subdomain")
    assert a.evidence[0].value == "acme.com"


def test_the_most_specific_account_domain_wins() -> None:
    emea = account("emea", "Acme EMEA", "emea.acme.com")
    found = run(mail("rob@emea.acme.com", DANA), ACME, emea)
    assert set(found) == {"emea"} and found["emea"].confidence == 0.9
    assert set(run(mail("ivy@acme.com", DANA), ACME, emea)) == {"acme"}


def test_another_country_domain_is_another_account_unless_listed() -> None:
    assert run(mail("james@acme.co.uk", DANA), ACME) == {}
    both = account("both", "Acme", "acme.com", "acme.co.uk")
    assert run(mail("james@acme.co.uk", DANA), both)["both"].confidence == 0.9


def test_look_alike_domains_link_nothing() -> None:
    fabrikam = account("fab", "Fabrikam", "fabrikam-logistics.com")
    for sender in (
        "a@fabrikam-logistic.com",
        "a@fabrikam-logistics.co",
        "a@xfabrikam-logistics.com",
    ):
        assert run(mail(sender, DANA), fabrikam) == {}


def test_a_domain_two_accounts_claim_is_a_question() -> None:
    twin = account("twin", "Acme Rentals", "acme.com")
    found = run(mail("kim@acme.com", DANA), ACME, twin)
    assert {c.confidence for c in found.values()} == {0.6}
    assert {c.group for c in found.values()} == {"domain:acme.com"}
    assert {c.method for c in found.values()} == {"account_shared_domain"}


def test_free_mail_never_links_by_domain() -> None:
    gmail = account("gm", "Gmail Fans", "gmail.com")
    assert run(mail("stranger@gmail.com", DANA), gmail) == {}


def test_no_reply_senders_never_link() -> None:
    for sender in ("no-reply@acme.com", "notifications@acme.com", "mailer-daemon@acme.com"):
        assert run(mail(sender, DANA), ACME, PRIYA_C) == {}


def test_the_tenants_own_domain_never_links_an_account() -> None:
    own = account("own", "Northwind", "northwind-sales.com")
    assert run(mail(DANA, "x@eu.northwind-sales.com", PRIYA), own, ACME).keys() == {"acme"}


def test_excluded_domains_never_link() -> None:
    news = account("news", "Newsletters", "newsletters.example.com")
    assert run(mail("editor@newsletters.example.com", DANA), news) == {}


def test_internal_only_communications_link_to_nothing() -> None:
    activity = mail(DANA, DAN, subject="Acme forecast", text="priya@acme.com is keen")
    context = LinkContext(contacts=[PRIYA_C], accounts=[ACME],
                          thread_links=[thread_link("acme", "Account")])  # fmt: skip
    assert activity.internal_only
    assert candidates(activity, context, TENANT) == []


# --- tenant isolation ----------------------------------------------------------------------


def test_shards_of_another_tenant_are_never_candidates() -> None:
    """The context is what the agent fetched; if another tenant's shard slipped in, the
    rules still refuse it."""
    other = "t-2"
    context = LinkContext(
        contacts=[contact("their-priya", PRIYA, "their-acme", tenant=other)],
        accounts=[account("their-acme", "Acme Corp", "acme.com", tenant=other)],
        opportunities=[opportunity("their-deal", "Rockets", "their-acme", tenant=other)],
        users=[make_shard(other, "User", "their-dana", {"email": DANA})],
    )
    assert candidates(mail(PRIYA, DANA), context, TENANT) == []
    # With the tenant's own shards beside them, only those come back.
    context.accounts.append(ACME)
    context.contacts.append(PRIYA_C)
    context.opportunities.append(opportunity("deal", "Rockets", "acme"))
    found = {c.target_shard_id for c in candidates(mail(PRIYA, DANA), context, TENANT)}
    assert found == {"priya", "acme", "deal"}


def test_deleted_records_are_never_candidates() -> None:
    gone = contact("gone", PRIYA, "acme")
    gone = gone.model_copy(update={"structured_data": {**gone.structured_data, "deleted": True}})
    deal = opportunity("deal", "Rockets", "acme", deleted=True)
    assert set(run(mail(PRIYA, DANA), gone, ACME, deal)) == {"acme"}


# --- opportunities -------------------------------------------------------------------------


def test_the_accounts_only_open_opportunity_links() -> None:
    deal = opportunity("deal", "Acme — Rockets", "acme")
    o = run(mail("x@acme.com", DANA), ACME, deal)["deal"]
    assert (o.target_shard_type, o.confidence, o.method) == (
        "Opportunity",
        0.9,
        "opportunity_single_open",
    )
    assert o.group == "opportunities:acme"
    assert o.evidence[0].detail == (
        "Acme — Rockets is the only opportunity of Acme Corp that counts on 2026-11-02: open"
    )


def test_opportunities_closed_long_ago_do_not_count() -> None:
    old = opportunity("old", "Acme — Rockets", "acme", status="closed_won", close="2026-10-01")
    assert set(run(mail("x@acme.com", DANA), ACME, old)) == {"acme"}


def test_an_opportunity_closed_within_fourteen_days_before_still_counts() -> None:
    recent = opportunity("recent", "Acme — Rockets", "acme", status="closed_won",
                         close="2026-10-25")  # fmt: skip
    o = run(mail("x@acme.com", DANA), ACME, recent)["recent"]
    assert (o.confidence, o.method) == (0.86, "opportunity_recently_closed")
    assert "closed 2026-10-25, within 14 days before it" in o.evidence[0].detail
    lapsed = opportunity("lapsed", "Acme — Rockets", "acme", status="closed_lost",
                         close="2026-10-18")  # fmt: skip
    assert "lapsed" not in run(mail("x@acme.com", DANA), ACME, lapsed)


def test_an_opportunity_closed_after_the_activity_was_open_then() -> None:
    later = opportunity("later", "Acme — Rockets", "acme", status="closed_won", close="2026-11-20")
    o = run(mail("x@acme.com", DANA), ACME, later)["later"]
    assert o.confidence == 0.9
    assert "open then, closed 2026-11-20, after this activity" in o.evidence[0].detail


def test_an_opportunity_created_after_the_activity_counts_for_thirty_days() -> None:
    late = opportunity("late", "Acme — Rockets", "acme", created="2026-11-20T10:00:00Z")
    o = run(mail("x@acme.com", DANA), ACME, late)["late"]
    assert o.confidence == 0.9
    assert "created 2026-11-20, after this activity" in o.evidence[0].detail
    much_later = opportunity("much", "Acme — Rockets", "acme", created="2026-12-20T10:00:00Z")
    assert "much" not in run(mail("x@acme.com", DANA), ACME, much_later)


def two_deals(**kw: Any) -> tuple[Shard, Shard]:
    rockets = opportunity("rockets", "Acme — Rocket Skates", "acme", close="2026-12-01",
                          owner="u-dana", roles=kw.get("rocket_roles", ()))  # fmt: skip
    anvils = opportunity("anvils", "Acme — Anvil Delivery", "acme", close="2027-03-01",
                         owner="u-dan", roles=kw.get("anvil_roles", ()))  # fmt: skip
    return rockets, anvils


def test_several_open_opportunities_without_evidence_tie() -> None:
    found = run(mail("x@acme.com", "ops@northwind-sales.com"), ACME, *two_deals())
    assert found["rockets"].confidence == found["anvils"].confidence == 0.55
    assert found["rockets"].method == "opportunity_open"
    assert "one of 2 opportunities of Acme Corp that count" in found["rockets"].evidence[0].detail
    # The tie keeps the nearest close date first.
    order = [c for c in found if c in ("rockets", "anvils")]
    assert order == ["rockets", "anvils"]


def test_a_contact_role_and_the_name_make_a_clear_winner() -> None:
    activity = mail(PRIYA, "ops@northwind-sales.com", subject="Re: Rocket Skates pricing")
    found = run(activity, PRIYA_C, ACME, *two_deals(rocket_roles=("priya",)))
    rockets = found["rockets"]
    assert rockets.confidence >= 0.85 and found["anvils"].confidence == 0.55
    details = {e.rule: e.detail for e in rockets.evidence}
    assert details["opportunity_contact_role"] == (
        "priya@acme.com (from) has a contact role (Decision Maker) on Acme — Rocket Skates"
    )
    assert details["opportunity_name"] == (
        'the subject names "rocket skates" of Acme — Rocket Skates'
    )


@pytest.mark.parametrize(
    ("subject", "roles", "expected"),
    [
        ("Hello", ("priya",), 0.75),  # contact role alone
        ("Rocket skates", (), 0.8),  # name alone
    ],
)
def test_one_preference_alone_is_a_question(
    subject: str, roles: tuple[str, ...], expected: float
) -> None:
    found = run(mail(PRIYA, "ops@northwind-sales.com", subject=subject), PRIYA_C, ACME,
                *two_deals(rocket_roles=roles))  # fmt: skip
    assert found["rockets"].confidence == expected


def test_the_owner_taking_part_is_a_preference() -> None:
    dana = user("u-dana", DANA)
    found = run(mail("x@acme.com", DANA), ACME, dana, *two_deals())
    assert found["rockets"].confidence == pytest.approx(0.59)
    assert found["anvils"].confidence == 0.55
    (owner,) = [e for e in found["rockets"].evidence if e.rule == "opportunity_owner"]
    assert owner.detail == "the opportunity's owner dana@northwind-sales.com (to) takes part"
    assert owner.value == "u-dana"


def test_the_name_is_found_in_the_body_transcript_or_description() -> None:
    activity = mail(PRIYA, DANA, text="Shipping the ANVIL-delivery schedule today.")
    o = run(activity, PRIYA_C, ACME, *two_deals())["anvils"]
    assert o.confidence == 0.8
    assert any(e.detail.startswith('the body names "anvil delivery"') for e in o.evidence)


def test_generic_names_are_not_looked_for() -> None:
    renewal = opportunity("renewal", "Acme — 2027 Renewal", "acme")
    other = opportunity("other", "Acme — Rocket Skates", "acme")
    found = run(mail("x@acme.com", DANA, subject="About the 2027 renewal"), ACME, renewal, other)
    assert found["renewal"].confidence == found["other"].confidence == 0.55


def test_a_reply_inherits_its_threads_account_and_opportunity() -> None:
    rockets, anvils = two_deals()
    links = [thread_link("acme", "Account"), thread_link("rockets", "Opportunity")]
    found = run(mail("x@acme.com", DANA, thread="t"), ACME, rockets, anvils, thread_links=links)
    assert found["rockets"].confidence >= 0.85 and found["rockets"].method == "opportunity_thread"
    assert found["anvils"].confidence == 0.55
    assert any("an earlier message of this thread" in e.detail for e in found["acme"].evidence)


def test_a_reply_from_someone_unknown_keeps_the_thread() -> None:
    links = [thread_link("acme", "Account", "approved"), thread_link("rockets", "Opportunity")]
    found = run(mail("someone@gmail.com", DANA, thread="t"), thread_links=links)
    assert (found["acme"].confidence, found["acme"].method) == (0.86, "account_thread")
    assert (found["rockets"].confidence, found["rockets"].method) == (0.86, "opportunity_thread")


def test_new_evidence_contradicts_the_thread() -> None:
    other = account("other", "Other Co", "other.com")
    links = [thread_link("acme", "Account"), thread_link("rockets", "Opportunity")]
    found = run(mail("x@other.com", DANA, thread="t"), other, thread_links=links)
    assert found["other"].confidence == 0.9
    assert found["acme"].confidence == found["rockets"].confidence == 0.6
    assert "people belong to other accounts" in found["acme"].evidence[-1].detail


def test_a_reply_that_names_another_opportunity_turns_away_from_the_thread() -> None:
    rockets, anvils = two_deals()
    links = [thread_link("rockets", "Opportunity")]
    activity = mail("x@acme.com", DANA, subject="Re: Rocket Skates pricing", thread="t",
                    text="Separately, the anvil delivery dates moved.")  # fmt: skip
    found = run(activity, ACME, rockets, anvils, thread_links=links)
    assert found["anvils"].confidence == 0.8
    assert found["rockets"].confidence == 0.55  # neither the old subject nor the thread count
    rules = {e.rule: e.detail for e in found["rockets"].evidence}
    assert "not counted" in rules["opportunity_thread"]
    assert "not counted" in rules["opportunity_stale_subject"]


def test_an_opportunity_is_never_surer_than_an_uncertain_account() -> None:
    twin = account("twin", "Acme Rentals", "acme.com")
    deal = opportunity("deal", "Acme — Rockets", "acme")
    found = run(mail("kim@acme.com", DANA), ACME, twin, deal)
    assert found["deal"].confidence == 0.6


def test_opportunities_of_other_accounts_are_left_out() -> None:
    stray = opportunity("stray", "Stray", "elsewhere")
    assert "stray" not in run(mail("x@acme.com", DANA), ACME, stray)
