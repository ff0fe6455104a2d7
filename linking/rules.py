"""The linking rules: an activity's candidate contacts, accounts and opportunities.

Plain code over what the linker fetched (`LinkContext`); every candidate carries a
confidence in [0, 1] and the evidence a reviewer reads. What is certain scores at or
above the default auto threshold (0.85), what needs a person between 0.5 and 0.85:

| rule | confidence |
|---|---|
| `contact_email`: a participant's address is a contact's `email` | 0.97 |
| `contact_secondary_email`: ... one of its other `emails` | 0.95 |
| `contact_shared_email`: the address belongs to several contacts | 0.7 (each, one group) |
| `account_contact`: the account of a matched contact | 0.97 |
| `account_domain`: a participant's domain is the account's `domain`/`domains` | 0.9 |
| `account_subdomain`: ... a subdomain of it (`mail.acme.com` of `acme.com`) | 0.87 |
| `account_shared_domain`: several accounts claim that domain | 0.6 (each, one group) |
| `account_thread`: an earlier message of the thread links it, nothing here says so | 0.86 |
| `crm_reference`: it names the record by CRM id (a task's deal, account, contact) | 0.99 |
| `account_partner`: any of the account rules, for a partner, reseller or vendor | as the rule |
| `opportunity_single_open`: the account's only opportunity open at the time | 0.9 |
| `opportunity_recently_closed`: ... closed at most 14 days before | 0.86 |
| several open (`opportunity_open`): 0.55, + `opportunity_contact_role` 0.2, + \
  `opportunity_name` (named in subject or text) 0.25, + `opportunity_owner` 0.04, + \
  `opportunity_thread` 0.35; scores above 0.9 approach 0.98 | 0.55 to 0.98 |

Opportunities count when they were open at the activity's time: open now (also when
created after the activity, up to `LATE_CREATION` later: a deal is often entered after
its first emails), or closed on or after the activity's day, or closed at most
`CLOSED_GRACE` before it (less weight). Candidates of one account's opportunities form
one group (`Candidate.group`): `decisions.decide` links the best of a group, or asks
about it with the others as alternatives; equal scores stay a tie (candidates of a tie
come nearest close date first). Contacts are never inherited from a thread (a contact
links when it takes part); the account and opportunities a thread linked are, unless
this message's own evidence points elsewhere (its people belong to other accounts, its
new text names another opportunity; a reply's inherited subject is not new evidence).
An opportunity is never surer than its account when the account is uncertain. Tenant
isolation is enforced here too: shards of another tenant in the context are ignored.

Three kinds of mail mislead account linking, and are kept apart:

- *Parent and subsidiary* (`parentId`, the CRM's account hierarchy): when one
  participant's evidence reaches accounts of which one is a parent (grandparent ...) of
  the other, only the more specific counts: a contact record or the account's main
  domain before a domain it only lists, then the deeper account. The other is left out
  (evidence `account_hierarchy` on the winner says so); people of both still link both,
  and a thread's parent yields to its subsidiary taking part.
- *Partners, resellers, vendors* (`relationship` from the CRM's account type, or the
  tenant's `partnerDomains`): their account links with method `account_partner`, never as
  the customer; they do not contradict a customer's thread; their own opportunities are
  not candidates when a customer takes part, and otherwise only on this activity's own
  evidence (`opportunity_partner`, 0.6, + contact role, name, thread): role alone asks.
- *Bulk mail* (`Activity.bulk`: List-Unsubscribe, List-Id, Precedence bulk/list,
  marketing platforms' headers): no domain rule; known people's addresses still count.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from core.addresses import domain_of, is_no_reply
from core.domains import domain_keys
from core.tenants import TenantConfig
from linking.activity import Activity, Participant
from linking.names import Mention, distinctive_phrase, find_mentions
from shards.kinds import kind_of
from shards.model import Link, Shard

__all__ = [
    "CLOSED_GRACE",
    "LATE_CREATION",
    "NAME_RULE",
    "PARTNER_OPPORTUNITY_RULE",
    "PARTNER_RELATIONSHIPS",
    "PARTNER_RULE",
    "Candidate",
    "Evidence",
    "LinkContext",
    "candidates",
]

#: An opportunity closed at most this long before the activity still counts.
CLOSED_GRACE: Final = timedelta(days=14)
#: An opportunity created at most this long after the activity still counts (late entry).
LATE_CREATION: Final = timedelta(days=30)

CONTACT_PRIMARY: Final = 0.97
CONTACT_SECONDARY: Final = 0.95
CONTACT_SHARED: Final = 0.7
CONTACT_SHADOWED: Final = 0.6
ACCOUNT_CONTACT: Final = 0.97
ACCOUNT_DOMAIN: Final = 0.9
ACCOUNT_SUBDOMAIN: Final = 0.87
ACCOUNT_SHARED_DOMAIN: Final = 0.6
ACCOUNT_THREAD: Final = 0.86
THREAD_CONTRADICTED: Final = 0.6
BOTH_RULES_BONUS: Final = 0.02
OPPORTUNITY_SINGLE: Final = 0.9
OPPORTUNITY_SINGLE_CLOSED: Final = 0.86
OPPORTUNITY_SEVERAL: Final = 0.55
CLOSED_BEFORE_PENALTY: Final = 0.1
ROLE_BONUS: Final = 0.2
NAME_BONUS: Final = 0.25
OWNER_BONUS: Final = 0.04
THREAD_BONUS: Final = 0.35

#: A record the activity names by its CRM id (a task's `WhatId`, `WhoId`, associations).
CRM_REFERENCE: Final = 0.99

#: The rule of an explicit mention of an opportunity's name.
NAME_RULE: Final = "opportunity_name"

#: The method of a link to a partner, reseller or vendor account (never the customer).
PARTNER_RULE: Final = "account_partner"
#: The method of a partner's own opportunity, which links on its own evidence only.
PARTNER_OPPORTUNITY_RULE: Final = "opportunity_partner"
#: Account relationships (`relationship`, read from the CRM's account type) of partners.
PARTNER_RELATIONSHIPS: Final = frozenset({"partner", "reseller", "vendor"})
#: A partner's own opportunity before the evidence of this activity (name, role, thread).
PARTNER_OPPORTUNITY: Final = 0.6

_CLOSED: Final = frozenset({"closed_won", "closed_lost"})
_REPLY_PREFIX: Final = re.compile(
    r"^\s*(?:(?:re|fw|fwd|aw|wg|sv|vs|antw|tr|rif|r)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a candidate was proposed: the rule, the field and value it read, in words."""

    rule: str
    field: str
    value: str
    detail: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """A possible link from the activity to a Contact, Account or Opportunity shard.

    `group` names candidates that are alternatives to one another (one account's
    opportunities, the contacts sharing an address, the accounts sharing a domain);
    None when the candidate stands alone.
    """

    target_shard_id: str
    target_shard_type: str
    confidence: float
    method: str
    evidence: tuple[Evidence, ...]
    group: str | None = None


