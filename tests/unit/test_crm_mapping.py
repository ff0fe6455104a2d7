import pytest

from core.exceptions import ConfigurationError, MappingError, ShardValidationError
from mappings.crm import load_mapping_file, lookup, map_crm_event, parse_path, shipped_mappings
from mappings.overrides import effective_mappings, parse_overrides
from mappings.transforms import TransformContext, apply_transform
from shards.ids import shard_id
from streams.models import RawEvent
from tests.fixtures import hubspot as hs
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


def test_html_text_paths_are_read_without_markup() -> None:
    mapping = load_mapping_file(
        "html.yaml",
        "provider: salesforce\nentities:\n  Opportunity:\n    shardType: Opportunity\n"
        "    fields:\n      - {source: Name, target: name}\n"
        "    text: [Description, Body]\n    html: [Body]\n",
    )
    envelope = sf.opportunity("t1")
    envelope["payload"].update(
        {"Description": "<b>kept as written</b>", "Body": "<p>First</p><p>Second &amp; last</p>"}
    )
    d = map_crm_event(RawEvent.model_validate(envelope), {"salesforce": mapping})
    assert d.unstructured_data == {"text": "<b>kept as written</b>\n\nFirst\n\nSecond & last"}
    envelope["payload"]["Body"] = "<p> </p>"  # markup without text adds nothing
    d = map_crm_event(RawEvent.model_validate(envelope), {"salesforce": mapping})
    assert d.unstructured_data == {"text": "<b>kept as written</b>"}


def test_html_paths_must_be_text_paths() -> None:
    with pytest.raises(ConfigurationError, match="html paths must be text paths too: Body"):
        load_mapping_file(
            "html.yaml",
            "provider: salesforce\nentities:\n  Opportunity:\n    shardType: Opportunity\n"
            "    fields:\n      - {source: Name, target: name}\n"
            "    text: [Description]\n    html: [Body]\n",
        )


def test_an_extend_override_keeps_the_html_paths() -> None:
    overrides = parse_overrides(
        {
            "int-hubspot-1": {
                "provider": "hubspot",
                "entities": {
                    "tasks": {
                        "fields": [{"source": "properties.hs_queue_membership_ids", "target": "q"}],
                        "text": ["properties.hs_task_notes"],
                        "html": ["properties.hs_task_notes"],
                    }
                },
            }
        },
        "tenant.yaml",
    )
    effective = effective_mappings(shipped_mappings(), overrides, "int-hubspot-1")
    assert effective["hubspot"].entities["tasks"].html == [
        "properties.hs_task_body",
        "properties.hs_task_notes",
    ]
    envelope = hs.task("t1")
    envelope["payload"]["properties"]["hs_task_notes"] = "<p>Bring the <i>SOC 2</i> report</p>"
    d = map_crm_event(RawEvent.model_validate(envelope), effective)
    assert d.unstructured_data["text"].endswith("questionnaire.\n\nBring the SOC 2 report")
    with pytest.raises(ConfigurationError, match="html paths must be among"):
        parse_overrides(
            {"int-hubspot-1": {"provider": "hubspot", "entities": {"tasks": {"html": ["x"]}}}},
            "tenant.yaml",
        )


def transform(name: str, value: object, **options: object) -> object:
    return apply_transform(name, value, TransformContext("t1", "salesforce", dict(options)))


def test_salesforce_polymorphic_picks_ids_by_key_prefix() -> None:
    opportunity = shard_id("t1", "salesforce", "Opportunity", sf.OPPORTUNITY_ID)
    account = shard_id("t1", "salesforce", "Account", sf.ACCOUNT_ID)
    options = {"prefix": "006", "entityType": "Opportunity"}
    assert transform("salesforce_polymorphic", sf.OPPORTUNITY_ID, **options) == [opportunity]
    assert transform("salesforce_polymorphic", sf.CASE_ID, **options) is None
    assert transform("salesforce_polymorphic", None, **options) is None
    assert transform("salesforce_polymorphic", "", **options) is None
    both = [sf.ACCOUNT_ID, sf.ACCOUNT_ID]  # [AccountId, WhatId] on an account: once
    assert transform("salesforce_polymorphic", both, prefix="001", entityType="Account") == [
        account
    ]
    several = transform(
        "salesforce_polymorphic",
        [sf.LEAD_ID, sf.CONTACT_ID],
        prefix=["003", "00Q"],
        entityType="Contact",
    )
    assert several == [
        shard_id("t1", "salesforce", "Contact", sf.LEAD_ID),
        shard_id("t1", "salesforce", "Contact", sf.CONTACT_ID),
    ]
    with pytest.raises(MappingError, match=r"needs options\.prefix and entityType"):
        transform("salesforce_polymorphic", sf.OPPORTUNITY_ID, entityType="Opportunity")


def test_dynamics_polymorphic_picks_ids_by_logical_name() -> None:
    opportunity = shard_id("t1", "salesforce", "opportunity", "7d6a")
    pair = ["7d6a", "opportunity"]
    assert transform("dynamics_polymorphic", pair, entityType="opportunity") == [opportunity]
    assert transform("dynamics_polymorphic", pair, entityType="account") is None
    assert transform("dynamics_polymorphic", ["7d6a", None], entityType="opportunity") is None
    assert transform("dynamics_polymorphic", [None, None], entityType="opportunity") is None
    with pytest.raises(MappingError, match="pairs"):
        transform("dynamics_polymorphic", ["7d6a"], entityType="opportunity")
    with pytest.raises(MappingError, match=r"needs options\.entityType"):
        transform("dynamics_polymorphic", pair)


def test_number_divides() -> None:
    assert transform("number", 930, divide=60, digits=2) == 15.5
    assert transform("number", "125", divide=60, digits=2) == 2.08
    assert transform("number", 120, divide=60) == 2
    assert transform("number", None, divide=60) is None


def test_every_shipped_provider_is_loaded() -> None:
    shipped = shipped_mappings()
    assert sorted(shipped) == ["dynamics", "hubspot", "salesforce"]
    assert sorted(shipped["salesforce"].entities) == [
        "Account",
        "Contact",
        "Opportunity",
        "OpportunityContactRole",
        "Task",
        "User",
    ]
    assert sorted(shipped["hubspot"].entities) == [
        "companies",
        "contacts",
        "deals",
        "owners",
        "tasks",
    ]
    assert sorted(shipped["dynamics"].entities) == [
        "account",
        "connection",
        "contact",
        "opportunity",
        "systemuser",
        "task",
    ]


def test_an_entity_is_found_whatever_its_case_in_the_mapping_it_belongs_to() -> None:
    """Entity names match without regard to case, each mapping by its own entities (the
    look-up is kept per mapping object: a mapping built later is not answered from an
    earlier one's)."""
    salesforce = shipped_mappings()["salesforce"]
    assert salesforce.entity("ACCOUNT") is salesforce.entities["Account"]
    assert salesforce.entity("opportunity") is salesforce.entities["Opportunity"]
    assert salesforce.entity("Lead") is None
    renamed = salesforce.model_copy(update={"entities": {"Firma": salesforce.entities["Account"]}})
    assert renamed.entity("firma") is salesforce.entities["Account"]
    assert renamed.entity("Account") is None
    assert salesforce.entity("Account") is salesforce.entities["Account"]
