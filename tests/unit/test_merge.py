from datetime import UTC, datetime

from shards.model import ShardDraft, ShardSource, WriteKind, merge

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def draft(event_id: str, occurred: datetime | None, **data: object) -> ShardDraft:
    return ShardDraft(
        id="s1",
        tenant_id="t1",
        shard_type="Account",
        schema_version=1,
        structured_data={"name": "Fabrikam", **data},
        unstructured_data={},
        source=ShardSource(
            provider="salesforce",
            integration_id="i",
            entity_type="Account",
            external_id="001",
            event_id=event_id,
            occurred_at=occurred,
        ),
    )


def test_create_then_replay_changes_nothing() -> None:
    created = merge(None, draft("e1", T0))
    assert created.kind is WriteKind.CREATED
    assert created.shard.version == 1
    replay = merge(created.shard, draft("e1", T0))
    assert replay.kind is WriteKind.UNCHANGED
    assert replay.shard == created.shard


def test_newer_event_updates_and_keeps_links() -> None:
    first = merge(None, draft("e1", T0)).shard
    first = first.model_copy(
        update={
            "links": [
                {
                    "targetShardId": "o",
                    "targetShardType": "Opportunity",
                    "confidence": 1,
                    "method": "crm",
                    "status": "auto",
                }
            ]
        }
    )
    later = merge(first, draft("e2", T0.replace(day=2), industry="Logistics"))
    assert later.kind is WriteKind.UPDATED
    assert later.shard.version == 2
    assert later.changed_fields == ("industry",)
    assert later.shard.links == first.links
    assert later.shard.created_at == first.created_at


def test_older_event_does_not_overwrite_newer() -> None:
    newer = merge(None, draft("e2", T0.replace(day=2), industry="New")).shard
    older = merge(newer, draft("e1", T0, industry="Old"))
    assert older.kind is WriteKind.STALE
    assert older.shard.structured_data["industry"] == "New"


def test_same_content_from_a_new_sync_is_unchanged() -> None:
    first = merge(None, draft("e1", T0)).shard
    again = merge(first, draft("e2", T0.replace(day=3)))
    assert again.kind is WriteKind.UNCHANGED
    assert again.shard.version == 1
    assert again.refreshed and not again.changed  # the newer time is kept, no new version
    assert again.shard.source.occurred_at == T0.replace(day=3)
    assert again.shard.source.event_id == "e1"  # the version still names its own event


def test_a_version_older_than_an_unchanged_resync_is_stale() -> None:
    """X at day 1, Y at day 2, X again at day 3, delivered 1, 3, 2: the record is X."""
    x1 = merge(None, draft("e1", T0, industry="X")).shard
    x3 = merge(x1, draft("e3", T0.replace(day=3), industry="X"))
    y2 = merge(x3.shard, draft("e2", T0.replace(day=2), industry="Y"))
    assert y2.kind is WriteKind.STALE
    assert y2.shard.structured_data["industry"] == "X"


def test_contact_roles_kept_by_an_update_without_them_and_replaced_by_one_with_them() -> None:
    first = merge(None, draft("e1", T0)).shard
    roles = [{"contactId": "c1", "role": "Decision Maker"}]
    first = first.model_copy(
        update={"structured_data": {**first.structured_data, "contactRoles": roles}}
    )
    later = merge(first, draft("e2", T0.replace(day=2), industry="Logistics")).shard
    assert later.structured_data["contactRoles"] == roles
    hubspot_like = merge(later, draft("e3", T0.replace(day=3), contactRoles=[])).shard
    assert hubspot_like.structured_data["contactRoles"] == []


def test_a_bare_delete_or_cancellation_marks_the_shard_and_keeps_what_was_known() -> None:
    first = merge(None, draft("e1", T0, industry="Logistics")).shard
    tombstone = ShardDraft(
        id="s1", tenant_id="t1", shard_type="Account", schema_version=1,
        structured_data={"deleted": True}, unstructured_data={},
        source=draft("e3", T0.replace(day=3)).source,
    )  # fmt: skip
    gone = merge(first, tombstone)
    assert gone.kind is WriteKind.UPDATED
    assert gone.shard.structured_data == {
        "name": "Fabrikam",
        "industry": "Logistics",
        "deleted": True,
    }
    assert gone.changed_fields == ("deleted",)