@dataclass
class LinkContext:
    """What the linker fetched for one activity (see `activity.LookupKeys`).

    - `contacts`: Contact shards whose `email` or `emails` hold a looked-up address.
    - `accounts`: Account shards whose `domain` or `domains` hold a looked-up domain,
      and the accounts (`accountId`) of those contacts.
    - `opportunities`: every Opportunity shard whose `accountId` is one of the accounts.
    - `users`: User shards whose `email` is one of the activity's internal addresses.
    - `referenced`: the shards the activity names by CRM reference (`Activity.references`).
    - `thread_links`: links (status auto or approved) of earlier communications of the
      same thread.
    - `decided`: target shard id → "approved" | "rejected": people's earlier answers
      about this activity.
    - `ancestors`: the parents (`parentId`), grandparents ... of those accounts that are
      not among them: the account hierarchy the rules read.
    """

    contacts: list[Shard] = field(default_factory=list)
    accounts: list[Shard] = field(default_factory=list)
    opportunities: list[Shard] = field(default_factory=list)
    users: list[Shard] = field(default_factory=list)
    referenced: list[Shard] = field(default_factory=list)
    thread_links: list[Link] = field(default_factory=list)
    decided: dict[str, str] = field(default_factory=dict)
    ancestors: list[Shard] = field(default_factory=list)


def candidates(activity: Activity, context: LinkContext, tenant: TenantConfig) -> list[Candidate]:
    """Every candidate link of the activity, contacts first, then accounts, opportunities.

    Shards of another tenant, deleted shards and shards of the wrong type in the context
    are ignored; an internal-only activity has no candidates. What the activity names by
    CRM reference is certain, and settles its type: a task about one deal is not also
    weighed against the account's other deals.
    """
    if activity.internal_only:
        return []
    named = _referenced(activity, context)
    external = {
        p.email: p
        for p in activity.participants
        if not tenant.is_internal(p.email) and not is_no_reply(p.email)
    }
    if not context.thread_links and not (external and (context.contacts or context.accounts)):
        # nothing to weigh: every rule below starts from a contact, an account or a link
        # of the thread (opportunities, users and ancestors only count through those)
        return named
    contacts = _contacts(external, _own(context.contacts, "Contact", activity))
    accounts = _accounts(activity, external, contacts, context, tenant)
    opportunities = _opportunities(activity, contacts, accounts, context, tenant)
    settled = {c.target_shard_type for c in named}
    scored = [*(c.candidate for c in contacts.values()), *accounts.values(), *opportunities]
    return [*named, *(c for c in scored if c.target_shard_type not in settled)]


