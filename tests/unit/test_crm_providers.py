"""Every shipped provider mapping, entity by entity, against realistic native records."""

import pytest

from core.exceptions import MappingError
from mappings.crm import map_crm_event, shipped_mappings
from shards.ids import shard_id
from shards.model import ShardDraft
from streams.models import RawEvent
from tests.fixtures import dynamics as d365
from tests.fixtures import hubspot as hs
from tests.fixtures import salesforce as sf

T = "t-northwind"


def draft(envelope: dict) -> ShardDraft:
    """The mapped draft without the provider ids beside its references: those are
    tested in test_crm_references.py, for every reference of every provider."""
    d = map_crm_event(RawEvent.model_validate(envelope), shipped_mappings())
    data = d.structured_data
    for key in [k for k in data if k.endswith(("ExternalId", "ExternalIds"))]:
        del data[key]
    for role in data.get("contactRoles") or []:
        role.pop("contactExternalId", None)
    return d


def sf_id(kind: str, external_id: str) -> str:
    return shard_id(T, "salesforce", kind, external_id)


def hs_id(kind: str, external_id: str) -> str:
    return shard_id(T, "hubspot", kind, external_id)


def d365_id(kind: str, external_id: str) -> str:
    return shard_id(T, "dynamics", kind, external_id)


# --- Salesforce ------------------------------------------------------------------------


def test_salesforce_opportunity_maps_every_field() -> None:
    envelope = sf.opportunity(T)
    envelope["payload"].update(
        {
            "CurrencyIsoCode": "USD",
            "Type": "New Customer",
            "LeadSource": "Partner Referral",
            "CreatedDate": "2026-09-14T10:22:05.000+0000",
            "LastModifiedDate": "2026-11-02T09:15:00.000+0000",
            "IsDeleted": False,
            "Description": "Fleet routing for 1,800 drivers.",
            "NextStep": "Security review",
        }
    )
    d = draft(envelope)
    assert d.shard_type == "Opportunity"
    assert d.id == sf_id("Opportunity", sf.OPPORTUNITY_ID)
    assert d.structured_data == {
        "name": "Fabrikam — Route Optimization Suite",
        "accountId": sf_id("Account", sf.ACCOUNT_ID),
        "amount": 185000,
        "currency": "USD",
        "stage": "Proposal/Price Quote",
        "status": "open",
        "probability": 60,
        "closeDate": "2026-12-18",
        "isClosed": False,
        "isWon": False,
        "ownerId": sf_id("User", sf.USER_ID),
        "type": "New Customer",
        "leadSource": "Partner Referral",
        "createdDate": "2026-09-14T10:22:05Z",
        "lastModifiedDate": "2026-11-02T09:15:00Z",
        "deleted": False,
    }
    assert d.unstructured_data == {"text": "Fleet routing for 1,800 drivers.\n\nSecurity review"}


def test_salesforce_account_maps_every_field() -> None:
    envelope = sf.account(T)
    envelope["payload"].update({"Phone": "+1 214 555 0100", "OwnerId": sf.USER_ID})
    assert draft(envelope).structured_data == {
        "name": "Fabrikam Logistics",
        "website": "https://www.fabrikam-logistics.com",
        "domain": "fabrikam-logistics.com",
        "domains": ["fabrikam-logistics.com"],
        "industry": "Transportation",
        "employees": 1800,
        "annualRevenue": 420000000,
        "phone": "+1 214 555 0100",
        "ownerId": sf_id("User", sf.USER_ID),
        "createdDate": "2025-03-11T14:02:11Z",
        "lastModifiedDate": "2026-10-30T08:41:52Z",
    }


def test_salesforce_contact_maps_every_field() -> None:
    envelope = sf.contact(T)
    envelope["payload"].update(
        {
            "MobilePhone": "+1 214 555 0142",
            "OwnerId": sf.USER_ID,
            "CreatedDate": "2025-04-02T15:30:00.000+0000",
            "LastModifiedDate": "2026-10-28T12:00:00.000+0000",
            "IsDeleted": False,
        }
    )
    assert draft(envelope).structured_data == {
        "firstName": "Priya",
        "lastName": "Raman",
        "fullName": "Priya Raman",
        "email": "priya.raman@fabrikam-logistics.com",
        "emails": ["priya.raman@fabrikam-logistics.com"],
        "title": "VP Operations",
        "phone": "+1 214 555 0142",
        "accountId": sf_id("Account", sf.ACCOUNT_ID),
        "ownerId": sf_id("User", sf.USER_ID),
        "createdDate": "2025-04-02T15:30:00Z",
        "lastModifiedDate": "2026-10-28T12:00:00Z",
        "deleted": False,
    }


