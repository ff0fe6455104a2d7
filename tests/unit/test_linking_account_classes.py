"""Account linking keeps three classes apart: a parent and its subsidiary (the more specific
account wins), partners and resellers (linked as such, never as the customer), and bulk
mail (never linked by domain alone)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from core.tenants import TenantConfig, TenantDirectory
from linking.activity import Activity, activity_of, lookup_keys
from linking.memory import build_context
from linking.rules import (
    PARTNER_OPPORTUNITY_RULE,
    PARTNER_RULE,
    Candidate,
    candidates,
)
from linking.service import Linker
from processors.startup import ensure_shard_types
from shards.model import Link, Shard, ShardDraft
from shards.sqlite import SqliteShardStore
from streams.models import shard_event
from tests.fixtures.linking_corpus import make_shard
from tests.unit.test_linking_rules import account, contact, opportunity

T = "t-1"
TENANT = TenantConfig.model_validate({"internalDomains": ["northwind-sales.com"]})
DANA = "dana@northwind-sales.com"

GROUP = account("group", "Humongous Insurance", "humongous.com", "humongous.ca")
CANADA = account("canada", "Humongous Canada", "humongous.ca", parentId="group")
GROUP_DEAL = opportunity("group-deal", "Claims Portal", "group")
CANADA_DEAL = opportunity("canada-deal", "Broker App", "canada")
WORLD = (GROUP, CANADA, GROUP_DEAL, CANADA_DEAL)


def mail(
    sender: str,
    *to: str,
    subject: str = "Hello",
    text: str = "",
    thread: str | None = None,
    headers: dict[str, str] | None = None,
    tenant: TenantConfig = TENANT,
) -> Activity:
    data: dict[str, Any] = {
        "from": {"email": sender, "name": None},
        "to": [{"email": a, "name": None} for a in to],
        "subject": subject,
        "threadId": thread,
        "sentAt": "2026-11-02T09:00:00Z",
    }
    if headers:
        data["bulkHeaders"] = headers
    found = activity_of(make_shard(T, "Email", f"mail-{subject}", data, text), tenant)
    assert found is not None
    return found


def run(
    activity: Activity,
    *shards: Shard,
    thread_links: list[Link] | None = None,
    tenant: TenantConfig = TENANT,
) -> dict[str, Candidate]:
    keys = lookup_keys(activity, tenant)
    context = build_context(activity, keys, list(shards), thread_links or [], {})
    return {c.target_shard_id: c for c in candidates(activity, context, tenant)}


def linked(found: dict[str, Candidate], kind: str) -> set[str]:
    return {k for k, c in found.items() if c.target_shard_type == kind and c.confidence >= 0.85}


# --- parent and subsidiary -----------------------------------------------------------------------


def test_a_subsidiary_domain_its_parent_also_lists_links_the_subsidiary_only() -> None:
    found = run(mail("marie@humongous.ca", DANA), *WORLD)
    assert linked(found, "Account") == {"canada"}
    assert (found["canada"].confidence, found["canada"].method) == (0.9, "account_domain")
    assert found["canada"].group is None
    assert "group" not in found and "group-deal" not in found
    assert linked(found, "Opportunity") == {"canada-deal"}
    (note,) = [e for e in found["canada"].evidence if e.rule == "account_hierarchy"]
    assert "Humongous Insurance, of the same hierarchy" in note.detail


def test_a_contact_filed_at_the_parent_writing_from_the_subsidiary_links_the_subsidiary() -> None:
    noor = contact("noor", "noor@humongous.ca", "group")
    found = run(mail("noor@humongous.ca", DANA), noor, *WORLD)
    assert linked(found, "Contact") == {"noor"}
    assert linked(found, "Account") == {"canada"}
    assert linked(found, "Opportunity") == {"canada-deal"}


def test_a_subsidiary_contact_on_the_parents_domain_links_the_subsidiary() -> None:
    owen = contact("owen", "owen@humongous.com", "canada")
    found = run(mail("owen@humongous.com", DANA), owen, *WORLD)
    assert linked(found, "Account") == {"canada"}
    assert found["canada"].method == "account_contact"


def test_the_parents_main_domain_wins_over_a_subsidiary_that_lists_it_too() -> None:
    kids = account("kids", "Lucerne Kids", "lucernekids.com", "lucerne.com", parentId="lucerne")
    parent = account("lucerne", "Lucerne Publishing", "lucerne.com")
    found = run(mail("vera@lucerne.com", DANA), parent, kids)
    assert linked(found, "Account") == {"lucerne"}
    assert "kids" not in found


def test_people_of_the_parent_and_of_the_subsidiary_together_link_both() -> None:
    helen = contact("helen", "helen@humongous.com", "group")
    luc = contact("luc", "luc@humongous.ca", "canada")
    found = run(mail("helen@humongous.com", DANA, "luc@humongous.ca"), helen, luc, *WORLD)
    assert linked(found, "Account") == {"group", "canada"}
    assert linked(found, "Opportunity") == {"group-deal", "canada-deal"}


def test_a_grandparent_is_known_through_a_parent_the_activity_does_not_reach() -> None:
    top = account("top", "Trey Holdings", "trey.com")
    middle = account("middle", "Trey Research", "trey-research.com", parentId="top")
    lab = account("lab", "Trey Lab EMEA", "emea.trey.com", parentId="middle")
    ines = contact("ines", "ines@emea.trey.com", "top")
    activity = mail("ines@emea.trey.com", DANA)
    context = build_context(
        activity, lookup_keys(activity, TENANT), [top, middle, lab, ines], [], {}
    )
    assert {a.id for a in context.accounts} == {"top", "lab"}
    assert [a.id for a in context.ancestors] == ["middle"]
    found = {c.target_shard_id: c for c in candidates(activity, context, TENANT)}
    assert linked(found, "Account") == {"lab"}


def test_accounts_of_no_one_hierarchy_claiming_one_domain_stay_a_question() -> None:
    east = account("east", "Alpine East", "alpine.com", parentId="group")
    west = account("west", "Alpine West", "alpine.com", parentId="group")  # siblings
    found = run(mail("kim@alpine.com", DANA), east, west, GROUP)
    assert {found["east"].confidence, found["west"].confidence} == {0.6}
    assert found["east"].group == found["west"].group == "domain:alpine.com"


def test_a_cycle_in_the_crms_hierarchy_stops_the_walk() -> None:
    a = account("a", "A", "a.com", parentId="b")
    b = account("b", "B", "b.com", parentId="a")
    found = run(mail("x@a.com", DANA, "y@b.com"), a, b)
    assert linked(found, "Account") == {"a", "b"}


def test_a_thread_linked_to_the_parent_yields_to_the_subsidiary_taking_part() -> None:
    thread = [
        Link(target_shard_id="group", target_shard_type="Account", confidence=0.9,
             method="account_domain", status="auto"),
    ]  # fmt: skip
    found = run(mail("pierre@humongous.ca", DANA, thread="t1"), *WORLD, thread_links=thread)
    assert linked(found, "Account") == {"canada"}
    assert "group" not in found


# --- partners and resellers ----------------------------------------------------------------------

ACME = account("acme", "Acme", "acme.com")
ACME_DEAL = opportunity("acme-deal", "Acme — Route Planner", "acme")
PRIYA = contact("priya", "priya@acme.com", "acme")
WINGTIP = account("wingtip", "Wingtip", "wingtip.com", relationship="reseller")
ZOE = contact("zoe", "zoe@wingtip.com", "wingtip")
WINGTIP_DEAL = opportunity("wingtip-deal", "Wingtip — Showroom Kit", "wingtip", roles=("zoe",))
PARTNERS = (ACME, ACME_DEAL, PRIYA, WINGTIP, ZOE, WINGTIP_DEAL)


def test_a_reseller_copied_by_the_customer_links_as_a_partner_and_not_its_deal() -> None:
    found = run(mail("priya@acme.com", DANA, "zoe@wingtip.com"), *PARTNERS)
    assert found["wingtip"].method == PARTNER_RULE
    assert found["wingtip"].evidence[-1].value == "reseller"
    assert found["acme"].method != PARTNER_RULE
    assert linked(found, "Opportunity") == {"acme-deal"}
    assert "wingtip-deal" not in found  # Zoe's contact role on it does not make it the topic


def test_a_reseller_alone_links_its_own_deal_only_on_its_own_evidence() -> None:
    about_a_customer = run(mail("zoe@wingtip.com", DANA, subject="Quote for Acme"), *PARTNERS)
    assert linked(about_a_customer, "Account") == {"wingtip"}
    assert about_a_customer["wingtip-deal"].confidence == 0.8  # a contact role: a question
    assert about_a_customer["wingtip-deal"].method == "opportunity_contact_role"
    named = run(mail("zoe@wingtip.com", DANA, subject="Showroom Kit — order form"), *PARTNERS)
    assert linked(named, "Opportunity") == {"wingtip-deal"}
    stranger = run(mail("ops@wingtip.com", DANA, subject="Hello"), *PARTNERS)
    assert linked(stranger, "Account") == {"wingtip"} and "wingtip-deal" not in stranger


def test_a_partner_deal_base_rule_is_its_own() -> None:
    deal = opportunity("p-deal", "Partner Pact", "wingtip")
    found = run(mail("ops@wingtip.com", DANA, text="the partner pact is signed"), WINGTIP, deal)
    assert found["p-deal"].method == "opportunity_name"
    assert found["p-deal"].evidence[0].rule == PARTNER_OPPORTUNITY_RULE


def test_the_tenants_partner_domains_make_a_partner() -> None:
    tenant = TenantConfig.model_validate(
        {"internalDomains": ["northwind-sales.com"], "partnerDomains": ["consolidated.com"]}
    )
    cm = account("cm", "Consolidated Messenger", "consolidated.com")
    deal = opportunity("cm-deal", "Referral Agreement", "cm")
    activity = mail("priya@acme.com", DANA, "raul@consolidated.com", tenant=tenant)
    found = run(activity, ACME, ACME_DEAL, PRIYA, cm, deal, tenant=tenant)
    assert found["cm"].method == PARTNER_RULE
    assert linked(found, "Opportunity") == {"acme-deal"}


def test_a_partner_on_the_customers_thread_does_not_contradict_it() -> None:
    thread = [
        Link(target_shard_id=t, target_shard_type=k, confidence=0.9, method="m", status="auto")
        for t, k in (("acme", "Account"), ("acme-deal", "Opportunity"))
    ]
    found = run(
        mail("zoe@wingtip.com", DANA, subject="Re: rollout", thread="t1"),
        *PARTNERS,
        thread_links=thread,
    )
    assert (found["acme"].confidence, found["acme"].method) == (0.86, "account_thread")
    assert found["wingtip"].method == PARTNER_RULE
    assert linked(found, "Opportunity") == {"acme-deal"}


# --- bulk mail -----------------------------------------------------------------------------------


def test_bulk_mail_from_a_customers_domain_links_nothing_by_domain() -> None:
    news = mail("news@acme.com", DANA, headers={"List-Unsubscribe": "<mailto:u@acme.com>"})
    assert news.bulk == ("List-Unsubscribe",)
    assert lookup_keys(news, TENANT).domains == frozenset()
    assert run(news, *PARTNERS) == {}


def test_bulk_mail_from_a_known_contact_links_through_the_contact() -> None:
    relayed = mail(
        "priya@acme.com", DANA, headers={"List-Id": "<beta.acme.com>", "Precedence": "list"}
    )
    found = run(relayed, *PARTNERS)
    assert linked(found, "Contact") == {"priya"}
    assert (found["acme"].confidence, found["acme"].method) == (0.97, "account_contact")


# --- the linker fetches the hierarchy from the store ----------------------------------------------


class _Events:
    async def link_events(self, events: Any) -> None:
        pass


def _draft(shard: Shard) -> ShardDraft:
    return ShardDraft(
        id=shard.id,
        tenant_id=shard.tenant_id,
        shard_type=shard.shard_type,
        schema_version=1,
        structured_data=shard.structured_data,
        unstructured_data=shard.unstructured_data,
        source=shard.source,
    )


def _trey_hierarchy() -> tuple[Shard, Shard, Shard, Shard, Shard]:
    """Holdings ⊃ Research ⊃ Lab EMEA, a contact filed under the holdings, and mail from
    her at the lab's domain."""
    top = account("top", "Trey Holdings", "trey.com")
    middle = account("middle", "Trey Research", "trey-research.com", parentId="top")
    lab = account("lab", "Trey Lab EMEA", "emea.trey.com", parentId="middle")
    ines = contact("ines", "ines@emea.trey.com", "top")
    email = make_shard(
        T, "Email", "mail-1",
        {"from": {"email": "ines@emea.trey.com"}, "to": [{"email": DANA}],
         "subject": "Samples", "sentAt": "2026-11-02T09:00:00Z"},
    )  # fmt: skip
    return top, middle, lab, ines, email


