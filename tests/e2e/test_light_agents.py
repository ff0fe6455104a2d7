"""Native payloads of every light provider, published to RabbitMQ, become the right shards."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bridge.publisher import RawEventPublisher
from core.tenants import TenantDirectory
from mappings.crm import map_crm_event, shipped_mappings
from normalisers.email import attachment_events, normalise_email
from normalisers.event import normalise_calendar_event
from normalisers.message import normalise_message
from shards.model import HISTORY_FIELDS, ShardDraft
from streams.models import RawEvent
from tests.conftest import consume_all
from tests.e2e.test_pipeline import _run, wait_for
from tests.fixtures import (
    dynamics,
    generic_chat,
    generic_email,
    gmail,
    google_calendar,
    graph_calendar,
    graph_mail,
    hubspot,
    salesforce,
    slack,
    teams,
)

TENANT = "t-northwind"


def crm(event: RawEvent, tenants: TenantDirectory) -> ShardDraft:
    return map_crm_event(event, shipped_mappings())


def message(event: RawEvent, tenants: TenantDirectory) -> ShardDraft:
    return normalise_message(event, tenants.of(event.tenant_id))


def email(event: RawEvent, tenants: TenantDirectory) -> ShardDraft:
    return normalise_email(event, tenants.of(event.tenant_id))


def calendar(event: RawEvent, tenants: TenantDirectory) -> ShardDraft:
    return normalise_calendar_event(event, tenants.of(event.tenant_id))


Normalise = Callable[[RawEvent, TenantDirectory], ShardDraft]

CASES: list[tuple[str, Callable[[], dict[str, Any]], Normalise]] = [
    ("salesforce Account", lambda: salesforce.account(TENANT), crm),
    ("salesforce Contact", lambda: salesforce.contact(TENANT), crm),
    ("salesforce Opportunity", lambda: salesforce.opportunity(TENANT), crm),
    ("salesforce User", lambda: salesforce.user(TENANT), crm),
    ("hubspot deal", lambda: hubspot.deal(TENANT), crm),
    ("hubspot company", lambda: hubspot.company(TENANT), crm),
    ("hubspot contact", lambda: hubspot.contact(TENANT), crm),
    ("hubspot owner", lambda: hubspot.owner(TENANT), crm),
    ("dynamics opportunity", lambda: dynamics.opportunity(TENANT), crm),
    ("dynamics account", lambda: dynamics.account(TENANT), crm),
    ("dynamics contact", lambda: dynamics.contact(TENANT), crm),
    ("dynamics systemuser", lambda: dynamics.systemuser(TENANT), crm),
    ("generic email", generic_email.sample, email),
    ("gmail reply with an attachment", gmail.reply, email),
    ("gmail HTML marketing mail", gmail.marketing, email),
    ("graph reply with an attachment", graph_mail.reply, email),
    ("generic message", generic_chat.message, message),
    ("slack thread reply", slack.thread_reply, message),
    ("teams channel message", teams.channel_message, message),
    ("generic calendar event", generic_chat.calendar_event, calendar),
    ("google timed event", google_calendar.timed, calendar),
    ("google all-day event", google_calendar.all_day, calendar),
    ("google recurring instance", google_calendar.recurring_instance, calendar),
    ("graph event in a Windows zone", graph_calendar.windows_zone, calendar),
]


@pytest.fixture(scope="module")
def published(pipeline) -> list[tuple[str, RawEvent, ShardDraft]]:
    tenants = TenantDirectory.load(__import__("pathlib").Path(pipeline.env["TENANT_CONFIG"]))
    cases = []
    for name, build, normalise in CASES:
        envelope = build()
        event = RawEvent.model_validate(envelope)
        cases.append((name, event, normalise(event, tenants)))
    _run(_publish(pipeline, [json.dumps(build()).encode() for _, build, _ in CASES]))
    return cases


async def _publish(pipeline, bodies: list[bytes]) -> None:
    async with RawEventPublisher(
        pipeline.env["RABBITMQ_URL"], queue_prefix=pipeline.env["BRIDGE_QUEUE_PREFIX"]
    ) as publisher:
        await publisher.publish_events(bodies)


def _shard(pipeline, shard_id: str, tenant: str = TENANT) -> dict[str, Any] | None:
    answer = httpx.get(
        f"{pipeline.base_url}/api/v1/shards/{shard_id}",
        headers={"Authorization": f"Bearer {pipeline.token(tenant)}"},
    )
    return answer.json() if answer.status_code == 200 else None


@pytest.mark.parametrize("case", [name for name, _, _ in CASES])
def test_native_payload_becomes_its_shard_field_by_field(pipeline, published, case: str) -> None:
    _, event, expected = next(c for c in published if c[0] == case)
    shard = wait_for(case, lambda: _shard(pipeline, expected.id, event.tenant_id), timeout=90)
    assert shard["shardType"] == expected.shard_type
    kept_by_merge = {k: v for k, v in shard["structuredData"].items() if k in HISTORY_FIELDS}
    assert {k: v for k, v in shard["structuredData"].items() if k not in HISTORY_FIELDS} == (
        expected.structured_data
    )
    if expected.shard_type == "Opportunity":  # the merge starts an opportunity's history
        assert kept_by_merge["closeDatePushCount"] == 0
        assert kept_by_merge["stageEnteredAt"]
    assert shard["unstructuredData"] == expected.unstructured_data
    assert shard["source"]["provider"] == event.provider
    assert shard["source"]["externalId"] == event.external_id
    assert shard["version"] == 1


def test_email_attachments_become_document_events(pipeline, published) -> None:
    expected = []
    for name in ("gmail reply with an attachment", "graph reply with an attachment"):
        _, event, draft = next(c for c in published if c[0] == name)
        expected.extend(attachment_events(event, draft))
    assert expected, "the fixtures carry attachments with blobs"

    def documents() -> list | None:
        records = _run(
            consume_all(
                pipeline.broker.bootstrap, "integration.raw.document", expect=10**9, timeout=2
            )
        )
        found = [json.loads(r.value) for r in records]
        return found if len(found) >= len(expected) else None

    found = {d["eventId"]: d for d in wait_for("the document events", documents)}
    for event in expected:
        document = found[event.event_id]
        assert document["payload"]["parentEmailShardId"] == event.payload["parentEmailShardId"]
        assert document["blob"] == event.to_wire()["blob"]
        assert document["dataType"] == "document"


def test_slack_edit_then_delete_update_the_same_shard(pipeline, published) -> None:
    first = slack.thread_reply()
    shard_id = next(d.id for n, _, d in published if n == "slack thread reply")
    wait_for("the original", lambda: _shard(pipeline, shard_id))
    _run(_publish(pipeline, [json.dumps(slack.edit()).encode()]))
    edited = wait_for(
        "the edit", lambda: (s := _shard(pipeline, shard_id)) and s["version"] == 2 and s
    )
    assert "revised" in edited["unstructuredData"]["text"]
    assert edited["structuredData"]["editedAt"]
    _run(_publish(pipeline, [json.dumps(slack.delete()).encode()]))
    deleted = wait_for(
        "the delete", lambda: (s := _shard(pipeline, shard_id)) and s["version"] == 3 and s
    )
    assert deleted["structuredData"]["deleted"] is True
    assert deleted["structuredData"]["sender"] == edited["structuredData"]["sender"]
    # The original again (older occurredAt) never overwrites the newer state.
    _run(_publish(pipeline, [json.dumps({**first, "eventId": f"replay-{uuid.uuid4()}"}).encode()]))
    marker = {**generic_chat.message(), "eventId": f"sync-{uuid.uuid4()}"}
    marker["externalId"] = marker["payload"]["messageId"] = f"m-{uuid.uuid4().hex}"
    _run(_publish(pipeline, [json.dumps(marker).encode()]))
    wait_for(
        "a later event",
        lambda: (
            pipeline.shards(TENANT, shardType="Message")
            and any(
                s["source"]["externalId"] == marker["externalId"]
                for s in pipeline.shards(TENANT, shardType="Message")
            )
        ),
    )
    assert _shard(pipeline, shard_id)["version"] == 3


def test_google_cancellation_updates_the_same_event(pipeline, published) -> None:
    shard_id = next(d.id for n, _, d in published if n == "google timed event")
    before = wait_for("the event", lambda: _shard(pipeline, shard_id))
    _run(_publish(pipeline, [json.dumps(google_calendar.cancelled()).encode()]))
    after = wait_for(
        "the cancellation",
        lambda: (
            (s := _shard(pipeline, shard_id)) and s["structuredData"]["status"] == "cancelled" and s
        ),
    )
    assert after["version"] == before["version"] + 1
    assert after["structuredData"]["title"] == before["structuredData"]["title"]


def test_malformed_native_payloads_are_dead_lettered_and_the_worker_goes_on(pipeline) -> None:
    marker = uuid.uuid4().hex
    no_id = slack.thread_reply()
    no_id["payload"].pop("ts")
    no_id["externalId"] = f"C1:{marker}"
    bad_zone = graph_calendar.windows_zone()
    bad_zone["payload"]["start"]["timeZone"] = "Mars Standard Time"
    bad_zone["externalId"] = f"zone-{marker}"
    bomb = teams.channel_message()
    bomb["payload"]["body"] = {"contentType": "html", "content": "<p>" + "a" * 10_000_000}
    bomb["externalId"] = bomb["payload"]["id"] = f"bomb-{marker}"  # the payload names it
    not_utf8 = (
        b'{"eventId": "x-' + marker.encode() + b'", "dataType": "message", "tenantId": "\xff\xfe"}'
    )
    good = {**generic_chat.message(), "eventId": f"good-{marker}"}
    good["externalId"] = good["payload"]["messageId"] = f"good-{marker}"
    _run(
        _publish(
            pipeline,
            [
                json.dumps(no_id).encode(),
                json.dumps(bad_zone).encode(),
                json.dumps(bomb).encode(),
                not_utf8,
                json.dumps(good).encode(),
            ],
        )
    )
    wait_for(
        "the good message after the bad ones",
        lambda: any(
            s["source"]["externalId"] == good["externalId"]
            for s in pipeline.shards(TENANT, shardType="Message")
        ),
        timeout=90,
    )
    bomb_shard = wait_for(
        "the HTML bomb's shard (cut, not failed)",
        lambda: next(
            (
                s
                for s in pipeline.shards(TENANT, shardType="Message")
                if s["source"]["externalId"] == bomb["externalId"]
            ),
            None,
        ),
    )
    assert bomb_shard["unstructuredData"]["truncated"] is True

    def letters() -> list | None:
        records = _run(
            consume_all(pipeline.broker.bootstrap, "integration.dlq", expect=10**9, timeout=2)
        )
        mine = [r for r in records if marker.encode() in r.value]
        return mine if len(mine) >= 3 else None

    reasons = {}
    for record in wait_for("three dead letters", letters):
        headers = {k: v.decode() for k, v in record.headers}
        reasons[headers["stage"] + ": " + headers["error"]] = headers
    text = " | ".join(reasons)
    assert "map: " in text and "ts" in text, text
    assert "Mars Standard Time" in text, text
    assert "bridge: not valid JSON" in text, text
