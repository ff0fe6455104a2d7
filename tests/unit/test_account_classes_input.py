"""What account linking needs from its input: the CRM's account hierarchy and account type
on the Account shard (every provider), and the headers that tell bulk mail on the Email
shard (every mail shape)."""

from __future__ import annotations

from typing import Any

import pytest

from core.bulk_mail import bulk_headers, bulk_signals
from core.tenants import TenantConfig
from mappings.crm import map_crm_event, shipped_mappings
from normalisers.email import normalise_email
from shards.ids import shard_id
from streams.models import RawEvent
from tests.fixtures import dynamics as d365
from tests.fixtures import gmail, graph_mail
from tests.fixtures import hubspot as hs
from tests.fixtures import salesforce as sf

T = "t-northwind"
TENANT = TenantConfig.model_validate({"internalDomains": ["northwind-sales.com"]})


def account_data(envelope: dict[str, Any]) -> dict[str, Any]:
    return map_crm_event(RawEvent.model_validate(envelope), shipped_mappings()).structured_data


# --- the account hierarchy and type, per provider ------------------------------------------------


def test_salesforce_account_keeps_its_parent_and_type() -> None:
    envelope = sf.account(T)
    envelope["payload"].update(
        {"ParentId": "001Dn00000PARENT", "Type": "Channel Partner / Reseller"}
    )
    data = account_data(envelope)
    assert data["parentId"] == shard_id(T, "salesforce", "Account", "001Dn00000PARENT")
    assert (data["type"], data["relationship"]) == ("Channel Partner / Reseller", "reseller")


def test_salesforce_partner_flag_makes_a_partner() -> None:
    envelope = sf.account(T)
    envelope["payload"].update({"IsPartner": True})
    data = account_data(envelope)
    assert data["relationship"] == "partner"
    assert "parentId" not in data and "type" not in data


def test_hubspot_company_keeps_its_parent_company_and_type() -> None:
    envelope = hs.company(T)
    envelope["payload"]["properties"].update({"hs_parent_company_id": "9001", "type": "RESELLER"})
    data = account_data(envelope)
    assert data["parentId"] == shard_id(T, "hubspot", "companies", "9001")
    assert (data["type"], data["relationship"]) == ("RESELLER", "reseller")


@pytest.mark.parametrize(
    ("code", "label", "relationship"),
    [(5, "Partner", "partner"), (9, "Reseller", "reseller"), (11, "Vendor", "vendor"),
     (3, "Customer", "customer"), (2, "Consultant", "partner")],
)  # fmt: skip
def test_dynamics_account_keeps_its_parent_and_relationship_type(
    code: int, label: str, relationship: str
) -> None:
    envelope = d365.account(T)
    parent = "5d1e7c10-8f3a-ed11-9db0-000d3a5a1f99"
    envelope["payload"].update(
        {
            "_parentaccountid_value": parent,
            "_parentaccountid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "account",
            "customertypecode": code,
            "customertypecode@OData.Community.Display.V1.FormattedValue": label,
        }
    )
    data = account_data(envelope)
    assert data["parentId"] == shard_id(T, "dynamics", "account", parent)
    assert (data["type"], data["relationship"]) == (label, relationship)


def test_an_account_without_parent_or_type_has_neither() -> None:
    for data in (account_data(sf.account(T)), account_data(hs.company(T))):
        assert not {"parentId", "type", "relationship"} & set(data)


@pytest.mark.parametrize(
    ("value", "relationship"),
    [("Customer - Channel", "customer"), ("Technology Partner", "partner"),
     ("Prospect", "prospect"), ("VENDOR", "vendor"), ("Other", "other"),
     ("Distributor", "reseller")],
)  # fmt: skip
def test_account_types_read_by_their_words(value: str, relationship: str) -> None:
    envelope = sf.account(T)
    envelope["payload"]["Type"] = value
    assert account_data(envelope)["relationship"] == relationship


# --- bulk mail headers -----------------------------------------------------------------------


def test_bulk_signals_name_what_makes_mail_bulk() -> None:
    headers = {
        "List-Unsubscribe": "<mailto:u@x>",
        "Precedence": "Bulk",
        "X-SFMC-Stack": "7",
        "Auto-Submitted": "auto-generated",
    }
    assert bulk_signals(headers) == ("List-Unsubscribe", "Precedence: bulk", "X-SFMC-Stack")
    assert bulk_signals({"Auto-Submitted": "auto-replied"}) == ()  # an out-of-office reply
    assert bulk_signals({"Precedence": "first-class"}) == ()
    assert bulk_signals(None) == ()


def test_bulk_headers_keep_only_what_tells_bulk_mail_from_either_shape() -> None:
    listed = [
        {"name": "Received", "value": "from mx"},
        {"name": "List-Unsubscribe", "value": "<https://x/u>,\r\n <mailto:u@x>"},
        {"name": "list-unsubscribe", "value": "a repeat"},
        {"name": "X-MC-User", "value": 42},
        {"name": "Subject", "value": "Hi"},
        {"oops": True},
    ]
    assert bulk_headers(listed) == {"List-Unsubscribe": "<https://x/u>, <mailto:u@x>",
                                    "X-MC-User": "42"}  # fmt: skip
    assert bulk_headers({"Precedence": "list", "From": "a@b"}) == {"Precedence": "list"}
    assert bulk_headers("not headers") == {}
    assert len(bulk_headers({"List-Id": "x" * 5000})["List-Id"]) == 1000


def test_gmail_mail_keeps_its_bulk_headers() -> None:
    draft = normalise_email(RawEvent.model_validate(gmail.marketing()), TENANT)
    assert draft.structured_data["bulkHeaders"] == {
        "List-Unsubscribe": "<https://news.fabrikam-logistics.com/unsubscribe?u=9f2c>"
    }
    person = normalise_email(RawEvent.model_validate(gmail.reply()), TENANT)
    assert "bulkHeaders" not in person.structured_data


def test_graph_mail_keeps_its_bulk_headers() -> None:
    headers = [
        {"name": "Precedence", "value": "bulk"},
        {"name": "X-HS-Cid", "value": "5522"},
        {"name": "Message-ID", "value": "<a@b>"},
    ]
    envelope = graph_mail.reply(internetMessageHeaders=headers)
    draft = normalise_email(RawEvent.model_validate(envelope), TENANT)
    assert draft.structured_data["bulkHeaders"] == {"Precedence": "bulk", "X-HS-Cid": "5522"}


def test_generic_mail_keeps_its_bulk_headers() -> None:
    payload = {
        "messageId": "<m1@x>",
        "from": {"email": "news@acme.com", "name": "Acme"},
        "to": [{"email": "dana@northwind-sales.com", "name": "Dana"}],
        "sentAt": "2026-11-02T09:00:00Z",
        "bodyText": "News",
        "attachments": [],
        "headers": {"List-Id": "Acme news <news.acme.com>", "X-Mailer": "Something"},
    }
    envelope = {
        "eventId": "e1", "eventType": "integration.data.raw", "dataType": "email",
        "tenantId": T, "integrationId": "i1", "provider": "generic", "externalId": "m1",
        "payload": payload,
    }  # fmt: skip
    draft = normalise_email(RawEvent.model_validate(envelope), TENANT)
    assert draft.structured_data["bulkHeaders"] == {"List-Id": "Acme news <news.acme.com>"}