async def test_the_linker_reads_the_hierarchy_from_the_store(tmp_path: Path) -> None:
    top, middle, lab, ines, email = _trey_hierarchy()
    async with SqliteShardStore(tmp_path / "shards.db") as store:
        await ensure_shard_types(store)
        linker = Linker(store, TenantDirectory({T: TENANT}), _Events())
        for shard in (top, middle, lab, ines, email):
            for outcome in await store.upsert_many([_draft(shard)]):
                await linker.process([shard_event(outcome)])
        stored = await store.get(T, "mail-1")
        assert stored is not None
        accounts = {k.target_shard_id for k in stored.links if k.target_shard_type == "Account"}
        assert accounts == {"lab"}
        # the parent in between leaves the hierarchy: the email looked at it, so it is
        # evaluated again
        changed = _draft(account("middle", "Trey Research", "trey-research.com"))
        changed = replace(changed, source=changed.source.model_copy(update={"event_id": "e2"}))
        [outcome] = await store.upsert_many([changed])
        await linker.process([shard_event(outcome)])
        stored = await store.get(T, "mail-1")
        assert stored is not None
        accounts = {k.target_shard_id for k in stored.links if k.target_shard_type == "Account"}
        assert accounts == {"lab", "top"}  # no longer one hierarchy: both take part


async def test_a_parent_that_arrives_last_re_evaluates_the_mail(tmp_path: Path) -> None:
    top, middle, lab, ines, email = _trey_hierarchy()
    async with SqliteShardStore(tmp_path / "shards.db") as store:
        await ensure_shard_types(store)
        linker = Linker(store, TenantDirectory({T: TENANT}), _Events())
        accounts: list[set[str]] = []
        for shard in (top, lab, ines, email, middle):  # the parent in between comes last
            for outcome in await store.upsert_many([_draft(shard)]):
                await linker.process([shard_event(outcome)])
            stored = await store.get(T, "mail-1")
            if stored is not None:
                accounts.append({k.target_shard_id for k in stored.links})
        assert accounts[0] >= {"lab", "top"}  # no hierarchy known yet: both take part
        assert {a for a in accounts[-1] if a in ("lab", "top")} == {"lab"}