# --- CRM references --------------------------------------------------------------------------


def _referenced(activity: Activity, context: LinkContext) -> list[Candidate]:
    found: list[Candidate] = []
    for shard_type in ("Contact", "Account", "Opportunity"):
        shards = {s.id: s for s in _own(context.referenced, shard_type, activity)}
        for shard_id, wanted, field_name in activity.references:
            shard = shards.get(shard_id)
            if wanted != shard_type or shard is None:
                continue
            label = _contact_name(shard) if shard_type == "Contact" else _name(shard)
            detail = f"the {activity.shard_type.lower()} names {shard_type.lower()} {label}"
            evidence = Evidence("crm_reference", field_name, shard_id, detail)
            found.append(
                Candidate(shard_id, shard_type, CRM_REFERENCE, "crm_reference", (evidence,))
            )
    return found


# --- contacts --------------------------------------------------------------------------------


@dataclass(slots=True)
class _ContactMatch:
    shard: Shard
    candidate: Candidate


def _contacts(external: dict[str, Participant], found: list[Shard]) -> dict[str, _ContactMatch]:
    by_address: dict[str, list[tuple[Shard, bool]]] = defaultdict(list)
    for contact in found:
        primary = _lower(contact.structured_data.get("email"))
        others = set(_lowers(contact.structured_data.get("emails"))) - {primary}
        for address in external:
            if address == primary:
                by_address[address].append((contact, True))
            elif address in others:
                by_address[address].append((contact, False))
    matches: dict[str, _ContactMatch] = {}
    for address in sorted(by_address):
        entries = by_address[address]
        primaries = [c for c, is_primary in entries if is_primary]
        secondaries = [c for c, is_primary in entries if not is_primary]
        shared = len(entries) > 1
        who = _who(external[address])
        for contact, is_primary in entries:
            name = _contact_name(contact)
            if is_primary and len(primaries) == 1:
                score, rule = CONTACT_PRIMARY, "contact_email"
                detail = f"{who} is the email of contact {name}"
            elif is_primary or (not primaries and len(secondaries) > 1):
                score, rule = CONTACT_SHARED, "contact_shared_email"
                detail = f"{who} is an email of {len(entries)} contacts; {name} is one of them"
            elif not primaries:
                score, rule = CONTACT_SECONDARY, "contact_secondary_email"
                detail = f"{who} is one of the other addresses of contact {name}"
            else:
                score, rule = CONTACT_SHADOWED, "contact_shared_email"
                detail = (
                    f"{who} is listed among the other addresses of contact {name}, "
                    "but it is another contact's main email"
                )
            evidence = Evidence(rule, "email" if is_primary else "emails", address, detail)
            group = f"address:{address}" if shared and score < CONTACT_SECONDARY else None
            _keep_best(matches, contact, Candidate(contact.id, "Contact", score, rule,
                                                   (evidence,), group))  # fmt: skip
    return matches


def _keep_best(matches: dict[str, _ContactMatch], contact: Shard, new: Candidate) -> None:
    old = matches.get(contact.id)
    if old is None:
        matches[contact.id] = _ContactMatch(contact, new)
        return
    best, other = (
        (new, old.candidate) if new.confidence > old.candidate.confidence else (old.candidate, new)
    )
    matches[contact.id] = _ContactMatch(
        contact,
        Candidate(
            best.target_shard_id, "Contact", best.confidence, best.method,
            best.evidence + other.evidence, best.group,
        ),
    )  # fmt: skip


# --- accounts --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Score:
    """Confidences an account collected, by rule, with their evidence."""

    rules: dict[str, float] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)
    group: str | None = None

    def add(self, rule: str, score: float, evidence: Evidence) -> None:
        self.rules[rule] = max(score, self.rules.get(rule, 0.0))
        if evidence not in self.evidence:
            self.evidence.append(evidence)

    def note(self, evidence: Evidence) -> None:
        """Evidence a reviewer reads that scores nothing (what was set aside, and why)."""
        if evidence not in self.evidence:
            self.evidence.append(evidence)

    def candidate(self, account_id: str, auto: float, partner: str | None) -> Candidate:
        scores = sorted(self.rules.values(), reverse=True)
        best = scores[0]
        if len(scores) > 1 and scores[1] >= auto:
            best = min(0.99, best + BOTH_RULES_BONUS)  # two independent rules agree
        method = max(self.rules.items(), key=lambda item: item[1])[0]
        evidence = tuple(self.evidence)
        if partner is not None:
            method = PARTNER_RULE
            detail = (
                f"the account is a {partner} of the tenant: linked as such, not as the customer"
            )
            evidence += (Evidence(PARTNER_RULE, "relationship", partner, detail),)
        return Candidate(account_id, "Account", round(best, 4), method, evidence, self.group)