def test_salesforce_user_maps_every_field_and_is_what_owners_point_at() -> None:
    d = draft(sf.user(T))
    assert d.shard_type == "User"
    assert d.id == draft(sf.opportunity(T)).structured_data["ownerId"]
    assert d.structured_data == {
        "fullName": "Dana Whitfield",
        "firstName": "Dana",
        "lastName": "Whitfield",
        "email": "dana.whitfield@northwind-sales.com",
        "title": "Account Executive",
        "isActive": True,
        "createdDate": "2024-01-08T16:20:00Z",
        "lastModifiedDate": "2026-10-01T07:00:00Z",
    }


def test_salesforce_opportunity_contact_role_is_its_own_shard_pointing_at_both() -> None:
    d = draft(sf.opportunity_contact_role(T))
    assert d.shard_type == "OpportunityContactRole"
    assert d.id == sf_id("OpportunityContactRole", sf.CONTACT_ROLE_ID)
    assert d.structured_data == {
        "opportunityId": draft(sf.opportunity(T)).id,
        "contactId": draft(sf.contact(T)).id,
        "role": "Decision Maker",
        "isPrimary": True,
        "createdDate": "2026-10-12T13:45:09Z",
        "lastModifiedDate": "2026-10-12T13:45:09Z",
        "deleted": False,
    }


def test_salesforce_deleted_record_is_the_same_shard_marked_deleted() -> None:
    live, gone = sf.account(T), sf.account(T, occurred_at="2026-11-03T08:00:00Z")
    gone["payload"]["IsDeleted"] = True
    assert draft(gone).id == draft(live).id
    assert draft(gone).structured_data["deleted"] is True


def test_salesforce_task_maps_every_field() -> None:
    d = draft(sf.task(T))
    assert d.shard_type == "Task"
    assert d.id == sf_id("Task", sf.TASK_ID)
    assert d.structured_data == {
        "subject": "Call Priya about the pilot scope",
        "taskType": "call",
        "status": "open",
        "statusLabel": "Not Started",
        "priority": "high",
        "dueDate": "2026-11-10",
        "ownerId": sf_id("User", sf.USER_ID),
        "opportunityIds": [sf_id("Opportunity", sf.OPPORTUNITY_ID)],
        "accountIds": [sf_id("Account", sf.ACCOUNT_ID)],
        "contactIds": [sf_id("Contact", sf.CONTACT_ID)],
        "createdDate": "2026-11-02T08:55:12Z",
        "lastModifiedDate": "2026-11-02T08:55:12Z",
        "deleted": False,
    }
    assert d.unstructured_data == {
        "text": "Confirm the Dallas depot pilot dates and who owns the security questionnaire."
    }


def test_salesforce_completed_task_has_its_completion_and_call_minutes() -> None:
    data = draft(sf.task(T, completed=True)).structured_data
    assert data["status"] == "completed"
    assert data["statusLabel"] == "Completed"
    assert data["completedAt"] == "2026-11-09T16:42:10Z"
    assert data["durationMinutes"] == 15.5  # CallDurationInSeconds 930
    assert data["dueDate"] == "2026-11-10"


def test_salesforce_task_references_equal_the_target_shard_ids() -> None:
    data = draft(sf.task(T)).structured_data
    assert data["opportunityIds"] == [draft(sf.opportunity(T)).id]
    assert data["accountIds"] == [draft(sf.account(T)).id]
    assert data["contactIds"] == [draft(sf.contact(T)).id]
    assert data["ownerId"] == draft(sf.user(T)).id


def test_salesforce_task_on_an_account_is_one_account_and_no_opportunity() -> None:
    data = draft(sf.task(T, what_id=sf.ACCOUNT_ID)).structured_data
    assert "opportunityIds" not in data
    assert data["accountIds"] == [draft(sf.account(T)).id]  # WhatId and AccountId: once


def test_salesforce_task_on_another_object_references_no_opportunity_or_account() -> None:
    # a task on a case: Salesforce fills AccountId with the case's account, if it has one
    data = draft(sf.task(T, what_id=sf.CASE_ID, account_id=None)).structured_data
    assert "opportunityIds" not in data
    assert "accountIds" not in data
    assert data["contactIds"] == [draft(sf.contact(T)).id]
    with_account = draft(sf.task(T, what_id=sf.CASE_ID)).structured_data
    assert "opportunityIds" not in with_account
    assert with_account["accountIds"] == [draft(sf.account(T)).id]


