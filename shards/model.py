"""The shard document (CONTRACT §3) and how a new version of a record merges into it.

Plain code: no store, no broker. The rules of an idempotent upsert live here so
every store applies them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shards.upgrades import upgrade_structured

__all__ = [
    "HISTORY_FIELDS",
    "Link",
    "Shard",
    "ShardDraft",
    "ShardSource",
    "WriteKind",
    "WriteOutcome",
    "merge",
]


class _Doc(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    def to_doc(self) -> dict[str, Any]:
        """The JSON document, camelCase keys."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ShardSource(_Doc):
    """Where a shard's content came from."""

    provider: str
    integration_id: str
    entity_type: str
    external_id: str
    event_id: str
    sync_task_id: str | None = None
    occurred_at: datetime | None = None


class Link(_Doc):
    """A link from this shard to another (written by entity linking)."""

    target_shard_id: str
    target_shard_type: str
    confidence: float = Field(ge=0, le=1)
    method: str
    status: str


class Shard(_Doc):
    """One typed document in the store."""

    id: str
    tenant_id: str
    shard_type: str
    schema_version: int
    structured_data: dict[str, Any] = Field(default_factory=dict)
    unstructured_data: dict[str, Any] = Field(default_factory=dict)
    source: ShardSource
    links: list[Link] = Field(default_factory=list)
    ml_fields: dict[str, Any] | None = None
    ml_fields_updated_at: datetime | None = None
    ml_fields_version: int | None = None
    created_at: datetime
    updated_at: datetime
    version: int = Field(ge=1)
    etag: str | None = Field(default=None, alias="_etag")


@dataclass(frozen=True, slots=True)
class ShardDraft:
    """What an agent produced from one event: a shard's content, before it is stored."""

    id: str
    tenant_id: str
    shard_type: str
    schema_version: int
    structured_data: dict[str, Any]
    unstructured_data: dict[str, Any]
    source: ShardSource
    #: fields a delete empties (a chat message's mentions, participants, attachments):
    #: a delete otherwise keeps what was known of the record; its text goes with the
    #: draft's own (empty) unstructured data
    cleared: frozenset[str] = frozenset()