@dataclass(frozen=True, slots=True)
class _Support:
    """One participant's evidence for one account: through its contact, or its domain."""

    account_id: str
    rule: str
    score: float
    evidence: Evidence
    #: a contact record or the account's main domain says so (not a domain it also lists)
    strong: bool
    #: the shared-domain group, when several unrelated accounts claim the domain
    domain_key: str | None = None


@dataclass(frozen=True, slots=True)
class _Hierarchy:
    """Accounts' parents (`parentId`), as far as the fetched accounts and ancestors reach."""

    parents: dict[str, str]

    @classmethod
    def of(cls, accounts: Iterable[Shard]) -> _Hierarchy:
        parents = {}
        for account in accounts:
            parent = account.structured_data.get("parentId")
            if isinstance(parent, str) and parent and parent != account.id:
                parents[account.id] = parent
        return cls(parents)

    def above(self, account_id: str) -> list[str]:
        """Its parent, the parent's parent ... (a cycle in the CRM's data stops the walk)."""
        found: list[str] = []
        at = self.parents.get(account_id)
        while at is not None and at != account_id and at not in found:
            found.append(at)
            at = self.parents.get(at)
        return found

    def related(self, a: str, b: str) -> bool:
        """True when one account is a parent (or grandparent ...) of the other."""
        return a in self.above(b) or b in self.above(a)


def _accounts(
    activity: Activity,
    external: dict[str, Participant],
    contacts: dict[str, _ContactMatch],
    context: LinkContext,
    tenant: TenantConfig,
) -> dict[str, Candidate]:
    accounts = {a.id: a for a in _own(context.accounts, "Account", activity)}
    hierarchy = _Hierarchy.of(_own([*context.accounts, *context.ancestors], "Account", activity))
    supports: dict[str, list[_Support]] = defaultdict(list)
    for match in contacts.values():
        account_id = match.shard.structured_data.get("accountId")
        if not isinstance(account_id, str) or account_id not in accounts:
            continue
        via = match.candidate
        score = ACCOUNT_CONTACT if via.confidence >= CONTACT_SECONDARY else via.confidence
        detail = (
            f"contact {_contact_name(match.shard)} ({via.evidence[0].value}) belongs to "
            f"account {_account_name(accounts[account_id])}"
        )
        evidence = Evidence("account_contact", "accountId", account_id, detail)
        supports[via.evidence[0].value].append(
            _Support(account_id, "account_contact", score, evidence, strong=True)
        )
    if not activity.bulk:  # bulk mail never links by domain alone
        _domain_matches(external, accounts, supports, tenant)
    scores: dict[str, _Score] = defaultdict(_Score)
    for address in sorted(supports):
        _most_specific(supports[address], hierarchy, accounts, external.get(address), scores)
    _thread_accounts(activity, context.thread_links, accounts, scores, hierarchy, tenant)
    auto = tenant.linking.auto_threshold
    return {
        account_id: s.candidate(account_id, auto, _partner(accounts.get(account_id), tenant))
        for account_id, s in scores.items()
    }


def _most_specific(
    found: list[_Support],
    hierarchy: _Hierarchy,
    accounts: dict[str, Shard],
    who: Participant | None,
    scores: dict[str, _Score],
) -> None:
    """Score one participant's supports; of a parent and its subsidiary only the more
    specific counts: a contact record or the account's main domain before a domain it also
    lists, then the deeper account of the hierarchy."""

    rank: dict[str, tuple[bool, int]] = {}
    for s in found:  # an account ranks by its best evidence from this participant
        own = (s.strong, len(hierarchy.above(s.account_id)))
        rank[s.account_id] = max(own, rank.get(s.account_id, own))
    beaten: dict[str, str] = {}
    for account_id in rank:
        better = [
            other for other in rank
            if hierarchy.related(account_id, other) and rank[other] > rank[account_id]
        ]  # fmt: skip
        if better:
            beaten[account_id] = max(better, key=lambda other: rank[other])
    kept = [s for s in found if s.account_id not in beaten]
    for loser, winner in sorted(beaten.items()):
        while winner in beaten:  # the winner's own better relative
            winner = beaten[winner]
        lost = _account_name(accounts[loser]) if loser in accounts else loser
        person = _who(who) if who is not None else "this participant"
        detail = (
            f"{person} also matches account {lost}, of the same hierarchy; the more specific "
            f"account {_account_name(accounts[winner])} is linked, not {lost}"
        )
        scores[winner].note(Evidence("account_hierarchy", "parentId", loser, detail))
    owners: dict[str, set[str]] = defaultdict(set)
    for s in kept:
        if s.domain_key is not None:
            owners[s.domain_key].add(s.account_id)
    for s in kept:
        rule, score, evidence = s.rule, s.score, s.evidence
        if s.domain_key is not None and len(owners[s.domain_key]) > 1:
            name = _account_name(accounts[s.account_id])
            rule, score = "account_shared_domain", ACCOUNT_SHARED_DOMAIN
            detail = (
                f"domain {s.domain_key} of {_who(who) if who else s.domain_key} is claimed by "
                f"{len(owners[s.domain_key])} accounts, {name} too"
            )
            evidence = Evidence(rule, "domains", s.domain_key, detail)
            scores[s.account_id].group = f"domain:{s.domain_key}"
        scores[s.account_id].add(rule, score, evidence)


