import pytest

from mappings.crm import load_mapping_file, map_crm_event, shipped_mappings
from processors.exceptions import ConfigurationError, MappingError, ShardValidationError
from shards.ids import shard_id
from streams.models import RawEvent
from tests.fixtures import salesforce as sf


def draft(envelope: dict):
    return map_crm_event(RawEvent.model_validate(envelope), shipped_mappings())


def test_salesforce_opportunity_is_mapped_and_points_at_its_account() -> None:
    d = draft(sf.opportunity("t1"))
    assert d.shard_type == "Opportunity"
    assert d.id == shard_id("t1", "salesforce", "Opportunity", sf.OPPORTUNITY_ID)
    data = d.structured_data
    assert data["accountId"] == shard_id("t1", "salesforce", "Account", sf.ACCOUNT_ID)
    assert data["amount"] == 185000
    assert data["closeDate"] == "2026-12-18"
    assert data["stage"] == "Proposal/Price Quote"
    assert data["status"] == "open"
    assert data["isClosed"] is False
    assert d.source.event_id == sf.opportunity("t1")["eventId"]


def test_salesforce_account_gets_its_domain() -> None:
    data = draft(sf.account("t1")).structured_data
    assert data["domain"] == "fabrikam-logistics.com"
    assert data["employees"] == 1800
    assert data["createdDate"] == "2025-03-11T14:02:11Z"


def test_salesforce_contact_email_is_lower_cased_and_named() -> None:
    data = draft(sf.contact("t1")).structured_data
    assert data["email"] == "priya.raman@fabrikam-logistics.com"
    assert data["fullName"] == "Priya Raman"


def test_entity_type_falls_back_to_salesforce_attributes() -> None:
    envelope = sf.account("t1")
    del envelope["entityType"]
    assert draft(envelope).shard_type == "Account"


def test_unknown_entity_and_provider_are_mapping_errors() -> None:
    with pytest.raises(MappingError, match="entity type 'Lead'"):
        draft(sf.envelope("t1", "Lead", "00Q1", {"LastName": "x"}))
    envelope = sf.account("t1")
    envelope["provider"] = "pipedrive"
    with pytest.raises(MappingError, match="provider 'pipedrive'"):
        draft(envelope)


def test_missing_required_field_is_a_mapping_error() -> None:
    envelope = sf.opportunity("t1")
    del envelope["payload"]["Name"]
    with pytest.raises(MappingError, match="required field name"):
        draft(envelope)


def test_bad_value_names_the_field() -> None:
    envelope = sf.opportunity("t1")
    envelope["payload"]["Amount"] = "a lot"
    with pytest.raises(MappingError, match="field amount from Amount"):
        draft(envelope)


def test_schema_violation_is_reported(tmp_path) -> None:
    mapping = load_mapping_file(
        "inline.yaml",
        "provider: salesforce\nentities:\n  Opportunity:\n    shardType: Opportunity\n"
        "    fields:\n      - {source: Amount, target: name, transform: number}\n",
    )
    with pytest.raises(ShardValidationError, match="name"):
        map_crm_event(RawEvent.model_validate(sf.opportunity("t1")), {"salesforce": mapping})


def test_bad_mapping_file_names_file_entry_and_problem(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "provider: salesforce\nentities:\n  Opportunity:\n    shardType: Opportunity\n"
        "    fields:\n      - {source: Amount, target: amount, transform: money}\n"
    )
    with pytest.raises(ConfigurationError) as caught:
        load_mapping_file(path)
    text = str(caught.value)
    assert "bad.yaml" in text
    assert "entities.Opportunity.fields.0.transform" in text
    assert "unknown transform 'money'" in text
