"""Tenant overrides of the shipped CRM mappings, per integration."""

import pytest

from core.exceptions import ConfigurationError
from core.tenants import TenantConfig
from mappings.crm import map_crm_event, shipped_mappings
from mappings.overrides import Overrides, effective_mappings, parse_overrides
from shards.ids import shard_id
from streams.models import RawEvent
from tests.fixtures import hubspot as hs
from tests.fixtures import salesforce as sf

T = "t-northwind"
SOURCE = "tenants.yaml (tenant t-northwind)"


def mapped(envelope: dict, mappings: dict) -> dict:
    return map_crm_event(RawEvent.model_validate(envelope), mappings).structured_data


def test_extend_adds_a_field_and_replaces_one_by_target() -> None:
    overrides = parse_overrides(
        {
            "int-hubspot-1": {
                "provider": "hubspot",
                "entities": {
                    "deals": {
                        "fields": [
                            {
                                "source": "properties.hs_forecast_amount",
                                "target": "forecastAmount",
                                "transform": "number",
                            },
                            # the tenant keeps its real stage in a custom property
                            {"source": "properties.sales_phase", "target": "stage"},
                        ],
                        "text": ["properties.hs_next_step"],
                    }
                },
            }
        },
        SOURCE,
    )
    envelope = hs.deal(T)
    envelope["payload"]["properties"].update(
        {"hs_forecast_amount": "111000", "sales_phase": "Negotiation", "hs_next_step": "Legal"}
    )
    shipped = shipped_mappings()
    effective = effective_mappings(shipped, overrides, "int-hubspot-1")
    data = mapped(envelope, effective)
    assert data["forecastAmount"] == 111000
    assert data["stage"] == "Negotiation"
    assert data == {**mapped(envelope, shipped), "forecastAmount": 111000, "stage": "Negotiation"}
    fields = [f.target for f in effective["hubspot"].entities["deals"].fields]
    assert fields.index("stage") == 4  # replaced in place
    assert fields[-1] == "forecastAmount"
    text = map_crm_event(RawEvent.model_validate(envelope), effective).unstructured_data["text"]
    assert text.endswith("\n\nLegal")


def test_replace_swaps_the_whole_entity() -> None:
    overrides = parse_overrides(
        {
            "int-salesforce-1": {
                "provider": "salesforce",
                "entities": {
                    "Account": {
                        "mode": "replace",
                        "shardType": "Account",
                        "fields": [
                            {"source": "Name", "target": "name", "required": True},
                            {"source": "Region__c", "target": "region", "transform": "string"},
                        ],
                    }
                },
            }
        },
        SOURCE,
    )
    envelope = sf.account(T)
    envelope["payload"]["Region__c"] = "South Central"
    effective = effective_mappings(shipped_mappings(), overrides, "int-salesforce-1")
    assert mapped(envelope, effective) == {"name": "Fabrikam Logistics", "region": "South Central"}


def test_only_the_named_integration_changes_and_shipped_stays_untouched() -> None:
    raw = {
        "int-hubspot-1": {
            "provider": "hubspot",
            "entities": {"Deals": {"fields": [{"source": "properties.x", "target": "x"}]}},
        }
    }
    overrides = parse_overrides(raw, SOURCE)
    shipped = shipped_mappings()
    before = [f.target for f in shipped["hubspot"].entities["deals"].fields]
    assert effective_mappings(shipped, overrides, "int-hubspot-2") is shipped
    assert effective_mappings(shipped, Overrides(), "int-hubspot-1") is shipped
    effective = effective_mappings(shipped, overrides, "int-hubspot-1")
    assert list(effective["hubspot"].entities) == list(shipped["hubspot"].entities)  # "Deals"
    assert [f.target for f in effective["hubspot"].entities["deals"].fields][-1] == "x"
    assert [f.target for f in shipped["hubspot"].entities["deals"].fields] == before
    assert effective["salesforce"] is shipped["salesforce"]


def test_a_new_entity_or_provider_can_be_mapped_whole() -> None:
    overrides = parse_overrides(
        {
            "int-pipedrive-1": {
                "provider": "pipedrive",
                "entities": {
                    "deal": {
                        "mode": "replace",
                        "shardType": "Opportunity",
                        "fields": [
                            {"source": "title", "target": "name", "required": True},
                            {
                                "source": "org_id",
                                "target": "accountId",
                                "transform": "reference",
                                "options": {"entityType": "organization"},
                            },
                        ],
                    }
                },
            }
        },
        SOURCE,
    )
    effective = effective_mappings(shipped_mappings(), overrides, "int-pipedrive-1")
    envelope = {
        **sf.opportunity(T),
        "provider": "pipedrive",
        "integrationId": "int-pipedrive-1",
        "entityType": "deal",
        "externalId": "4711",
        "payload": {"id": 4711, "title": "Fabrikam renewal", "org_id": 88},
    }
    assert mapped(envelope, effective) == {
        "name": "Fabrikam renewal",
        "accountId": shard_id(T, "pipedrive", "organization", "88"),
        "accountExternalId": "88",
    }


def test_overrides_come_from_the_tenant_configuration() -> None:
    tenant = TenantConfig.model_validate(
        {"mappings": {"int-hubspot-1": {"provider": "hubspot", "entities": {}}}}
    )
    overrides = parse_overrides(tenant.mappings, SOURCE)
    assert overrides.of("int-hubspot-1") is not None
    assert parse_overrides({}, SOURCE).integrations == {}
    assert parse_overrides(None, SOURCE).integrations == {}


@pytest.mark.parametrize(
    ("raw", "path", "problem"),
    [
        (
            {"int-1": {"provider": "hubspot", "entities": {"deals": {"fields": [
                {"source": "properties.amount", "target": "amount", "transform": "money"}
            ]}}}},
            "int-1.entities.deals.fields.0.transform",
            "unknown transform 'money'",
        ),
        (
            {"int-1": {"provider": "hubspot", "entities": {"deals": {"mode": "merge"}}}},
            "int-1.entities.deals.mode",
            "'extend' or 'replace'",
        ),
        (
            {"int-1": {"provider": "hubspot", "entities": {"deals": {"mode": "replace"}}}},
            "int-1.entities.deals",
            "mode replace needs shardType and fields",
        ),
        (
            {"int-1": {"provider": "hubspot", "entities": {"deals": {"shardType": "Deal"}}}},
            "int-1.entities.deals",
            "unknown shard type 'Deal'",
        ),
        (
            {"int-1": {"entities": {}}},
            "int-1.provider",
            "Field required",
        ),
        (
            {"int-1": {"provider": "hubspot", "entities": {"deals": {"fields": [
                {"source": "associations..id", "target": "x"}
            ]}}}},
            "int-1.entities.deals.fields.0.source",
            "bad source path 'associations..id'",
        ),
        (
            {"int-1": {"provider": "hubspot", "entities": {"tickets": {"fields": [
                {"source": "properties.subject", "target": "name"}
            ]}}}},
            "int-1.entities.tickets",
            "hubspot ships no mapping of 'tickets' to extend",
        ),
    ],
)  # fmt: skip
def test_bad_overrides_name_file_entry_and_problem(raw: dict, path: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_overrides(raw, SOURCE)
    text = str(caught.value)
    assert text.startswith(f"mapping overrides {SOURCE}: ")
    assert path in text
    assert problem in text


def test_overrides_that_are_not_a_mapping_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="expected a mapping by integration id"):
        parse_overrides(["int-1"], SOURCE)  # type: ignore[arg-type]