def _domain_matches(
    external: dict[str, Participant],
    accounts: dict[str, Shard],
    supports: dict[str, list[_Support]],
    tenant: TenantConfig,
) -> None:
    owned: dict[str, list[str]] = defaultdict(list)
    for account in accounts.values():
        for domain in sorted(_account_domains(account, tenant)):
            owned[domain].append(account.id)
    for address in sorted(external):
        if tenant.is_free_mail(address):
            continue
        keys = domain_keys(domain_of(address))
        levels = [(key, owned[key]) for key in keys if owned.get(key)]
        if not levels:
            continue
        # The most specific domain an account holds decides: emea.acme.com's account,
        # not acme.com's, owns anna@emea.acme.com.
        who = _who(external[address])
        key, owners = levels[0]
        exact = key == keys[0]
        for account_id in owners:
            account = accounts[account_id]
            name = _account_name(account)
            if exact:
                rule, score = "account_domain", ACCOUNT_DOMAIN
                detail = f"domain {key} of {who} is a domain of account {name}"
            else:
                rule, score = "account_subdomain", ACCOUNT_SUBDOMAIN
                detail = f"{who} writes from a subdomain of {key}, a domain of account {name}"
            main = _lower(account.structured_data.get("domain")) == key
            supports[address].append(
                _Support(account_id, rule, score, Evidence(rule, "domains", key, detail), main, key)
            )


def _thread_accounts(
    activity: Activity,
    thread_links: list[Link],
    accounts: dict[str, Shard],
    scores: dict[str, _Score],
    hierarchy: _Hierarchy,
    tenant: TenantConfig,
) -> None:
    """A reply keeps its thread's account, unless this message's people name others only.

    Where this message's people name several accounts (a shared domain), the thread's
    account is the one meant. Partners taking part name no other customer; a subsidiary
    taking part supersedes its parent the thread linked.
    """
    named_here = {
        account_id for account_id in scores if _partner(accounts.get(account_id), tenant) is None
    }
    for link in _unique_links(thread_links, "Account"):
        target = link.target_shard_id
        if any(target in hierarchy.above(here) for here in named_here):
            continue
        account = accounts.get(target)
        name = _account_name(account) if account is not None else target
        detail = f"an earlier message of this thread is linked to account {name} ({link.status})"
        if named_here and target not in named_here:
            detail += "; but this message's people belong to other accounts"
            score = THREAD_CONTRADICTED
        else:
            score = ACCOUNT_THREAD
        evidence = Evidence("account_thread", "threadId", activity.thread_id or "", detail)
        scores[target].add("account_thread", score, evidence)


def _partner(account: Shard | None, tenant: TenantConfig) -> str | None:
    """What a partner account is to the tenant (partner, reseller, vendor), None for others.

    From the CRM's account type (`relationship`), or the tenant's `partnerDomains`.
    """
    if account is None:
        return None
    relationship = account.structured_data.get("relationship")
    if isinstance(relationship, str) and relationship in PARTNER_RELATIONSHIPS:
        return relationship
    data = account.structured_data
    domains = [*_lowers(data.get("domains")), *filter(None, [_lower(data.get("domain"))])]
    if any(tenant.is_partner_domain(d) for d in domains):
        return "partner"
    return None


# --- opportunities ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Opportunity:
    shard: Shard
    state: str  # open | late | open_then | closed_recently
    distance: int  # days between close date and the activity (order of ties)
    raw: float = 0.0
    evidence: list[Evidence] = field(default_factory=list)
    method: str = ""
    #: this activity's own evidence names it (contact role, name, thread), not the account
    own: bool = False


