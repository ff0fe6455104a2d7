"""A seeded mixed workload and what it must become.

CRM records of all three providers (accounts, contacts, opportunities, tasks; some sent
twice, the second a newer version), emails in threads (some with an attachment), chat
messages, calendar events, documents, meetings with the provider's transcript, and a few
bad events of each kind. Each good event names the shard it must end as (deterministic
id, and the event id of its final version); each bad event carries a marker its dead
letter is found by.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.tenants import TenantConfig
from mappings.crm import map_crm_event, shipped_mappings
from normalisers.email import attachment_events, normalise_email
from shards.ids import shard_id
from streams.models import RawEvent
from tests.fixtures import dynamics as dy
from tests.fixtures import generic_chat as gc
from tests.fixtures import hubspot as hs
from tests.fixtures import salesforce as sf

TENANT = "t-chaos"
INTERNAL = "northwind-sales.com"
REP = f"dan.ortiz@{INTERNAL}"
CONFIG = TenantConfig.model_validate({"internalDomains": [INTERNAL]})
DEEP = 100_000


@dataclass(frozen=True)
class Published:
    """One message for RabbitMQ."""

    routing_key: str
    body: bytes


@dataclass
class Workload:
    """The messages in publishing order, and what they must become."""

    messages: list[Published] = field(default_factory=list)
    #: shard id → event id of the version it must end at (the newest `occurredAt`)
    shards: dict[str, str] = field(default_factory=dict)
    _newest: dict[str, str] = field(default_factory=dict)
    #: markers of bad events, each to be found in exactly one dead letter
    bad: list[str] = field(default_factory=list)
    #: ids of the opportunities (their ML fields are checked)
    opportunities: list[str] = field(default_factory=list)

    def good(self, event: dict[str, Any], shard: str | None = None) -> None:
        """Publish a good event; it must end as `shard` (computed when not given)."""
        raw = RawEvent.model_validate(event)
        sid = shard or _expected_id(raw)
        self.messages.append(_message(event))
        at = event.get("occurredAt") or ""
        if sid not in self.shards or at > self._newest[sid]:
            self.shards[sid], self._newest[sid] = event["eventId"], at
        if raw.data_type == "email":
            draft = normalise_email(raw, CONFIG)
            for follow_up in attachment_events(raw, draft):
                self.shards[
                    shard_id(TENANT, follow_up.provider, "document", follow_up.external_id)
                ] = follow_up.event_id

    def poison(self, routing_key: str, body: bytes, marker: str) -> None:
        self.messages.append(Published(routing_key, body))
        self.bad.append(marker)


def _message(event: dict[str, Any]) -> Published:
    return Published(f"integration.raw.{event['dataType']}", json.dumps(event).encode())


def _expected_id(raw: RawEvent) -> str:
    if raw.data_type == "crm":
        return map_crm_event(raw, shipped_mappings()).id
    return shard_id(raw.tenant_id, raw.provider, raw.data_type, raw.external_id)


def _tenant(event: dict[str, Any], event_id: str, occurred: datetime) -> dict[str, Any]:
    event = copy.deepcopy(event)
    event["tenantId"] = TENANT
    event["eventId"] = event_id
    event["occurredAt"] = occurred.isoformat().replace("+00:00", "Z")
    return event


def build(seed: int, blob_dir: Path, *, accounts: int = 30, emails: int = 400) -> Workload:
    """The workload of `seed`; attachment and document files are written into `blob_dir`."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    work = Workload()
    crm: list[tuple[dict[str, Any], str | None]] = []
    for i in range(accounts):
        acc, con, opp, task = (
            f"001CH{i:013d}",
            f"003CH{i:013d}",
            f"006CH{i:013d}",
            f"00TCH{i:013d}",
        )
        at = now - timedelta(days=60)
        crm.append(
            (
                _tenant(
                    sf.envelope(
                        TENANT,
                        "Account",
                        acc,
                        {"Name": f"Customer {i}", "Website": f"https://cust{i}.example.com"},
                    ),
                    f"sf-acc-{i}",
                    at,
                ),
                None,
            )
        )
        crm.append(
            (
                _tenant(
                    sf.envelope(
                        TENANT,
                        "Contact",
                        con,
                        {
                            "FirstName": "Buyer",
                            "LastName": f"N{i}",
                            "AccountId": acc,
                            "Email": f"buyer{i}@cust{i}.example.com",
                            "Title": "VP Procurement",
                        },
                    ),
                    f"sf-con-{i}",
                    at,
                ),
                None,
            )
        )
        opportunity = sf.envelope(
            TENANT,
            "Opportunity",
            opp,
            {
                "Name": f"Deal {i}",
                "AccountId": acc,
                "StageName": "Qualify",
                "CloseDate": (now + timedelta(days=20 + i)).date().isoformat(),
                "IsClosed": False,
                "IsWon": False,
                "Amount": 1000 * i,
            },
        )
        crm.append((_tenant(opportunity, f"sf-opp-{i}", at), None))
        if i % 3 == 0:  # a newer version: moved stage
            newer = copy.deepcopy(opportunity)
            newer["payload"]["StageName"] = "Proposal"
            crm.append((_tenant(newer, f"sf-opp-{i}-v2", at + timedelta(days=1)), None))
        if i % 4 == 0:
            crm.append(
                (
                    _tenant(
                        sf.task(
                            TENANT, task, completed=True, what_id=opp, who_id=con, account_id=acc
                        ),
                        f"sf-task-{i}",
                        at,
                    ),
                    None,
                )
            )
    for i, (maker, name) in enumerate(
        (
            (hs.company, "hs-company"),
            (hs.contact, "hs-contact"),
            (hs.deal, "hs-deal"),
            (hs.task, "hs-task"),
            (dy.account, "dy-account"),
            (dy.contact, "dy-contact"),
            (dy.opportunity, "dy-opportunity"),
            (dy.task, "dy-task"),
        )
    ):
        crm.append((_tenant(maker(TENANT), f"{name}-{i}", now - timedelta(days=30)), None))
    rng.shuffle(crm)
    for event, shard in crm:
        work.good(event, shard)
    work.opportunities = [
        shard_id(TENANT, "salesforce", "Opportunity", f"006CH{i:013d}") for i in range(accounts)
    ]

    attachment = blob_dir / "integration-files" / TENANT / "notes.txt"
    attachment.parent.mkdir(parents=True, exist_ok=True)
    attachment.write_text("Call notes: pilot in Rotterdam, budget approved.\n")
    blob = {
        "container": "integration-files",
        "path": f"{TENANT}/notes.txt",
        "size": attachment.stat().st_size,
        "contentType": "text/plain",
    }
    activities: list[dict[str, Any]] = []
    for k in range(emails):
        i = rng.randrange(accounts)
        customer = f"buyer{i}@cust{i}.example.com"
        inbound = rng.random() < 0.6
        sender, to = (customer, [REP]) if inbound else (REP, [customer])
        sent = now - timedelta(hours=rng.randrange(24 * 40), minutes=k % 60)
        attachments = (
            [
                {
                    "fileName": "notes.txt",
                    "contentType": "text/plain",
                    "size": blob["size"],
                    "blob": blob,
                }
            ]
            if k % 25 == 0
            else []
        )
        activities.append(
            _tenant(
                _email(sender, to, f"ch-{k}", sent, f"thr-{i}-{k % 5}", attachments),
                f"email-{k}",
                sent,
            )
        )
    for k in range(emails // 10):
        i = rng.randrange(accounts)
        at = now - timedelta(hours=rng.randrange(24 * 30))
        message = gc.message(
            text=f"Deal {i}: update {k}",
            sender={"email": f"buyer{i}@cust{i}.example.com", "name": "Buyer"},
            sentAt=at.isoformat().replace("+00:00", "Z"),
            messageId=f"msg-{k}",
        )
        message["externalId"] = f"C-CHAOS:{k}"
        activities.append(_tenant(message, f"message-{k}", at))
        event = gc.calendar_event(
            eventId=f"cal-{k}",
            title=f"Deal {i} review",
            attendees=[
                {
                    "email": f"buyer{i}@cust{i}.example.com",
                    "name": "Buyer",
                    "responseStatus": "accepted",
                }
            ],
        )
        event["externalId"] = f"cal-chaos-{k}"
        activities.append(_tenant(event, f"calendar-{k}", at))
    for k in range(emails // 40):
        activities.append(_tenant(_document(f"doc-chaos-{k}", blob), f"document-{k}", now))
        activities.append(_tenant(_meeting(f"meet-chaos-{k}", now), f"meeting-{k}", now))
    rng.shuffle(activities)
    for event in activities:
        work.good(event)

    _poison(work, now)
    rng.shuffle(work.messages)
    return work


def _email(
    sender: str,
    to: list[str],
    external_id: str,
    sent: datetime,
    thread: str,
    attachments: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "eventId": "",
        "eventType": "integration.data.raw",
        "dataType": "email",
        "tenantId": TENANT,
        "integrationId": "int-generic-1",
        "provider": "generic",
        "externalId": external_id,
        "payload": {
            "messageId": f"<{external_id}@mail.example.com>",
            "threadId": thread,
            "subject": "Pricing review",
            "sentAt": sent.isoformat().replace("+00:00", "Z"),
            "from": {"email": sender, "name": None},
            "to": [{"email": a, "name": None} for a in to],
            "cc": [],
            "bcc": [],
            "bodyText": "See you on Thursday.",
            "attachments": attachments,
        },
    }


def _document(external_id: str, blob: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventId": "",
        "eventType": "integration.data.raw",
        "dataType": "document",
        "tenantId": TENANT,
        "integrationId": "int-gdrive-1",
        "provider": "gdrive",
        "externalId": external_id,
        "payload": {
            "documentId": external_id,
            "fileName": "notes.txt",
            "contentType": "text/plain",
            "size": blob["size"],
            "source": "gdrive",
            "owner": {"email": REP},
        },
        "blob": blob,
    }


def _meeting(external_id: str, at: datetime) -> dict[str, Any]:
    return {
        "eventId": "",
        "eventType": "integration.data.raw",
        "dataType": "meeting",
        "tenantId": TENANT,
        "integrationId": "int-zoom-1",
        "provider": "zoom",
        "externalId": external_id,
        "payload": {
            "meetingId": external_id,
            "title": "Weekly sync",
            "start": at.isoformat().replace("+00:00", "Z"),
            "end": (at + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
            "participants": [{"email": REP, "name": "Dan"}],
            "transcript": "Dan: welcome. Buyer: thanks.",
        },
    }


def _poison(work: Workload, now: datetime) -> None:
    """A few bad events of each kind, each with its marker."""
    for k in range(3):
        marker = f"bad-json-{k}"
        work.poison("integration.raw.email", f"{{not json {marker}".encode(), marker)
        marker = f"bad-envelope-{k}"
        body = {
            "eventId": marker,
            "eventType": "integration.data.raw",
            "dataType": "message",
            "integrationId": "i",
            "provider": "generic",
            "externalId": marker,
            "payload": {},
        }
        work.poison("integration.raw.message", json.dumps(body).encode(), marker)
        marker = f"bad-route-{k}"
        wrong = _tenant(gc.calendar_event(), marker, now)
        work.poison("integration.raw.email", json.dumps(wrong).encode(), marker)
        marker = f"bad-map-{k}"
        unmappable = _tenant(sf.opportunity(TENANT, f"006BAD{k:012d}"), marker, now)
        unmappable["payload"]["Amount"] = "lots"
        work.poison("integration.raw.crm", json.dumps(unmappable).encode(), marker)
        marker = f"bad-deep-{k}"
        head = json.dumps(
            {
                "eventId": marker,
                "eventType": "integration.data.raw",
                "dataType": "email",
                "tenantId": TENANT,
                "integrationId": "i",
                "provider": "generic",
                "externalId": marker,
            }
        )[:-1]
        deep = head.encode() + b', "payload": {"x":' + b"[" * DEEP + b"]" * DEEP + b"}}"
        work.poison("integration.raw.email", deep, marker)
        marker = f"bad-blob-{k}"
        missing = _tenant(
            _document(
                marker,
                {"container": "integration-files", "path": f"{TENANT}/nowhere-{k}.txt", "size": 3},
            ),
            marker,
            now,
        )
        work.poison("integration.raw.document", json.dumps(missing).encode(), marker)
