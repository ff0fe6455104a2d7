"""The linker: look-ups in the store, the linking rules, and writing what they decide.

Everything the rules need is fetched through the store's look-up index (contacts by
email, accounts by domain, opportunities by account, users by email, a thread's earlier
communications): nothing scans a tenant. Writes are optimistic (etag) so several
workers sharing `shard.events` partitions stay correct; a person's decision is never
overridden (`shards.links`, `decide`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from core.tenants import TenantDirectory
from linking.activity import Activity, activity_of, lookup_keys, occurred_at
from linking.decisions import decide
from linking.rules import Candidate, LinkContext, candidates
from shards.kinds import ACTIVITY_TYPES
from shards.links import write_links
from shards.model import Link, Shard
from shards.store import ShardStore
from shards.suggestions import SuggestedLink, suggestion_id
from streams.models import LinkEvent, ShardEvent

__all__ = ["LinkWriter", "Linker", "link_change_events"]

logger = logging.getLogger(__name__)

#: CRM shards whose arrival or change can give earlier communications a target.
_TRIGGERS = frozenset({"Contact", "Account", "Opportunity"})


class LinkWriter(Protocol):
    """Where link decisions are announced (`link.events`)."""

    async def link_events(self, events: Iterable[LinkEvent]) -> None:
        """Emit the events."""


class Linker:
    """Links communications to contacts, accounts and opportunities."""

    def __init__(
        self,
        store: ShardStore,
        tenants: TenantDirectory,
        writer: LinkWriter,
        *,
        window: timedelta = timedelta(days=30),
        reevaluate_limit: int = 1000,
    ) -> None:
        self._store = store
        self._tenants = tenants
        self._writer = writer
        self._window = window
        self._limit = reevaluate_limit

    async def process(self, events: Sequence[ShardEvent]) -> int:
        """Link the communications these shard events name or concern; how many were linked."""
        todo: dict[tuple[str, str], None] = {}
        for event in events:
            if event.shard_type in ACTIVITY_TYPES:
                todo[(event.tenant_id, event.shard_id)] = None
            elif event.shard_type in _TRIGGERS and not _only_ml_fields(event):
                for shard_id in await self._concerned(event):
                    todo[(event.tenant_id, shard_id)] = None
        for tenant_id, shard_id in todo:
            await self.link(tenant_id, shard_id)
        return len(todo)

    async def link(self, tenant_id: str, shard_id: str) -> None:
        """Evaluate one communication and write links, suggestions and their events."""
        shard = await self._store.get(tenant_id, shard_id)
        if shard is None:
            return
        tenant = self._tenants.of(tenant_id)
        activity = activity_of(shard, tenant)
        if activity is None:
            return
        context = await self._context(shard, activity, tenant_id)
        decision = decide(activity, candidates(activity, context, tenant), tenant, context.decided)
        now = datetime.now(UTC)
        automatic = [_link(c, "auto") for c in decision.links]
        _, new, removed = await write_links(self._store, tenant_id, shard_id, automatic)
        events = link_change_events(tenant_id, shard_id, new, removed, now)
        for suggestion in decision.suggestions:
            stored = self._suggestion(shard, activity, suggestion.candidate, now)
            stored.alternatives = [_candidate_doc(a) for a in suggestion.alternatives]
            stored.reason = suggestion.reason
            if await self._store.put_suggestion(stored):
                c = suggestion.candidate
                events.append(
                    _event("link.suggested", tenant_id, shard_id, c.target_shard_id,
                           c.target_shard_type, c.confidence, c.method, "pending_review", now)
                )  # fmt: skip
        await self._writer.link_events(events)

    async def _context(self, shard: Shard, activity: Activity, tenant_id: str) -> LinkContext:
        tenant = self._tenants.of(tenant_id)
        keys = lookup_keys(activity, tenant)
        find = self._store.find
        referenced = [
            found
            for shard_id in sorted(keys.references)
            if (found := await self._store.get(tenant_id, shard_id)) is not None
        ]
        contacts = await find(tenant_id, "Contact", "email", keys.emails)
        accounts = {a.id: a for a in await find(tenant_id, "Account", "domain", keys.domains)}
        for contact in contacts:
            account_id = contact.structured_data.get("accountId")
            if isinstance(account_id, str) and account_id not in accounts:
                account = await self._store.get(tenant_id, account_id)
                if account is not None:
                    accounts[account.id] = account
        opportunities = await find(tenant_id, "Opportunity", "accountId", accounts)
        users = await find(tenant_id, "User", "email", keys.internal_emails)
        return LinkContext(
            contacts=contacts,
            accounts=list(accounts.values()),
            opportunities=opportunities,
            users=users,
            referenced=referenced,
            thread_links=await self._thread_links(shard, activity),
            decided=await self._store.decisions_for(tenant_id, shard.id),
        )

    async def _thread_links(self, shard: Shard, activity: Activity) -> list[Link]:
        if not activity.thread_id:
            return []
        links: list[Link] = []
        for shard_type in ("Email", "Message"):
            for earlier in await self._store.find(
                shard.tenant_id, shard_type, "threadId", [activity.thread_id]
            ):
                if earlier.id == shard.id or not _before(earlier, activity.occurred_at):
                    continue
                links.extend(k for k in earlier.links if k.status in ("auto", "approved"))
        return links

    async def _concerned(self, event: ShardEvent) -> list[str]:
        """Activities a new or changed contact, account or opportunity may concern."""
        shard = await self._store.get(event.tenant_id, event.shard_id)
        if shard is None:
            return []
        data = shard.structured_data
        # Activities that name it by CRM reference (a task about this deal), and those
        # whose people or their domains it may now match.
        queries: list[tuple[str, list[str]]] = [("reference", [shard.id])]
        if shard.shard_type == "Account":
            queries.append(("domain", _strings(data.get("domain"), data.get("domains"))))
        elif shard.shard_type == "Opportunity":
            account_id = data.get("accountId")
            account = await self._store.get(event.tenant_id, account_id) if account_id else None
            if account is not None:
                a = account.structured_data
                queries += [
                    ("domain", _strings(a.get("domain"), a.get("domains"))),
                    # mail already tied to the account: personal addresses, thread replies
                    ("linkedTarget", [account.id]),
                ]
        else:
            queries.append(("participant", _strings(data.get("email"), data.get("emails"))))
        since = datetime.now(UTC) - self._window
        found: dict[str, None] = {}
        for key, values in queries:
            for shard_type in sorted(ACTIVITY_TYPES):
                for activity in await self._store.find(event.tenant_id, shard_type, key, values):
                    when = occurred_at(activity)
                    if when is None or when >= since:
                        found[activity.id] = None
        return list(found)[: self._limit]

    def _suggestion(
        self, shard: Shard, activity: Activity, candidate: Candidate, now: datetime
    ) -> SuggestedLink:
        return SuggestedLink(
            id=suggestion_id(shard.tenant_id, shard.id, candidate.target_shard_id),
            tenant_id=shard.tenant_id,
            source_shard_id=shard.id,
            source_shard_type=shard.shard_type,
            target_shard_id=candidate.target_shard_id,
            target_shard_type=candidate.target_shard_type,
            confidence=candidate.confidence,
            method=candidate.method,
            evidence=[_evidence_doc(e) for e in candidate.evidence],
            source_summary={
                "subject": activity.subject,
                "participants": [p.email for p in activity.participants],
                "occurredAt": activity.occurred_at.isoformat() if activity.occurred_at else None,
            },
            created_at=now,
        )


def _link(candidate: Candidate, status: str) -> Link:
    return Link.model_validate(
        {
            "targetShardId": candidate.target_shard_id,
            "targetShardType": candidate.target_shard_type,
            "confidence": candidate.confidence,
            "method": candidate.method,
            "status": status,
            "evidence": [_evidence_doc(e) for e in candidate.evidence],
        }
    )


def _evidence_doc(evidence: Any) -> dict[str, Any]:
    return {
        "rule": evidence.rule,
        "field": evidence.field,
        "value": evidence.value,
        "detail": evidence.detail,
    }


def _candidate_doc(candidate: Candidate) -> dict[str, Any]:
    return {
        "targetShardId": candidate.target_shard_id,
        "targetShardType": candidate.target_shard_type,
        "confidence": candidate.confidence,
        "method": candidate.method,
        "evidence": [_evidence_doc(e) for e in candidate.evidence],
    }


def link_change_events(
    tenant_id: str, shard_id: str, new: Iterable[Link], removed: Iterable[Link], at: datetime
) -> list[LinkEvent]:
    """`link.created` for each new automatic link; `link.rejected` (status `removed`) for
    each automatic link a re-evaluation took away, so consumers (the ML fields) drop it."""
    created = [
        _event("link.created", tenant_id, shard_id, link.target_shard_id,
               link.target_shard_type, link.confidence, link.method, "auto", at)
        for link in new if link.status == "auto"
    ]  # fmt: skip
    gone = [
        _event("link.rejected", tenant_id, shard_id, link.target_shard_id,
               link.target_shard_type, link.confidence, link.method, "removed", at)
        for link in removed
    ]  # fmt: skip
    return created + gone


def _event(
    kind: Any,
    tenant_id: str,
    shard_id: str,
    target_id: str,
    target_type: str,
    confidence: float,
    method: str,
    status: str,
    at: datetime,
) -> LinkEvent:
    return LinkEvent(
        type=kind,
        event_id=f"{shard_id}:{target_id}:{status}",
        tenant_id=tenant_id,
        shard_id=shard_id,
        target_shard_id=target_id,
        target_shard_type=target_type,
        confidence=confidence,
        method=method,
        status=status,
        occurred_at=at,
    )


def _before(shard: Shard, at: datetime | None) -> bool:
    when = occurred_at(shard)
    return at is None or when is None or when <= at


def _strings(*values: Any) -> list[str]:
    items = [i for v in values for i in (v if isinstance(v, list) else [v])]
    return [i.strip().lower() for i in items if isinstance(i, str) and i.strip()]


def _only_ml_fields(event: ShardEvent) -> bool:
    """A write-back of ML fields: nothing linking reads has changed."""
    return bool(event.changed_fields) and set(event.changed_fields) <= {"mlFields"}