def _opportunities(
    activity: Activity,
    contacts: dict[str, _ContactMatch],
    accounts: dict[str, Candidate],
    context: LinkContext,
    tenant: TenantConfig,
) -> list[Candidate]:
    day = activity.occurred_at.astimezone(tenant.zone).date() if activity.occurred_at else None
    account_shards = {a.id: a for a in _own(context.accounts, "Account", activity)}
    known = _own(context.opportunities, "Opportunity", activity)
    by_account: dict[str, list[_Opportunity]] = defaultdict(list)
    for shard in known:
        account_id = shard.structured_data.get("accountId")
        if not isinstance(account_id, str) or account_id not in accounts:
            continue
        state = _state(shard, day, tenant)
        if state is not None:
            by_account[account_id].append(_Opportunity(shard, state, _distance(shard, day)))
    people = _people_ids(activity, contacts, context, tenant)
    thread = {k.target_shard_id: k for k in _unique_links(context.thread_links, "Opportunity")}
    suggest = tenant.linking.suggest_threshold
    customers = any(c.method != PARTNER_RULE and c.confidence >= suggest for c in accounts.values())
    found: list[Candidate] = []
    for account_id in sorted(by_account):
        partner = accounts[account_id].method == PARTNER_RULE
        if partner and customers:
            continue  # a partner copied on a customer's mail: its own deals are not the topic
        group = by_account[account_id]
        _score(activity, group, account_shards.get(account_id), people, thread, day, partner)
        if partner:
            group = [o for o in group if o.own]
        group.sort(key=lambda o: (-o.raw, o.distance, _name(o.shard), o.shard.id))
        account_confidence = accounts[account_id].confidence
        for o in group:
            confidence = _squash(o.raw)
            if account_confidence < tenant.linking.auto_threshold:
                confidence = min(confidence, account_confidence)  # no surer than its account
            found.append(
                Candidate(
                    o.shard.id,
                    "Opportunity",
                    confidence,
                    o.method,
                    tuple(o.evidence),
                    f"opportunities:{account_id}",
                )
            )
    # The thread's opportunities whose record is here were weighed above (or did not
    # count on this day); the others' accounts were not fetched: inherit them as such.
    seen = {s.id for s in context.opportunities}
    inherited = {target: k for target, k in thread.items() if target not in seen}
    found.extend(_thread_opportunities(activity, inherited, accounts))
    return found


def _state(opportunity: Shard, day: date | None, tenant: TenantConfig) -> str | None:
    """How the opportunity stood on the activity's day; None when it did not count."""
    data = opportunity.structured_data
    status = data.get("status")
    closed = status in _CLOSED or (status is None and data.get("isClosed") is True)
    if day is None:
        return None if closed else "open"
    created = _day(data.get("createdDate"), tenant)
    if created is not None and created > day + LATE_CREATION:
        return None
    if not closed:
        return "late" if created is not None and created > day else "open"
    close = _date(data.get("closeDate"))
    if close is None:
        return None
    if close >= day:
        return "open_then"
    if close >= day - CLOSED_GRACE:
        return "closed_recently"
    return None


