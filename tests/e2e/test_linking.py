"""Entity linking across processes: ties suggested, approved through the API, late arrivals."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt

from bridge.publisher import RawEventPublisher
from shards.ids import shard_id
from tests.conftest import consume_all
from tests.e2e.test_pipeline import _run, wait_for
from tests.fixtures import salesforce as sf

TENANT = "t-demo"  # internal domain northwind-sales.com (tests/e2e/conftest.py)


def _recent(days: int = 1) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _email(external_id: str, sender: str, subject: str, *, sent: str) -> dict[str, Any]:
    return {
        "eventId": f"evt-{external_id}",
        "eventType": "integration.data.raw",
        "dataType": "email",
        "tenantId": TENANT,
        "integrationId": "int-generic-1",
        "provider": "generic",
        "externalId": external_id,
        "occurredAt": sent,
        "payload": {
            "messageId": f"<{external_id}@mail.example>",
            "threadId": f"thr-{external_id}",
            "subject": subject,
            "from": {"email": sender, "name": "Customer"},
            "to": [{"email": "dan.ortiz@northwind-sales.com", "name": "Dan Ortiz"}],
            "cc": [],
            "bcc": [],
            "sentAt": sent,
            "bodyText": "Could we talk about the numbers this week?",
            "attachments": [],
        },
    }


def _publish(pipeline, envelopes: list[dict[str, Any]]) -> None:
    async def publish() -> None:
        async with RawEventPublisher(
            pipeline.env["RABBITMQ_URL"], queue_prefix=pipeline.env["BRIDGE_QUEUE_PREFIX"]
        ) as publisher:
            await publisher.publish_events(json.dumps(e).encode() for e in envelopes)

    _run(publish())


def _api(pipeline, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {pipeline.token(TENANT, 'u-reviewer')}"}
    return httpx.request(method, f"{pipeline.base_url}{path}", headers=headers, **kw)


def _shard(pipeline, sid: str) -> dict[str, Any] | None:
    answer = _api(pipeline, "GET", f"/api/v1/shards/{sid}")
    return answer.json() if answer.status_code == 200 else None


def test_two_open_opportunities_give_one_suggestion_that_a_person_approves(pipeline) -> None:
    tag = uuid.uuid4().hex[:8]
    account, contact = f"001A{tag}", f"003C{tag}"
    domain = f"acme-{tag}.com"
    acct = sf.account(TENANT, account)
    acct["payload"]["Website"] = f"https://www.{domain}"
    person = sf.contact(TENANT, contact)
    person["payload"].update({"AccountId": account, "Email": f"jo@{domain}"})
    opps = []
    for n in (1, 2):
        opp = sf.opportunity(TENANT, f"006O{n}{tag}")
        opp["payload"].update(
            {"AccountId": account, "Name": f"Expansion {n}", "CloseDate": "2027-03-01"}
        )
        opps.append(opp)
    _publish(pipeline, [acct, person, *opps])
    opp_ids = {shard_id(TENANT, "salesforce", "Opportunity", o["externalId"]) for o in opps}
    wait_for("the CRM shards", lambda: all(_shard(pipeline, o) for o in opp_ids))

    mail = _email(f"mail-{tag}", f"jo@{domain}", "Numbers for next year", sent=_recent())
    _publish(pipeline, [mail])
    email_id = shard_id(TENANT, "generic", "email", mail["externalId"])

    def suggestion() -> dict[str, Any] | None:
        items = _api(
            pipeline, "GET", "/api/v1/suggested-links", params={"status": "pending_review"}
        ).json()["items"]
        return next(
            (
                i
                for i in items
                if i["sourceShardId"] == email_id and i["targetShardType"] == "Opportunity"
            ),
            None,
        )

    pending = wait_for("a suggestion for the tie", suggestion, timeout=90)
    proposed = {pending["targetShardId"]} | {a["targetShardId"] for a in pending["alternatives"]}
    assert proposed == opp_ids
    email = _shard(pipeline, email_id)
    assert email is not None
    assert not [k for k in email["links"] if k["targetShardType"] == "Opportunity"]
    linked_account = [k for k in email["links"] if k["targetShardType"] == "Account"]
    assert [k["status"] for k in linked_account] == ["auto"]

    approved = _api(
        pipeline,
        "POST",
        f"/api/v1/suggested-links/{pending['id']}/approve",
        json={"reason": "the renewal thread"},
    )
    assert approved.status_code == 200
    body = approved.json()
    assert body["status"] == "approved"
    assert body["decidedBy"] == "u-reviewer"
    again = _api(pipeline, "POST", f"/api/v1/suggested-links/{pending['id']}/approve")
    assert again.status_code == 200
    assert (
        _api(pipeline, "POST", f"/api/v1/suggested-links/{pending['id']}/reject").status_code == 409
    )
    email = wait_for(
        "the approved link on the email",
        lambda: (
            (s := _shard(pipeline, email_id))
            and any(k["status"] == "approved" for k in s["links"])
            and s
        ),
    )
    link = next(k for k in email["links"] if k["status"] == "approved")
    assert link["targetShardId"] == pending["targetShardId"]

    events = _run(consume_all(pipeline.broker.bootstrap, "link.events", expect=10**9, timeout=2))
    mine = [json.loads(r.value) for r in events if email_id.encode() in (r.key or b"")]
    assert {"link.created", "link.suggested", "link.approved"} <= {e["type"] for e in mine}


def test_an_opportunity_created_after_the_email_gets_it_linked(pipeline) -> None:
    tag = uuid.uuid4().hex[:8]
    account = f"001L{tag}"
    domain = f"late-{tag}.com"
    acct = sf.account(TENANT, account)
    acct["payload"]["Website"] = f"https://{domain}"
    _publish(pipeline, [acct])
    wait_for(
        "the account", lambda: _shard(pipeline, shard_id(TENANT, "salesforce", "Account", account))
    )
    mail = _email(f"late-{tag}", f"sam@{domain}", "Kick-off", sent=_recent(3))
    _publish(pipeline, [mail])
    email_id = shard_id(TENANT, "generic", "email", mail["externalId"])
    wait_for("the account link", lambda: (s := _shard(pipeline, email_id)) and s["links"])
    opp = sf.opportunity(TENANT, f"006L{tag}")
    opp["payload"].update(
        {"AccountId": account, "Name": "Kick-off deal", "CloseDate": "2027-01-15"}
    )
    _publish(pipeline, [opp])
    opp_id = shard_id(TENANT, "salesforce", "Opportunity", opp["externalId"])

    def linked() -> bool:
        shard = _shard(pipeline, email_id)
        return bool(shard) and any(k["targetShardId"] == opp_id for k in shard["links"])

    def suggested() -> bool:
        items = _api(
            pipeline, "GET", "/api/v1/suggested-links", params={"targetShardId": opp_id}
        ).json()["items"]
        return any(i["sourceShardId"] == email_id for i in items)

    wait_for("the late opportunity to get the email", lambda: linked() or suggested(), timeout=90)


def test_suggestions_api_refuses_what_it_must(pipeline) -> None:
    url = f"{pipeline.base_url}/api/v1/suggested-links"
    assert httpx.get(url).status_code == 401
    expired = pipeline.run("token", "--tenant", TENANT, "--user", "u", "--ttl", "1").strip()
    time.sleep(4)  # past exp plus the pipeline's 2 s leeway
    assert httpx.get(url, headers={"Authorization": f"Bearer {expired}"}).status_code == 401
    forged = jwt.encode({"tid": TENANT, "sub": "u", "exp": 4102444800}, "not-the-secret-" * 3)
    assert httpx.get(url, headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    other = pipeline.token("t-other")
    items = _api(pipeline, "GET", "/api/v1/suggested-links").json()["items"]
    if items:
        theirs = httpx.post(
            f"{url}/{items[0]['id']}/approve", headers={"Authorization": f"Bearer {other}"}
        )
        assert theirs.status_code == 404
        assert theirs.json()["error"]["code"] == "not_found"
    missing = httpx.post(
        f"{url}/{uuid.uuid4()}/reject", headers={"Authorization": f"Bearer {other}"}
    )
    assert missing.status_code == 404