def test_salesforce_task_about_a_lead_has_no_contact() -> None:
    data = draft(sf.task(T, what_id=None, who_id=sf.LEAD_ID, account_id=None)).structured_data
    assert "contactIds" not in data
    assert "opportunityIds" not in data
    assert "accountIds" not in data


@pytest.mark.parametrize(
    ("subtype", "task_type"),
    [
        ("Task", "todo"),
        ("Call", "call"),
        ("Email", "email"),
        ("ListEmail", "email"),
        ("Cadence", "todo"),
        ("LinkedIn", None),
    ],
)
def test_salesforce_task_subtype_is_normalised(subtype: str, task_type: str | None) -> None:
    assert draft(sf.task(T, subtype=subtype)).structured_data.get("taskType") == task_type


def test_salesforce_task_status_without_is_closed_follows_the_default_statuses() -> None:
    envelope = sf.task(T)
    del envelope["payload"]["IsClosed"]
    for status, expected in [
        ("In Progress", "open"),
        ("Waiting on someone else", "open"),
        ("Deferred", "open"),
        ("Completed", "completed"),
        ("Awaiting Reply", None),  # an org's own value: only IsClosed can tell
    ]:
        envelope["payload"]["Status"] = status
        data = draft(envelope).structured_data
        assert data.get("status") == expected
        assert data["statusLabel"] == status


def test_salesforce_task_custom_closed_status_follows_is_closed() -> None:
    envelope = sf.task(T)
    envelope["payload"].update({"Status": "Done - No Answer", "IsClosed": True})
    data = draft(envelope).structured_data
    assert data["status"] == "completed"
    assert data["statusLabel"] == "Done - No Answer"


def test_salesforce_deleted_task_is_the_same_shard_marked_deleted() -> None:
    live, gone = draft(sf.task(T)), draft(sf.task(T, deleted=True))
    assert gone.id == live.id
    assert gone.structured_data == {**live.structured_data, "deleted": True}


# --- HubSpot ---------------------------------------------------------------------------


def test_hubspot_deal_maps_every_field() -> None:
    d = draft(hs.deal(T))
    assert d.shard_type == "Opportunity"
    assert d.id == hs_id("deals", hs.DEAL_ID)
    assert d.structured_data == {
        "name": "Fabrikam — Route Optimization Suite",
        "accountId": hs_id("companies", hs.COMPANY_ID),
        "amount": 185000,
        "currency": "USD",
        "stage": "presentationscheduled",
        "pipeline": "default",
        "status": "open",
        "isClosed": False,
        "isWon": False,
        "probability": 60,
        "closeDate": "2026-12-18",
        "ownerId": hs_id("owners", hs.OWNER_ID),
        "type": "newbusiness",
        "contactRoles": [
            {"contactId": hs_id("contacts", hs.CONTACT_ID)},
            {"contactId": hs_id("contacts", hs.SECOND_CONTACT_ID)},
        ],
        "createdDate": "2026-09-14T10:22:05.118Z",
        "lastModifiedDate": "2026-11-02T09:15:00Z",
        "deleted": False,
    }
    assert d.unstructured_data == {
        "text": "Fleet routing for 1,800 drivers; pilot in the Dallas depot."
    }


def test_hubspot_company_maps_every_field() -> None:
    d = draft(hs.company(T))
    assert d.shard_type == "Account"
    assert d.structured_data == {
        "name": "Fabrikam Logistics",
        "website": "https://www.fabrikam-logistics.com",
        "domain": "fabrikam-logistics.com",
        "domains": ["fabrikam-logistics.com", "fabrikam.com", "fabrikam-freight.com"],
        "industry": "LOGISTICS_AND_SUPPLY_CHAIN",
        "employees": 1800,
        "annualRevenue": 420000000,
        "phone": "+1 214 555 0100",
        "ownerId": hs_id("owners", hs.OWNER_ID),
        "createdDate": "2025-03-11T14:02:11Z",
        "lastModifiedDate": "2026-10-30T08:41:52Z",
        "deleted": False,
    }


