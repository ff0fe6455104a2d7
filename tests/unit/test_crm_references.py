"""Every CRM reference keeps the provider's id beside the shard id, for every provider.

One form for all: `<name>Id` (a shard id) beside `<name>ExternalId` (the provider's id),
`<name>Ids` beside `<name>ExternalIds` in the same order, and each `contactRoles` entry's
`contactId` beside `contactExternalId`. The tests read which fields are references from
the shipped mappings themselves, so a reference added later is checked too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mappings.crm import external_field, map_crm_event, shipped_mappings
from mappings.transforms import REFERENCE_TRANSFORMS
from processors.startup import ensure_shard_types
from shards.contact_roles import sync_contact_roles
from shards.ids import shard_id
from shards.sqlite import SqliteShardStore
from streams.models import RawEvent
from tests.fixtures import dynamics as d365
from tests.fixtures import hubspot as hs
from tests.fixtures import salesforce as sf

T = "t-northwind"

RECORDS: dict[str, list[Callable[[str], dict[str, Any]]]] = {
    "salesforce": [
        sf.opportunity,
        sf.account,
        sf.contact,
        sf.user,
        sf.opportunity_contact_role,
        sf.task,
    ],
    "hubspot": [hs.deal, hs.company, hs.contact, hs.owner, hs.task],
    "dynamics": [
        d365.opportunity,
        d365.account,
        d365.contact,
        d365.systemuser,
        d365.connection,
        d365.task,
    ],
}


def _references(provider: str, entity_type: str) -> list[tuple[str, str]]:
    """`(target field, target entity type)` of every reference the mapping makes."""
    entity = shipped_mappings()[provider].entity(entity_type)
    assert entity is not None
    return [
        (f.target, str(f.options["entityType"]))
        for f in entity.fields
        if f.transform in REFERENCE_TRANSFORMS
    ]


@pytest.mark.parametrize("provider", sorted(RECORDS))
def test_every_reference_has_the_providers_id_beside_it(provider: str) -> None:
    checked = 0
    for make in RECORDS[provider]:
        event = RawEvent.model_validate(make(T))
        data = map_crm_event(event, shipped_mappings()).structured_data
        for target, entity_type in _references(provider, event.crm_entity_type or ""):
            if target not in data:
                assert external_field(target) not in data
                continue
            ids, external = data[target], data[external_field(target)]
            many = isinstance(ids, list)
            assert isinstance(external, list) is many, target
            pairs = zip(ids, external, strict=True) if many else [(ids, external)]
            for one_id, provider_id in pairs:
                assert one_id == shard_id(T, provider, entity_type, provider_id), target
                checked += 1
    assert checked >= 8  # the opportunity, contact, role and task records name others


def test_salesforce_references_carry_the_salesforce_ids() -> None:
    opportunity = map_crm_event(RawEvent.model_validate(sf.opportunity(T)), shipped_mappings())
    assert opportunity.structured_data["accountExternalId"] == sf.ACCOUNT_ID
    assert opportunity.structured_data["ownerExternalId"] == sf.USER_ID
    role = map_crm_event(
        RawEvent.model_validate(sf.opportunity_contact_role(T)), shipped_mappings()
    ).structured_data
    assert role["opportunityExternalId"] == sf.OPPORTUNITY_ID
    assert role["contactExternalId"] == sf.CONTACT_ID
    task = map_crm_event(RawEvent.model_validate(sf.task(T)), shipped_mappings()).structured_data
    assert task["opportunityExternalIds"] == [sf.OPPORTUNITY_ID]
    assert task["contactExternalIds"] == [sf.CONTACT_ID]


def test_hubspot_deal_contacts_carry_the_hubspot_ids() -> None:
    deal = map_crm_event(RawEvent.model_validate(hs.deal(T)), shipped_mappings()).structured_data
    assert deal["accountExternalId"] == hs.COMPANY_ID
    for role in deal["contactRoles"]:
        assert role["contactId"] == shard_id(T, "hubspot", "contacts", role["contactExternalId"])
    assert deal["contactRoles"][0]["contactExternalId"] == hs.CONTACT_ID


def test_dynamics_references_carry_the_dataverse_ids() -> None:
    opportunity = map_crm_event(
        RawEvent.model_validate(d365.opportunity(T)), shipped_mappings()
    ).structured_data
    assert opportunity["accountExternalId"] == d365.ACCOUNT_ID
    assert opportunity["primaryContactExternalId"] == d365.CONTACT_ID
    connection = map_crm_event(
        RawEvent.model_validate(d365.connection(T)), shipped_mappings()
    ).structured_data
    assert connection["contactExternalId"] == d365.CONTACT_ID
    assert connection["opportunityExternalId"] == d365.OPPORTUNITY_ID


@pytest.mark.parametrize(
    ("opportunity", "role"),
    [(sf.opportunity, sf.opportunity_contact_role), (d365.opportunity, d365.connection)],
)
async def test_contact_roles_on_the_opportunity_keep_the_provider_ids(
    tmp_path: Path, opportunity: Callable[..., Any], role: Callable[..., Any]
) -> None:
    async with SqliteShardStore(tmp_path / "shards.db") as store:
        await ensure_shard_types(store)
        drafts = [
            map_crm_event(RawEvent.model_validate(make(T)), shipped_mappings())
            for make in (opportunity, role)
        ]
        await store.upsert_many(drafts)
        synced = await sync_contact_roles(store, T, drafts[0].id)
        assert synced is not None
        (entry,) = synced.shard.structured_data["contactRoles"]
        role_data = drafts[1].structured_data
        assert entry["contactExternalId"] == role_data["contactExternalId"]
        assert entry["roleShardId"] == drafts[1].id
        assert entry["roleExternalId"] == drafts[1].source.external_id
