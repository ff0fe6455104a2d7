"""Every shipped provider mapping, entity by entity, against realistic native records."""

import pytest

from mappings.crm import map_crm_event, shipped_mappings
from processors.exceptions import MappingError
from shards.ids import shard_id
from shards.model import ShardDraft
from streams.models import RawEvent
from tests.fixtures import dynamics as d365
from tests.fixtures import hubspot as hs
from tests.fixtures import salesforce as sf

T = "t-northwind"


def draft(envelope: dict) -> ShardDraft:
    return map_crm_event(RawEvent.model_validate(envelope), shipped_mappings())


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