def _score(
    activity: Activity,
    group: list[_Opportunity],
    account: Shard | None,
    people: tuple[dict[str, Participant], dict[str, Participant]],
    thread: dict[str, Link],
    day: date | None,
    partner: bool = False,
) -> None:
    contact_people, user_people = people
    account_name = _account_name(account) if account is not None else "the account"
    single = len(group) == 1
    phrases = {
        o.shard.id: phrase
        for o in group
        if (phrase := distinctive_phrase(_name(o.shard), _plain_account_name(account)))
    }
    mentions, stale = _mentions(activity, phrases)
    on = f"on {day.isoformat()}" if day else "now"
    for o in group:
        name = _name(o.shard)
        bonuses: dict[str, float] = {}
        closed_before = o.state == "closed_recently"
        if partner:
            o.raw = PARTNER_OPPORTUNITY - (CLOSED_BEFORE_PENALTY if closed_before else 0.0)
            o.method = PARTNER_OPPORTUNITY_RULE
            detail = (
                f"{name} is an opportunity of {account_name}, a partner of the tenant, that "
                f"counts {on}; a partner's own deal links on this activity's own evidence only"
            )
        elif single:
            o.raw = OPPORTUNITY_SINGLE_CLOSED if closed_before else OPPORTUNITY_SINGLE
            o.method = "opportunity_recently_closed" if closed_before else "opportunity_single_open"
            detail = f"{name} is the only opportunity of {account_name} that counts {on}"
        else:
            o.raw = OPPORTUNITY_SEVERAL - (CLOSED_BEFORE_PENALTY if closed_before else 0.0)
            o.method = "opportunity_open"
            detail = (
                f"{name} is one of {len(group)} opportunities of {account_name} that count {on}"
            )
        o.evidence.append(Evidence(o.method, "status", _status(o.shard), f"{detail}: {_when(o)}"))
        for role in _roles(o.shard):
            who = contact_people.get(role.get("contactId", ""))
            if who is not None:
                title = f" ({role['role']})" if role.get("role") else ""
                bonuses["opportunity_contact_role"] = ROLE_BONUS
                o.evidence.append(
                    Evidence(
                        "opportunity_contact_role",
                        "contactRoles",
                        str(role["contactId"]),
                        f"{_who(who)} has a contact role{title} on {name}",
                    )
                )
        owner = o.shard.structured_data.get("ownerId")
        if isinstance(owner, str) and owner in user_people:
            bonuses["opportunity_owner"] = OWNER_BONUS
            o.evidence.append(
                Evidence(
                    "opportunity_owner",
                    "ownerId",
                    owner,
                    f"the opportunity's owner {_who(user_people[owner])} takes part",
                )
            )
        if o.shard.id in stale:
            o.evidence.append(
                Evidence(
                    "opportunity_stale_subject",
                    "name",
                    name,
                    f'the reply\'s subject names "{stale[o.shard.id]}" of {name}, but its new '
                    "text names another opportunity: not counted",
                )
            )
        mention = mentions.get(o.shard.id)
        if mention is not None:
            bonuses[NAME_RULE] = NAME_BONUS
            o.evidence.append(
                Evidence(
                    NAME_RULE,
                    "name",
                    name,
                    f'the {_where(activity, mention.where)} names "{mention.phrase}" of {name}',
                )
            )
        link = thread.get(o.shard.id)
        if link is not None:
            others_named = any(k != o.shard.id for k in mentions) and mention is None
            detail = f"an earlier message of this thread is linked to {name} ({link.status})"
            if others_named:
                detail += "; not counted: this message names another opportunity"
            else:
                bonuses["opportunity_thread"] = THREAD_BONUS
            o.evidence.append(
                Evidence("opportunity_thread", "threadId", activity.thread_id or "", detail)
            )
        if bonuses:
            o.raw += sum(bonuses.values())
            strongest = max(bonuses.items(), key=lambda item: item[1])[0]
            if not single or partner or strongest != "opportunity_owner":
                o.method = strongest
        o.own = bool(set(bonuses) - {"opportunity_owner"})


def _mentions(
    activity: Activity, phrases: dict[str, str]
) -> tuple[dict[str, Mention], dict[str, str]]:
    """Opportunities the activity names, and those only a stale reply subject names.

    A reply keeps its thread's subject: when its new text names other opportunities and
    none the subject names, the subject is the thread's past, not this message's news.
    """
    in_text = find_mentions(phrases, {"text": activity.text})
    in_subject = find_mentions(phrases, {"subject": activity.subject or ""})
    is_reply = bool(_REPLY_PREFIX.match(activity.subject or ""))
    if is_reply and in_text and not set(in_subject) & set(in_text):
        return in_text, {k: m.phrase for k, m in in_subject.items()}
    return {**in_text, **in_subject}, {}


def _thread_opportunities(
    activity: Activity, thread: dict[str, Link], accounts: dict[str, Candidate]
) -> list[Candidate]:
    """The thread's opportunities, kept when this message's people name no other account."""
    contradicted = any(a.method not in ("account_thread", PARTNER_RULE) for a in accounts.values())
    score = THREAD_CONTRADICTED if contradicted else ACCOUNT_THREAD
    found = []
    for target, link in thread.items():
        detail = f"an earlier message of this thread is linked to this opportunity ({link.status})"
        if contradicted:
            detail += "; but this message's people belong to other accounts"
        evidence = Evidence("opportunity_thread", "threadId", activity.thread_id or "", detail)
        found.append(
            Candidate(
                target, "Opportunity", score, "opportunity_thread", (evidence,),
                "opportunities:thread",
            )
        )  # fmt: skip
    return found


def _people_ids(
    activity: Activity,
    contacts: dict[str, _ContactMatch],
    context: LinkContext,
    tenant: TenantConfig,
) -> tuple[dict[str, Participant], dict[str, Participant]]:
    """Participants by the id of their contact shard, and by the id of their user shard."""
    by_contact: dict[str, Participant] = {}
    for contact_id, match in contacts.items():
        who = activity.participant(match.candidate.evidence[0].value)
        if who is not None:
            by_contact[contact_id] = who
    by_user: dict[str, Participant] = {}
    internal = {p.email: p for p in activity.participants if tenant.is_internal(p.email)}
    for user in _own(context.users, "User", activity):
        email = _lower(user.structured_data.get("email"))
        if email in internal:
            by_user[user.id] = internal[email]
    return by_contact, by_user