class WriteKind(StrEnum):
    """What an upsert did."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """The result of merging one draft: what happened and the shard as it now stands."""

    kind: WriteKind
    shard: Shard
    changed_fields: tuple[str, ...] = ()
    #: unchanged content from a newer source time: the store keeps that time (no new
    #: version, no event), so an older version arriving later is recognised as stale
    refreshed: bool = False

    @property
    def changed(self) -> bool:
        """True when a new version was written."""
        return self.kind in (WriteKind.CREATED, WriteKind.UPDATED)

    @property
    def persist(self) -> bool:
        """True when the store must write the shard (a new version, or a newer time)."""
        return self.changed or self.refreshed


def merge(existing: Shard | None, draft: ShardDraft, now: datetime | None = None) -> WriteOutcome:
    """Merge a draft into the stored shard (or create it).

    - No shard yet: created, version 1.
    - The same source event again (a replay): unchanged.
    - An older `occurredAt` than the stored one: stale, nothing is overwritten.
    - The same content: unchanged (no new version for a re-sync of an unchanged record);
      from a newer `occurredAt`, the stored time advances (`refreshed`): record X at t1, Y
      at t2, X at t3 delivered t1, t3, t2 must end as X, not Y.
    - Otherwise: updated, version + 1; links and ML fields, owned by other agents, stay.
    """
    now = now or datetime.now(UTC)
    if existing is None:
        structured = _history({}, draft, now, created=True)
        shard = Shard(
            id=draft.id,
            tenant_id=draft.tenant_id,
            shard_type=draft.shard_type,
            schema_version=draft.schema_version,
            structured_data=structured,
            unstructured_data=draft.unstructured_data,
            source=draft.source,
            created_at=now,
            updated_at=now,
            version=1,
        )
        return WriteOutcome(WriteKind.CREATED, shard, tuple(sorted(structured)))
    if existing.source.event_id == draft.source.event_id:
        return WriteOutcome(WriteKind.UNCHANGED, existing)
    if existing.schema_version < draft.schema_version:
        existing = _upgraded(existing)
    stored_at, incoming_at = existing.source.occurred_at, draft.source.occurred_at
    if stored_at is not None and incoming_at is not None and incoming_at < stored_at:
        return WriteOutcome(WriteKind.STALE, existing)
    structured = _keep_derived(existing.structured_data, draft.structured_data, draft.cleared)
    structured = _history(existing.structured_data, draft, now, base=structured)
    changed = _changed_fields(existing.structured_data, structured)
    unstructured = draft.unstructured_data or (
        existing.unstructured_data if structured.get("deleted") is True else {}
    )
    same = (
        not changed
        and existing.unstructured_data == unstructured
        and existing.shard_type == draft.shard_type
        and existing.schema_version == draft.schema_version
    )
    if same:
        if incoming_at is not None and (stored_at is None or incoming_at > stored_at):
            source = existing.source.model_copy(update={"occurred_at": incoming_at})
            return WriteOutcome(
                WriteKind.UNCHANGED, existing.model_copy(update={"source": source}), refreshed=True
            )
        return WriteOutcome(WriteKind.UNCHANGED, existing)
    shard = existing.model_copy(
        update={
            "shard_type": draft.shard_type,
            "schema_version": draft.schema_version,
            "structured_data": structured,
            "unstructured_data": unstructured,
            "source": draft.source,
            "updated_at": now,
            "version": existing.version + 1,
        }
    )
    return WriteOutcome(WriteKind.UPDATED, shard, changed)


#: Fields another record maintains on a shard (Salesforce OpportunityContactRole and
#: Dynamics connections → an opportunity's `contactRoles`): a draft without them keeps
#: the stored value; a draft that carries them (a HubSpot deal's associations) wins.
DERIVED_FIELDS = frozenset({"contactRoles"})


#: Kept on an opportunity by the merge itself, since a CRM record carries only the
#: current values: when its stage was entered and how often its close date moved later.
HISTORY_FIELDS = frozenset({"stageEnteredAt", "closeDatePushCount"})


def _history(
    old: dict[str, Any],
    draft: ShardDraft,
    now: datetime,
    *,
    base: dict[str, Any] | None = None,
    created: bool = False,
) -> dict[str, Any]:
    """An opportunity's structured data with its stage and close-date history."""
    new = draft.structured_data if base is None else base
    if draft.shard_type != "Opportunity":
        return new
    at = draft.source.occurred_at or now
    new = dict(new)
    if created or not old:
        new.setdefault("stageEnteredAt", at.astimezone(UTC).isoformat())
        new.setdefault("closeDatePushCount", 0)
        return new
    if new.get("stage") is not None and new.get("stage") != old.get("stage"):
        new["stageEnteredAt"] = at.astimezone(UTC).isoformat()
    else:
        new["stageEnteredAt"] = old.get("stageEnteredAt") or at.astimezone(UTC).isoformat()
    pushes = int(old.get("closeDatePushCount") or 0)
    before, after = old.get("closeDate"), new.get("closeDate")
    if isinstance(before, str) and isinstance(after, str) and after[:10] > before[:10]:
        pushes += 1
    new["closeDatePushCount"] = pushes
    return new


def _keep_derived(
    old: dict[str, Any], new: dict[str, Any], cleared: frozenset[str] = frozenset()
) -> dict[str, Any]:
    if new.get("deleted") is True or new.get("status") == "cancelled":
        # A delete or cancellation often carries only the id (the rest null or empty):
        # mark the shard, keep what was known about the record but what the draft clears.
        kept = {**old, **{k: v for k, v in new.items() if v not in (None, "", [], {})}}
        kept.update({k: new[k] for k in cleared if k in new})
        return kept
    kept = {k: old[k] for k in DERIVED_FIELDS if k in old and k not in new}
    return {**new, **kept} if kept else new


def _changed_fields(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k)))


def _upgraded(shard: Shard) -> Shard:
    """An older shard in the current shapes (`shards.upgrades`), before it is compared."""
    data = upgrade_structured(shard.shard_type, shard.source.integration_id, shard.structured_data)
    return shard if data is None else shard.model_copy(update={"structured_data": data})
