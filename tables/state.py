"""The ML-field state of an opportunity, how events change it, and its rebuild from the store.

Every change is a snapshot read from the store when the event is handled — "activity A
counts for opportunity O with these facts", "A no longer counts for O", "O's own
fields are now …" — never a delta. Applying a snapshot twice, or an older one followed
by the newer, leaves the same state, so a replayed or re-linked activity is counted
once and a crash between a table write and an offset commit costs nothing. The full
rebuild reads the same facts with the same functions (`tables.facts`), so the two
paths agree by construction; `tests/unit/test_ml_fields_property.py` checks it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from core.tenants import TenantDirectory
from shards.kinds import ACTIVITY_TYPES
from shards.model import Shard
from shards.store import ShardStore
from streams.models import LinkEvent, ShardEvent
from tables.facts import (
    Facts,
    activity_facts,
    engaged_addresses,
    opportunity_facts,
    opportunity_links,
    seniority_rank,
)
from tables.features import OpportunityState

__all__ = [
    "Change",
    "ChangeRouter",
    "apply_changes",
    "rebuild_state",
    "table_key",
]

#: Shard fields whose change cannot alter an activity's facts or an opportunity's.
_NOT_FEATURES = frozenset({"mlFields"})


def table_key(tenant_id: str, opportunity_id: str) -> str:
    """The table's key (and the change topic's): `<tenantId>:<opportunityShardId>`."""
    return f"{tenant_id}:{opportunity_id}"


@dataclass(frozen=True, slots=True)
class Change:
    """One snapshot for one opportunity."""

    tenant_id: str
    opportunity_id: str
    kind: Literal["activity", "opportunity"]
    facts: Facts | None
    activity_id: str | None = None
    #: the version of the shard the snapshot was read from: of two snapshots of the
    #: same shard, the one read later (higher version) wins whatever the arrival order
    version: int = 0

    @property
    def key(self) -> str:
        return table_key(self.tenant_id, self.opportunity_id)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "tenantId": self.tenant_id,
                "opportunityId": self.opportunity_id,
                "kind": self.kind,
                "activityId": self.activity_id,
                "facts": self.facts,
                "version": self.version,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Change:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("kind") not in ("activity", "opportunity"):
            message = "not an ML-field change"
            raise ValueError(message)
        if doc["kind"] == "activity" and not isinstance(doc.get("activityId"), str):
            message = "an activity change needs activityId"
            raise ValueError(message)
        facts = doc.get("facts")
        if facts is not None and not isinstance(facts, dict):
            message = "facts must be an object or null"
            raise ValueError(message)
        return cls(
            tenant_id=str(doc["tenantId"]),
            opportunity_id=str(doc["opportunityId"]),
            kind=doc["kind"],
            facts=facts,
            activity_id=doc.get("activityId"),
            version=int(doc.get("version") or 0),
        )


def apply_changes(value: dict[str, Any] | None, changes: Iterable[Change]) -> dict[str, Any]:
    """The table value after `changes`; the input is not modified.

    A snapshot older than the one applied last for the same shard (lower version) is
    ignored, so two agents' snapshots of one activity may arrive in either order.
    Versions of removed activities are kept (`ver`) for the same reason.
    """
    value = value or {}
    opp = value.get("opp")
    opp_version = int(value.get("oppv") or 0)
    acts: dict[str, Facts] = dict(value.get("acts") or {})
    versions: dict[str, int] = dict(value.get("ver") or {})
    for change in changes:
        if change.kind == "opportunity":
            if change.version >= opp_version:
                opp, opp_version = change.facts, change.version
        elif change.activity_id is not None:
            if change.version < versions.get(change.activity_id, 0):
                continue
            versions[change.activity_id] = change.version
            if change.facts is None:
                acts.pop(change.activity_id, None)
            else:
                acts[change.activity_id] = change.facts
    return {"opp": opp, "oppv": opp_version, "acts": acts, "ver": versions}


class ChangeRouter:
    """`shard.events` and `link.events` → snapshots keyed by the opportunities concerned."""

    def __init__(self, store: ShardStore, tenants: TenantDirectory) -> None:
        self._store = store
        self._tenants = tenants

    async def route(self, events: Sequence[ShardEvent | LinkEvent]) -> list[Change]:
        """The snapshots these events call for, each read once per batch."""
        # (tenant, activity) → opportunities named by a link event (maybe no longer linked)
        activities: dict[tuple[str, str], set[str]] = {}
        opportunities: dict[tuple[str, str], None] = {}
        for event in events:
            if isinstance(event, LinkEvent):
                if event.target_shard_type == "Opportunity":
                    named = activities.setdefault((event.tenant_id, event.shard_id), set())
                    named.add(event.target_shard_id)
                continue
            if event.changed_fields and set(event.changed_fields) <= _NOT_FEATURES:
                continue
            if event.shard_type == "Opportunity":
                opportunities[(event.tenant_id, event.shard_id)] = None
            elif event.shard_type in ACTIVITY_TYPES:
                activities.setdefault((event.tenant_id, event.shard_id), set())
            elif event.shard_type == "Contact" and _title_may_matter(event):
                for activity_id in await self._engaging(event.tenant_id, event.shard_id):
                    activities.setdefault((event.tenant_id, activity_id), set())
        changes: list[Change] = []
        for tenant_id, opportunity_id in opportunities:
            shard = await self._store.get(tenant_id, opportunity_id)
            facts = opportunity_facts(shard) if shard is not None else None
            version = shard.version if shard is not None else 0
            changes.append(Change(tenant_id, opportunity_id, "opportunity", facts, None, version))
        for (tenant_id, activity_id), named in activities.items():
            changes.extend(await self._activity_changes(tenant_id, activity_id, named))
        return changes

    async def _activity_changes(
        self, tenant_id: str, activity_id: str, named: set[str]
    ) -> list[Change]:
        shard = await self._store.get(tenant_id, activity_id)
        linked = opportunity_links(shard) if shard is not None else []
        facts = None
        if shard is not None and linked:
            facts = await facts_of(self._store, self._tenants, shard)
        version = shard.version if shard is not None else 0
        return [
            Change(
                tenant_id,
                opportunity_id,
                "activity",
                facts if opportunity_id in linked else None,
                activity_id,
                version,
            )
            for opportunity_id in sorted(set(linked) | named)
        ]

    async def _engaging(self, tenant_id: str, contact_id: str) -> list[str]:
        """Activities a contact took part in (their facts carry the contact's seniority)."""
        contact = await self._store.get(tenant_id, contact_id)
        if contact is None:
            return []
        addresses = _addresses(contact)
        found: list[str] = []
        for shard_type in sorted(ACTIVITY_TYPES):
            found.extend(
                s.id
                for s in await self._store.find(tenant_id, shard_type, "participant", addresses)
                if opportunity_links(s)
            )
        return found


async def facts_of(store: ShardStore, tenants: TenantDirectory, shard: Shard) -> Facts | None:
    """An activity's facts, with the seniority of the people it engaged."""
    tenant = tenants.of(shard.tenant_id)
    engaged = engaged_addresses(shard, tenant)
    ranks: dict[str, int] = {}
    if engaged:
        for contact in await store.find(shard.tenant_id, "Contact", "email", engaged):
            rank = seniority_rank(contact.structured_data.get("title"))
            for address in _addresses(contact):
                ranks[address] = max(ranks.get(address, 0), rank)
    return activity_facts(shard, tenant, ranks)


async def rebuild_state(
    store: ShardStore, tenants: TenantDirectory, tenant_id: str, opportunity_id: str
) -> OpportunityState | None:
    """One opportunity's state from the store alone; None when it does not exist."""
    opportunity = await store.get(tenant_id, opportunity_id)
    if opportunity is None:
        return None
    activities: dict[str, Facts] = {}
    for shard_type in sorted(ACTIVITY_TYPES):
        for shard in await store.find(tenant_id, shard_type, "linkedTarget", [opportunity_id]):
            if opportunity_id not in opportunity_links(shard):
                continue
            facts = await facts_of(store, tenants, shard)
            if facts is not None:
                activities[shard.id] = facts
    return OpportunityState(opportunity_facts(opportunity), activities)


def _title_may_matter(event: ShardEvent) -> bool:
    # created or updated: a contact that appears after an activity was counted changes
    # the seniority of the people that activity engaged
    return bool({"title", "email", "emails"} & set(event.changed_fields))


def _addresses(shard: Shard) -> list[str]:
    data = shard.structured_data
    values = [data.get("email"), *(data.get("emails") or [])]
    return sorted({v.strip().lower() for v in values if isinstance(v, str) and "@" in v})