def test_hubspot_contact_maps_every_field() -> None:
    d = draft(hs.contact(T))
    assert d.shard_type == "Contact"
    assert d.structured_data == {
        "firstName": "Priya",
        "lastName": "Raman",
        "fullName": "Priya Raman",
        "email": "priya.raman@fabrikam-logistics.com",
        "emails": ["priya.raman@fabrikam-logistics.com", "priya.raman@fabrikam.com"],
        "title": "VP Operations",
        "phone": "+1 214 555 0142",
        "accountId": hs_id("companies", hs.COMPANY_ID),
        "ownerId": hs_id("owners", hs.OWNER_ID),
        "createdDate": "2025-04-02T15:30:00Z",
        "lastModifiedDate": "2026-10-28T12:00:00Z",
        "deleted": False,
    }


def test_hubspot_owner_maps_every_field() -> None:
    d = draft(hs.owner(T))
    assert d.shard_type == "User"
    assert d.structured_data == {
        "fullName": "Dana Whitfield",
        "firstName": "Dana",
        "lastName": "Whitfield",
        "email": "dana.whitfield@northwind-sales.com",
        "isActive": True,
        "createdDate": "2024-01-08T16:20:00Z",
        "lastModifiedDate": "2026-10-01T07:00:00Z",
        "deleted": False,
    }


def test_hubspot_references_equal_the_target_shard_ids() -> None:
    deal, contact = draft(hs.deal(T)).structured_data, draft(hs.contact(T)).structured_data
    company_id, owner_id = draft(hs.company(T)).id, draft(hs.owner(T)).id
    assert deal["accountId"] == contact["accountId"] == company_id
    assert deal["ownerId"] == contact["ownerId"] == owner_id
    assert deal["contactRoles"][0]["contactId"] == draft(hs.contact(T)).id
    second = draft(hs.contact(T, hs.SECOND_CONTACT_ID)).id
    assert deal["contactRoles"][1]["contactId"] == second


def test_hubspot_contact_falls_back_to_its_company_association() -> None:
    envelope = hs.contact(T)
    del envelope["payload"]["properties"]["associatedcompanyid"]
    assert draft(envelope).structured_data["accountId"] == hs_id("companies", hs.COMPANY_ID)


@pytest.mark.parametrize(
    ("stage", "is_closed", "is_won", "status"),
    [
        ("closedwon", None, None, "closed_won"),
        ("closedlost", None, None, "closed_lost"),
        ("contractsent", None, None, "open"),
        # a custom pipeline's numeric stage id: HubSpot's own flags decide
        ("98213340", "true", "true", "closed_won"),
        ("98213341", "true", "false", "closed_lost"),
        ("98213339", "false", "false", "open"),
    ],
)
def test_hubspot_deal_stage_is_normalised(
    stage: str, is_closed: str | None, is_won: str | None, status: str
) -> None:
    data = draft(hs.deal(T, stage=stage, is_closed=is_closed, is_won=is_won)).structured_data
    assert data["stage"] == stage
    assert data["status"] == status
    assert data["isClosed"] is (status != "open")
    assert data["isWon"] is (status == "closed_won")


def test_hubspot_epoch_millisecond_dates_are_read() -> None:
    envelope = hs.deal(T)
    envelope["payload"]["properties"].update(
        {"closedate": "1797613200000", "hs_lastmodifieddate": 1793610900000}
    )
    data = draft(envelope).structured_data
    assert data["closeDate"] == "2026-12-18"
    assert data["lastModifiedDate"] == "2026-11-02T09:15:00Z"


def test_hubspot_deal_without_associations_has_no_account_and_no_roles() -> None:
    envelope = hs.deal(T)
    del envelope["payload"]["associations"]
    data = draft(envelope).structured_data
    assert "accountId" not in data
    assert "contactRoles" not in data
    envelope["payload"]["associations"] = {"contacts": {"results": []}}
    assert draft(envelope).structured_data["contactRoles"] == []


def test_hubspot_archived_records_are_the_same_shard_marked_deleted() -> None:
    live, archived = draft(hs.deal(T)), draft(hs.deal(T, archived=True))
    assert archived.id == live.id
    assert archived.structured_data == {**live.structured_data, "deleted": True}
    owner = draft(hs.owner(T, archived=True))
    assert owner.id == draft(hs.owner(T)).id
    assert owner.structured_data["deleted"] is True
    assert owner.structured_data["isActive"] is False


