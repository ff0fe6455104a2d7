import pytest

from mappings.crm import load_mapping_file, lookup, map_crm_event, parse_path, shipped_mappings
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


RECORD = {
    "id": "18346521907",
    "properties": {"dealname": "Fabrikam", "amount": "185000"},
    "associations": {
        "companies": {"results": [{"id": "9204117853", "type": "deal_to_company"}]},
        "contacts": {
            "results": [{"id": "51001", "type": "deal_to_contact"}, {"type": "deal_to_contact"}]
        },
    },
    "OpportunityContactRoles": {
        "records": [
            {"ContactId": "003A", "Tags": {"records": [{"Name": "a"}, {"Name": "b"}]}},
            {"ContactId": "003B", "Tags": {"records": [{"Name": "c"}]}},
        ]
    },
    "_ownerid_value": "9e1b",
    "_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "systemuser",
    "@odata.etag": 'W/"4391057"',
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("properties.dealname", "Fabrikam"),
        ("properties.missing", None),
        ("properties.dealname.deeper", None),
        ("associations.companies.results.0.id", "9204117853"),
        ("associations.contacts.results.-1.type", "deal_to_contact"),
        ("associations.companies.results.5.id", None),
        ("associations.contacts.results[].id", ["51001", None]),
        ("associations.deals.results[].id", None),
        ("OpportunityContactRoles.records[].Tags.records[].Name", ["a", "b", "c"]),
        ("_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname", "systemuser"),
        ("@odata.etag", 'W/"4391057"'),
    ],
)
def test_source_paths(path: str, expected: object) -> None:
    assert lookup(RECORD, path) == expected


@pytest.mark.parametrize("path", ["a..b", "a[]b", "[].id", "a.b[", "", "a.b."])
def test_bad_source_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="bad source path"):
        parse_path(path)


def test_annotated_key_keeps_its_dots() -> None:
    assert parse_path("a.b@OData.Community.Display.V1.FormattedValue") == (
        ("a", False),
        ("b@OData.Community.Display.V1.FormattedValue", False),
    )
    assert parse_path("results[].id") == (("results", True), ("id", False))


def test_bad_source_path_in_a_mapping_file_names_the_entry() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_mapping_file(
            "paths.yaml",
            "provider: hubspot\nentities:\n  deals:\n    shardType: Opportunity\n"
            "    fields:\n      - {source: properties..x, target: name}\n",
        )
    assert "entities.deals.fields.0.source" in str(caught.value)
    assert "bad source path 'properties..x'" in str(caught.value)


def test_coalesce_takes_the_first_value_that_is_not_blank() -> None:
    mapping = load_mapping_file(
        "coalesce.yaml",
        "provider: salesforce\nentities:\n  Contact:\n    shardType: Contact\n    fields:\n"
        "      - {source: [Phone, MobilePhone, HomePhone], target: phone, coalesce: true,\n"
        "         transform: string}\n",
    )
    envelope = sf.contact("t1")
    envelope["payload"].update({"Phone": "", "MobilePhone": None, "HomePhone": "+1 555 0199"})
    d = map_crm_event(RawEvent.model_validate(envelope), {"salesforce": mapping})
    assert d.structured_data == {"phone": "+1 555 0199"}


def test_coalesce_needs_several_sources() -> None:
    with pytest.raises(ConfigurationError, match="coalesce needs a list of sources"):
        load_mapping_file(
            "coalesce.yaml",
            "provider: salesforce\nentities:\n  Contact:\n    shardType: Contact\n"
            "    fields:\n      - {source: Phone, target: phone, coalesce: true}\n",
        )


def test_a_deleted_record_need_not_carry_its_required_fields() -> None:
    envelope = sf.envelope("t1", "Opportunity", sf.OPPORTUNITY_ID, {"IsDeleted": True})
    d = draft(envelope)
    assert d.id == draft(sf.opportunity("t1")).id
    assert d.structured_data == {"deleted": True}
    envelope["payload"]["IsDeleted"] = False
    with pytest.raises(MappingError, match="required field name"):
        draft(envelope)


def test_text_paths_reach_into_nested_records() -> None:
    mapping = load_mapping_file(
        "text.yaml",
        "provider: salesforce\nentities:\n  Opportunity:\n    shardType: Opportunity\n"
        "    fields:\n      - {source: Name, target: name}\n"
        "    text: [Description, Notes.latest.Body]\n",
    )
    envelope = sf.opportunity("t1")
    envelope["payload"].update({"Description": "First.", "Notes": {"latest": {"Body": "Second."}}})
    d = map_crm_event(RawEvent.model_validate(envelope), {"salesforce": mapping})
    assert d.unstructured_data == {"text": "First.\n\nSecond."}


def test_every_shipped_provider_is_loaded() -> None:
    shipped = shipped_mappings()
    assert sorted(shipped) == ["dynamics", "hubspot", "salesforce"]
    assert sorted(shipped["hubspot"].entities) == ["companies", "contacts", "deals", "owners"]
    assert sorted(shipped["dynamics"].entities) == [
        "account",
        "connection",
        "contact",
        "opportunity",
        "systemuser",
    ]