# --- small readers ---------------------------------------------------------------------------


def _own(shards: Iterable[Shard], shard_type: str, activity: Activity) -> list[Shard]:
    """The tenant's own live shards of one type: isolation is checked here, always."""
    return [
        s
        for s in shards
        if s.tenant_id == activity.tenant_id
        and s.shard_type == shard_type
        and s.structured_data.get("deleted") is not True
    ]


def _unique_links(links: Iterable[Link], target_type: str) -> list[Link]:
    """One link per target of `target_type` (an approved one where there is one), by target
    id: what a thread passes on is its targets and their status, not the order of its
    messages (`linking.service._covered_after` relies on it)."""
    seen: dict[str, Link] = {}
    for link in links:
        if link.target_shard_type != target_type or link.status not in ("auto", "approved"):
            continue
        kept = seen.get(link.target_shard_id)
        if kept is None or (kept.status != "approved" and link.status == "approved"):
            seen[link.target_shard_id] = link
    return [seen[target] for target in sorted(seen)]


def _account_domains(account: Shard, tenant: TenantConfig) -> set[str]:
    data = account.structured_data
    found = set(_lowers(data.get("domains")))
    if (domain := _lower(data.get("domain"))) is not None:
        found.add(domain)
    return {
        d
        for d in found
        if domain_keys(d)
        and not tenant.is_free_mail(f"x@{d}")
        and not tenant.is_internal(f"x@{d}")
        and not tenant.is_excluded(f"x@{d}")
    }


def _roles(opportunity: Shard) -> list[dict[str, Any]]:
    roles = opportunity.structured_data.get("contactRoles")
    found = [r for r in roles if isinstance(r, dict)] if isinstance(roles, list) else []
    primary = opportunity.structured_data.get("primaryContactId")
    if isinstance(primary, str) and all(r.get("contactId") != primary for r in found):
        found.append({"contactId": primary, "role": "primary contact"})
    return found


def _squash(raw: float) -> float:
    """Scores above 0.9 approach 0.98 without reaching it, keeping their order."""
    if raw <= OPPORTUNITY_SINGLE:
        return round(max(raw, 0.0), 4)
    return round(OPPORTUNITY_SINGLE + 0.08 * (1 - math.exp(-(raw - OPPORTUNITY_SINGLE) / 0.15)), 4)


def _when(o: _Opportunity) -> str:
    data = o.shard.structured_data
    if o.state == "late":
        created = str(data.get("createdDate"))[:10]
        return f"open, created {created}, after this activity (within {LATE_CREATION.days} days)"
    if o.state == "open_then":
        return f"open then, closed {data.get('closeDate')}, after this activity"
    if o.state == "closed_recently":
        return f"closed {data.get('closeDate')}, within {CLOSED_GRACE.days} days before it"
    return "open"


def _where(activity: Activity, where: str) -> str:
    kind = kind_of(activity.shard_type)
    if kind is None:
        return where
    return kind.subject_label if where == "subject" else kind.text_label


def _distance(opportunity: Shard, day: date | None) -> int:
    close = _date(opportunity.structured_data.get("closeDate"))
    if close is None or day is None:
        return 1_000_000
    return abs((close - day).days)


def _date(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _day(value: Any, tenant: TenantConfig) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return _date(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(tenant.zone).date()


def _status(opportunity: Shard) -> str:
    data = opportunity.structured_data
    return str(data.get("status") or ("closed" if data.get("isClosed") else "open"))


def _name(shard: Shard) -> str:
    name = shard.structured_data.get("name")
    return name if isinstance(name, str) and name else shard.id


def _plain_account_name(account: Shard | None) -> str | None:
    if account is None:
        return None
    name = account.structured_data.get("name")
    return name if isinstance(name, str) else None


def _account_name(account: Shard) -> str:
    return _plain_account_name(account) or account.id


def _contact_name(contact: Shard) -> str:
    data = contact.structured_data
    name = data.get("fullName") or " ".join(
        str(data[k]) for k in ("firstName", "lastName") if data.get(k)
    )
    return str(name) if name else contact.id


def _who(p: Participant) -> str:
    return f"{p.name} <{p.email}> ({p.role})" if p.name else f"{p.email} ({p.role})"


def _lower(value: Any) -> str | None:
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def _lowers(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v.strip().lower() for v in value if isinstance(v, str) and v.strip()]