def test_hubspot_task_maps_every_field() -> None:
    d = draft(hs.task(T))
    assert d.shard_type == "Task"
    assert d.id == hs_id("tasks", hs.TASK_ID)
    assert d.structured_data == {
        "subject": "Call Priya about the pilot scope",
        "taskType": "call",
        "status": "open",
        "statusLabel": "NOT_STARTED",
        "priority": "high",
        "dueDate": "2026-11-10",
        "ownerId": hs_id("owners", hs.OWNER_ID),
        "opportunityIds": [hs_id("deals", hs.DEAL_ID)],
        "accountIds": [hs_id("companies", hs.COMPANY_ID)],
        "contactIds": [hs_id("contacts", hs.CONTACT_ID)],
        "createdDate": "2026-11-02T08:55:12.417Z",
        "lastModifiedDate": "2026-11-02T08:55:12.417Z",
        "deleted": False,
    }
    # hs_task_body is rich text: its text, without the markup
    assert d.unstructured_data == {
        "text": "Confirm the Dallas depot pilot dates.\n\nAsk who owns the security questionnaire."
    }


def test_hubspot_completed_task_has_its_completion() -> None:
    data = draft(hs.task(T, completed=True)).structured_data
    assert data["status"] == "completed"
    assert data["statusLabel"] == "COMPLETED"
    assert data["completedAt"] == "2026-11-09T16:42:10.117Z"
    assert "durationMinutes" not in data  # HubSpot tasks carry none


def test_hubspot_task_references_equal_the_target_shard_ids() -> None:
    data = draft(hs.task(T)).structured_data
    assert data["opportunityIds"] == [draft(hs.deal(T)).id]
    assert data["accountIds"] == [draft(hs.company(T)).id]
    assert data["contactIds"] == [draft(hs.contact(T)).id]
    assert data["ownerId"] == draft(hs.owner(T)).id


@pytest.mark.parametrize(
    ("status", "normalised"),
    [
        ("NOT_STARTED", "open"),
        ("IN_PROGRESS", "open"),
        ("WAITING", "open"),
        ("DEFERRED", "open"),
        ("COMPLETED", "completed"),
    ],
)
def test_hubspot_task_status_is_normalised(status: str, normalised: str) -> None:
    envelope = hs.task(T)
    envelope["payload"]["properties"]["hs_task_status"] = status
    data = draft(envelope).structured_data
    assert data["status"] == normalised
    assert data["statusLabel"] == status


@pytest.mark.parametrize(
    ("task_type", "normalised"),
    [("CALL", "call"), ("EMAIL", "email"), ("TODO", "todo"), ("LINKED_IN_MESSAGE", None)],
)
def test_hubspot_task_type_is_normalised(task_type: str, normalised: str | None) -> None:
    envelope = hs.task(T)
    envelope["payload"]["properties"]["hs_task_type"] = task_type
    assert draft(envelope).structured_data.get("taskType") == normalised


def test_hubspot_task_priority_and_epoch_due_date() -> None:
    envelope = hs.task(T)
    envelope["payload"]["properties"].update(
        {"hs_task_priority": "MEDIUM", "hs_timestamp": "1794330000000"}
    )
    data = draft(envelope).structured_data
    assert data["priority"] == "normal"
    assert data["dueDate"] == "2026-11-10"
    envelope["payload"]["properties"]["hs_task_priority"] = "NONE"
    assert "priority" not in draft(envelope).structured_data


def test_hubspot_task_without_associations_references_nothing() -> None:
    envelope = hs.task(T)
    del envelope["payload"]["associations"]
    data = draft(envelope).structured_data
    assert not {"opportunityIds", "accountIds", "contactIds"} & data.keys()


def test_hubspot_archived_task_is_the_same_shard_marked_deleted() -> None:
    live, archived = draft(hs.task(T)), draft(hs.task(T, archived=True))
    assert archived.id == live.id
    assert archived.structured_data == {**live.structured_data, "deleted": True}


# --- Dynamics 365 ----------------------------------------------------------------------


def test_dynamics_opportunity_maps_every_field() -> None:
    d = draft(d365.opportunity(T))
    assert d.shard_type == "Opportunity"
    assert d.id == d365_id("opportunity", d365.OPPORTUNITY_ID)
    assert d.structured_data == {
        "name": "Fabrikam — Route Optimization Suite",
        "accountId": d365_id("account", d365.ACCOUNT_ID),
        "amount": 185000,
        "currency": "USD",
        "stage": "2-Develop",
        "status": "open",
        "isClosed": False,
        "isWon": False,
        "statusReason": "In Progress",
        "probability": 60,
        "closeDate": "2026-12-18",
        "ownerId": d365_id("systemuser", d365.USER_ID),
        "primaryContactId": d365_id("contact", d365.CONTACT_ID),
        "createdDate": "2026-09-14T10:22:05Z",
        "lastModifiedDate": "2026-11-02T09:15:00Z",
        "deleted": False,
    }
    assert d.unstructured_data == {
        "text": "Fleet routing for 1,800 drivers; pilot in the Dallas depot.\n\n"
        "Cut empty miles by a tenth."
    }


def test_dynamics_account_maps_every_field() -> None:
    d = draft(d365.account(T))
    assert d.shard_type == "Account"
    assert d.structured_data == {
        "name": "Fabrikam Logistics",
        "website": "http://www.fabrikam-logistics.com/",
        "domain": "fabrikam-logistics.com",
        "domains": ["fabrikam-logistics.com"],
        "industry": "Transportation",
        "employees": 1800,
        "annualRevenue": 420000000,
        "phone": "+1 214 555 0100",
        "email": "info@fabrikam-logistics.com",
        "ownerId": d365_id("systemuser", d365.USER_ID),
        "createdDate": "2025-03-11T14:02:11Z",
        "lastModifiedDate": "2026-10-30T08:41:52Z",
        "deleted": False,
    }


def test_dynamics_contact_maps_every_field() -> None:
    d = draft(d365.contact(T))
    assert d.shard_type == "Contact"
    assert d.structured_data == {
        "firstName": "Priya",
        "lastName": "Raman",
        "fullName": "Priya Raman",
        "email": "priya.raman@fabrikam-logistics.com",
        "emails": [
            "priya.raman@fabrikam-logistics.com",
            "priya.raman@fabrikam.com",
            "priya.raman@gmail.com",
        ],
        "title": "VP Operations",
        "phone": "+1 214 555 0142",
        "accountId": d365_id("account", d365.ACCOUNT_ID),
        "ownerId": d365_id("systemuser", d365.USER_ID),
        "createdDate": "2025-04-02T15:30:00Z",
        "lastModifiedDate": "2026-10-28T12:00:00Z",
        "deleted": False,
    }


def test_dynamics_systemuser_maps_every_field() -> None:
    d = draft(d365.systemuser(T))
    assert d.shard_type == "User"
    assert d.structured_data == {
        "fullName": "Dana Whitfield",
        "firstName": "Dana",
        "lastName": "Whitfield",
        "email": "dana.whitfield@northwind-sales.com",
        "title": "Account Executive",
        "isActive": True,
        "createdDate": "2024-01-08T16:20:00Z",
        "lastModifiedDate": "2026-10-01T07:00:00Z",
        "deleted": False,
    }
    assert draft(d365.systemuser(T, disabled=True)).structured_data["isActive"] is False


def test_dynamics_connection_is_a_contact_role_from_either_side() -> None:
    master = draft(d365.connection(T))
    reciprocal = draft(d365.connection(T, "62d3f9e5-ab88-ef11-a670-000d3a5a3b6d", reciprocal=True))
    expected = {
        "opportunityId": draft(d365.opportunity(T)).id,
        "contactId": draft(d365.contact(T)).id,
        "role": "Stakeholder",
        "createdDate": "2026-10-12T13:45:09Z",
        "lastModifiedDate": "2026-10-12T13:45:09Z",
        "deleted": False,
    }
    assert master.shard_type == reciprocal.shard_type == "OpportunityContactRole"
    assert master.structured_data == reciprocal.structured_data == expected
    assert master.id == d365_id("connection", d365.CONNECTION_ID)
    assert reciprocal.id != master.id


def test_dynamics_connection_between_other_records_cannot_map() -> None:
    envelope = d365.connection(T)
    envelope["payload"]["_record1id_value@Microsoft.Dynamics.CRM.lookuplogicalname"] = "account"
    with pytest.raises(MappingError, match="required field opportunityId"):
        draft(envelope)


def test_dynamics_references_equal_the_target_shard_ids() -> None:
    opportunity = draft(d365.opportunity(T)).structured_data
    contact = draft(d365.contact(T)).structured_data
    account_id, user_id = draft(d365.account(T)).id, draft(d365.systemuser(T)).id
    assert opportunity["accountId"] == contact["accountId"] == account_id
    assert opportunity["ownerId"] == contact["ownerId"] == user_id
    assert opportunity["primaryContactId"] == draft(d365.contact(T)).id


def test_dynamics_contact_whose_parent_is_a_contact_has_no_account() -> None:
    other = "0a9c7b12-1111-ee11-9cbd-000d3a5a7e99"
    data = draft(d365.contact(T, parent=(other, "contact"))).structured_data
    assert "accountId" not in data


def test_dynamics_record_owned_by_a_team_has_no_user_owner() -> None:
    envelope = d365.account(T)
    envelope["payload"]["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] = "team"
    assert "ownerId" not in draft(envelope).structured_data


@pytest.mark.parametrize(
    ("statecode", "status", "close_date", "reason"),
    [
        (0, "open", "2026-12-18", "In Progress"),
        (1, "closed_won", "2026-12-09", "Won"),
        (2, "closed_lost", "2026-12-18", "Out-Sold"),
    ],
)
def test_dynamics_statecode_is_normalised(
    statecode: int, status: str, close_date: str, reason: str
) -> None:
    data = draft(d365.opportunity(T, statecode=statecode)).structured_data
    assert data["status"] == status
    assert data["isClosed"] is (statecode != 0)
    assert data["isWon"] is (statecode == 1)
    assert data["closeDate"] == close_date  # the actual close date once closed
    assert data["statusReason"] == reason
    assert data["deleted"] is False  # won and lost are outcomes, not deletions


def test_dynamics_statecode_by_its_formatted_name() -> None:
    envelope = d365.opportunity(T)
    envelope["payload"]["statecode"] = "Lost"
    assert draft(envelope).structured_data["status"] == "closed_lost"
    envelope["payload"]["statecode"] = 7
    with pytest.raises(MappingError, match="field status from statecode"):
        draft(envelope)


@pytest.mark.parametrize(
    ("entity_type", "external_id", "live"),
    [
        ("opportunity", d365.OPPORTUNITY_ID, d365.opportunity),
        ("account", d365.ACCOUNT_ID, d365.account),
        ("contact", d365.CONTACT_ID, d365.contact),
        ("systemuser", d365.USER_ID, d365.systemuser),
        ("connection", d365.CONNECTION_ID, d365.connection),
        ("task", d365.TASK_ID, d365.task),
    ],
)
def test_dynamics_delete_is_the_same_shard_marked_deleted(
    entity_type: str, external_id: str, live: object
) -> None:
    tombstone = draft(d365.deleted(T, entity_type, external_id))
    original = draft(live(T))  # type: ignore[operator]
    assert tombstone.id == original.id
    assert tombstone.shard_type == original.shard_type
    assert tombstone.structured_data == {"deleted": True}


def test_dynamics_odata_401_removed_marker_is_a_delete_too() -> None:
    envelope = d365.envelope(
        T,
        "account",
        d365.ACCOUNT_ID,
        {"@removed": {"reason": "deleted"}, "@id": f"accounts({d365.ACCOUNT_ID})"},
    )
    assert draft(envelope).structured_data == {"deleted": True}


def test_dynamics_row_that_only_left_the_result_set_is_not_a_delete() -> None:
    envelope = d365.deleted(T, "account", d365.ACCOUNT_ID)
    envelope["payload"]["reason"] = "changed"
    with pytest.raises(MappingError, match="required field name"):
        draft(envelope)


def test_dynamics_deactivated_account_and_contact_are_deleted_with_their_fields() -> None:
    account = draft(d365.account(T, statecode=1)).structured_data
    assert account["deleted"] is True
    assert account["name"] == "Fabrikam Logistics"
    assert draft(d365.contact(T, statecode=1)).structured_data["deleted"] is True
    assert draft(d365.account(T, statecode=0)).structured_data["deleted"] is False


def test_dynamics_task_maps_every_field() -> None:
    d = draft(d365.task(T))
    assert d.shard_type == "Task"
    assert d.id == d365_id("task", d365.TASK_ID)
    assert d.structured_data == {
        "subject": "Send Priya the pilot plan",
        "taskType": "todo",
        "status": "open",
        "statusLabel": "In Progress",
        "priority": "high",
        "dueDate": "2026-11-10",
        "ownerId": d365_id("systemuser", d365.USER_ID),
        "opportunityIds": [d365_id("opportunity", d365.OPPORTUNITY_ID)],
        "createdDate": "2026-11-02T08:55:12Z",
        "lastModifiedDate": "2026-11-02T08:55:12Z",
        "deleted": False,
    }
    assert d.unstructured_data == {
        "text": "Confirm the Dallas depot pilot dates and who owns the security questionnaire."
    }


@pytest.mark.parametrize(
    ("statecode", "status", "label"),
    [(0, "open", "In Progress"), (1, "completed", "Completed"), (2, None, "Canceled")],
)
def test_dynamics_task_statecode_is_normalised(
    statecode: int, status: str | None, label: str
) -> None:
    data = draft(d365.task(T, statecode=statecode)).structured_data
    assert data.get("status") == status  # canceled: neither open nor completed
    assert data["statusLabel"] == label
    assert data["deleted"] is False  # completed and canceled are outcomes, not deletions


def test_dynamics_completed_task_has_its_completion_and_minutes() -> None:
    data = draft(d365.task(T, statecode=1)).structured_data
    assert data["completedAt"] == "2026-11-09T16:42:10Z"
    assert data["durationMinutes"] == 30


@pytest.mark.parametrize(
    ("regarding", "field", "live"),
    [
        ((d365.OPPORTUNITY_ID, "opportunity"), "opportunityIds", d365.opportunity),
        ((d365.ACCOUNT_ID, "account"), "accountIds", d365.account),
        ((d365.CONTACT_ID, "contact"), "contactIds", d365.contact),
    ],
)
def test_dynamics_task_regarding_references_the_target_shard(
    regarding: tuple[str, str], field: str, live: object
) -> None:
    data = draft(d365.task(T, regarding=regarding)).structured_data
    assert data[field] == [draft(live(T)).id]  # type: ignore[operator]
    others = {"opportunityIds", "accountIds", "contactIds"} - {field}
    assert not others & data.keys()
    assert data["ownerId"] == draft(d365.systemuser(T)).id


def test_dynamics_task_regarding_another_record_or_untyped_references_nothing() -> None:
    refs = {"opportunityIds", "accountIds", "contactIds"}
    case = "f1e2d3c4-0000-ef11-a670-000d3a5a0c01"
    assert not refs & draft(d365.task(T, regarding=(case, "incident"))).structured_data.keys()
    assert not refs & draft(d365.task(T, regarding=None)).structured_data.keys()
    envelope = d365.task(T)  # without include-annotations the type cannot be told
    del envelope["payload"]["_regardingobjectid_value@Microsoft.Dynamics.CRM.lookuplogicalname"]
    assert not refs & draft(envelope).structured_data.keys()


# --- Across providers ------------------------------------------------------------------


def test_every_provider_maps_the_four_shard_types_with_the_same_field_names() -> None:
    records = {
        "salesforce": [sf.opportunity(T), sf.account(T), sf.contact(T), sf.user(T)],
        "hubspot": [hs.deal(T), hs.company(T), hs.contact(T), hs.owner(T)],
        "dynamics": [
            d365.opportunity(T),
            d365.account(T),
            d365.contact(T),
            d365.systemuser(T),
        ],
    }
    common = {
        "Opportunity": {"name", "accountId", "amount", "stage", "status", "probability"}
        | {"closeDate", "isClosed", "isWon", "ownerId"},
        "Account": {"name", "website", "domain", "domains", "industry", "employees"}
        | {"annualRevenue"},
        "Contact": {"firstName", "lastName", "fullName", "email", "emails", "title"}
        | {"accountId"},
        "User": {"fullName", "email", "isActive"},
    }
    for provider, envelopes in records.items():
        drafts = [draft(e) for e in envelopes]
        assert [d.shard_type for d in drafts] == ["Opportunity", "Account", "Contact", "User"]
        for d in drafts:
            missing = common[d.shard_type] - d.structured_data.keys()
            assert not missing, f"{provider} {d.shard_type} lacks {missing}"


def test_entity_type_matches_without_regard_to_case() -> None:
    envelope = hs.company(T)
    envelope["entityType"] = "Companies"
    assert draft(envelope).shard_type == "Account"
    envelope = d365.systemuser(T)
    envelope["entityType"] = "SystemUser"
    assert draft(envelope).shard_type == "User"


def test_every_provider_maps_tasks_with_the_same_field_names() -> None:
    tasks = {
        "salesforce": draft(sf.task(T, completed=True)),
        "hubspot": draft(hs.task(T, completed=True)),
        "dynamics": draft(d365.task(T, statecode=1)),
    }
    common = {"subject", "taskType", "status", "statusLabel", "priority", "dueDate"} | {
        "completedAt",
        "ownerId",
        "opportunityIds",
        "createdDate",
        "lastModifiedDate",
        "deleted",
    }
    for provider, d in tasks.items():
        assert d.shard_type == "Task"
        missing = common - d.structured_data.keys()
        assert not missing, f"{provider} Task lacks {missing}"
        assert d.structured_data["status"] == "completed"
        assert d.structured_data["priority"] == "high"
        assert d.structured_data["dueDate"] == "2026-11-10"
        assert d.unstructured_data["text"].startswith("Confirm the Dallas depot pilot dates")
