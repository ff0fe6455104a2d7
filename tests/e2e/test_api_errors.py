"""The API answers as CONTRACT §4 says when asked wrongly (issue 11, item 5).

Real processes: broker, bridge, a light worker and a heavy worker on one store. A few
CRM records and emails are published; suggestions are written through the store. Then:
401 and 404 of the ML-field views on both roles, hostile and oversized decision bodies,
the `reason` cap, cursors the API did not produce.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from bridge.publisher import RawEventPublisher
from processors.embedded_broker import free_port
from shards.ids import shard_id
from shards.sqlite import SqliteShardStore
from shards.store import decode_cursor, encode_cursor
from shards.suggestions import SuggestedLink, suggestion_id
from tests.e2e.conftest import Pipeline, running_pipeline
from tests.fixtures import generic_email as ge
from tests.fixtures import salesforce as sf
from web.http import MAX_BODY_BYTES
from web.suggestions import MAX_REASON_CHARS

pytestmark = pytest.mark.e2e

TENANT = "t-demo"
OTHER = "t-northwind"
REP = "dan.ortiz@northwind-sales.com"
EMAILS = 4
DEEP = 100_000


@dataclass
class Api:
    """The running processes and what was seeded."""

    pipe: Pipeline
    heavy_url: str
    opportunity: str  # t-demo's
    other_opportunity: str  # t-northwind's
    account: str  # t-demo's, not an opportunity
    emails: list[str]
    suggestions: list[str]  # pending, t-demo's, one per email

    @property
    def light_url(self) -> str:
        return self.pipe.base_url

    def headers(self, tenant: str = TENANT) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.pipe.token(tenant)}"}


def seed_events() -> list[dict[str, Any]]:
    """An account, contact and opportunity in two tenants, and a few emails in t-demo."""
    events: list[dict[str, Any]] = []
    for tenant in (TENANT, OTHER):
        events += [sf.account(tenant), sf.contact(tenant), sf.opportunity(tenant)]
    sent = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for n in range(EMAILS):
        events.append(
            ge.email(
                "priya.raman@fabrikam-logistics.com", [REP], external_id=f"api-{n}", sentAt=sent
            )
        )
    return events


async def publish(pipe: Pipeline, events: list[dict[str, Any]]) -> None:
    async with RawEventPublisher(
        pipe.env["RABBITMQ_URL"], queue_prefix=pipe.env["BRIDGE_QUEUE_PREFIX"]
    ) as publisher:
        await publisher.publish_events([json.dumps(e).encode() for e in events])


async def put_suggestions(db: Path, sources: list[str], target: str) -> list[str]:
    """One pending suggestion per source email, to the opportunity, written to the store."""
    ids = []
    async with SqliteShardStore(db) as store:
        for source in sources:
            sid = suggestion_id(TENANT, source, target)
            await store.put_suggestion(
                SuggestedLink(
                    id=sid,
                    tenant_id=TENANT,
                    source_shard_id=source,
                    source_shard_type="Email",
                    target_shard_id=target,
                    target_shard_type="Opportunity",
                    target_name="Fabrikam — Route Optimization Suite",
                    confidence=0.6,
                    method="test",
                    reason="seeded by the API test",
                    created_at=datetime.now(UTC),
                )
            )
            ids.append(sid)
    return ids


def wait_for(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def api_processes(data_dir: Path, rabbitmq_url: str, *, heavy: bool = True) -> Iterator[Api]:
    """A light worker (and, with `heavy`, a heavy one on the same store), seeded."""
    with running_pipeline(data_dir, rabbitmq_url, CONSUMER_TYPE="light") as pipe:
        db = pipe.data_dir / "data" / "shards.sqlite3"
        heavy_url = ""
        if heavy:
            port = free_port()
            pipe.start(
                "heavy",
                "worker",
                env={
                    "CONSUMER_TYPE": "heavy",
                    "PORT": str(port),
                    "DATA_DIR": str(pipe.data_dir / "heavy"),
                    "STORE_URL": f"sqlite://{db}",
                    "APP_ID": pipe.env["APP_ID"] + "-heavy",  # its own group: nothing moves
                },
            )
            heavy_url = f"http://127.0.0.1:{port}"
        opportunity = shard_id(TENANT, "salesforce", "Opportunity", sf.OPPORTUNITY_ID)
        emails = [shard_id(TENANT, "generic", "email", f"api-{n}") for n in range(EMAILS)]
        asyncio.run(publish(pipe, seed_events()))

        def seeded() -> bool:
            mine = {s["id"] for s in pipe.shards(TENANT)}
            theirs = {s["id"] for s in pipe.shards(OTHER)}
            return len(theirs) == 3 and {opportunity, *emails} <= mine and len(mine) == 7

        wait_for("the seeded shards", seeded, 90)
        suggestions = asyncio.run(put_suggestions(db, emails, opportunity))
        api = Api(
            pipe=pipe,
            heavy_url=heavy_url,
            opportunity=opportunity,
            other_opportunity=shard_id(OTHER, "salesforce", "Opportunity", sf.OPPORTUNITY_ID),
            account=shard_id(TENANT, "salesforce", "Account", sf.ACCOUNT_ID),
            emails=emails,
            suggestions=suggestions,
        )
        ml = f"/api/v1/opportunities/{opportunity}/ml-fields"
        # the table's partitions are assigned: the light worker answers from it
        for base in filter(None, (pipe.base_url, heavy_url)):
            wait_for(
                f"{base} to answer ML fields",
                lambda b=base: httpx.get(b + ml, headers=api.headers()).status_code == 200,
                60,
            )
        yield api


@pytest.fixture(scope="module")
def api(tmp_path_factory, rabbitmq_url: str) -> Iterator[Api]:
    with api_processes(tmp_path_factory.mktemp("api"), rabbitmq_url) as running:
        yield running


def assert_error(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text[:500]
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code and body["error"]["message"], body


# --- the ML-field views: 401 and 404, on either role ------------------------------------

ROLES = ["light", "heavy"]
ML_VIEWS = [
    ("GET", "/api/v1/opportunities/{id}/ml-fields"),
    ("POST", "/api/v1/opportunities/{id}/ml-fields/recalculate"),
]


def _base(api: Api, role: str) -> str:
    return api.light_url if role == "light" else api.heavy_url


def _bad_headers(api: Api) -> list[dict[str, str]]:
    forged = jwt.encode({"tid": TENANT, "sub": "u", "exp": 4102444800}, "not-the-secret-" * 3)
    expired = jwt.encode(
        {"tid": TENANT, "sub": "u", "exp": 1_000_000_000},
        api.pipe.env["JWT_SECRET"],
    )
    no_tenant = jwt.encode({"sub": "u", "exp": 4102444800}, api.pipe.env["JWT_SECRET"])
    return [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": f"Bearer {no_tenant}"},
    ]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path"), ML_VIEWS)
def test_ml_field_views_refuse_a_missing_or_bad_token(
    api: Api, role: str, method: str, path: str
) -> None:
    url = _base(api, role) + path.format(id=api.opportunity)
    for headers in _bad_headers(api):
        assert_error(httpx.request(method, url, headers=headers), 401, "unauthorized")
    # the same request with a good token is answered: the 401s were about the token
    good = httpx.request(method, url, headers=api.headers())
    assert good.status_code == (200 if method == "GET" else 202), good.text
    assert good.json()["opportunityId"] == api.opportunity


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path"), ML_VIEWS)
def test_ml_field_views_answer_404_for_what_is_not_the_callers_opportunity(
    api: Api, role: str, method: str, path: str
) -> None:
    base = _base(api, role)
    for tenant, target in (
        (OTHER, api.opportunity),  # another tenant's opportunity
        (TENANT, api.other_opportunity),  # the other way round
        (TENANT, api.account),  # a shard that is not an opportunity
        (TENANT, api.emails[0]),
        (TENANT, "no-such-shard"),
    ):
        answer = httpx.request(method, base + path.format(id=target), headers=api.headers(tenant))
        assert_error(answer, 404, "not_found")
    own = httpx.request(
        method, base + path.format(id=api.other_opportunity), headers=api.headers(OTHER)
    )
    assert own.status_code in (200, 202), own.text


def test_the_light_worker_answers_from_its_table_the_heavy_from_the_store(api: Api) -> None:
    path = f"/api/v1/opportunities/{api.opportunity}/ml-fields"
    sources = [
        httpx.get(base + path, headers=api.headers()).json()["source"]
        for base in (api.light_url, api.heavy_url)
    ]
    assert sources == ["table", "store"]


# --- decision bodies ----------------------------------------------------------------------

DECISIONS = ["approve", "reject"]


def _decide(
    api: Api, verb: str, body: bytes | str, suggestion: str | None = None
) -> httpx.Response:
    sid = suggestion or api.suggestions[0]
    return httpx.post(
        f"{api.light_url}/api/v1/suggested-links/{sid}/{verb}",
        content=body,
        headers={**api.headers(), "Content-Type": "application/json"},
        timeout=30,
    )


def _status(api: Api, sid: str) -> str:
    items = httpx.get(
        f"{api.light_url}/api/v1/suggested-links",
        params={"limit": "200"},
        headers=api.headers(),
    ).json()["items"]
    (found,) = [i for i in items if i["id"] == sid]
    return str(found["status"])


HOSTILE: dict[str, bytes] = {
    "nested 100,000 deep": ('{"reason":' + "[" * DEEP + "]" * DEEP + "}").encode(),
    "nested 100,000 deep, unclosed": b"[" * DEEP,
    "deep objects": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "not UTF-8": b'{"reason": "\xff\xfe"}',
    "not JSON": b"{reason: yes}",
    "truncated": b'{"reason": "why',
    "an array": b'["reason"]',
    "null": b"null",
    "a string": b'"reason"',
    "a number of 5,000 digits": b'{"reason": ' + b"9" * 5000 + b"}",
    "NaN": b'{"reason": NaN}',
    "reason a number": b'{"reason": 1}',
    "reason an object": b'{"reason": {"text": "why"}}',
    "reason a lone surrogate": b'{"reason": "\\ud800"}',
    "reason one too long": json.dumps({"reason": "x" * (MAX_REASON_CHARS + 1)}).encode(),
    "reason far too long": json.dumps({"reason": "x" * 500_000}).encode(),
    "NUL bytes": b"\x00" * 100,
}


@pytest.mark.parametrize("verb", DECISIONS)
@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_body_is_400(api: Api, verb: str, name: str) -> None:
    assert_error(_decide(api, verb, HOSTILE[name]), 400, "bad_request")


def test_the_deep_body_of_the_issue_is_400_with_a_message(api: Api) -> None:
    answer = _decide(api, "approve", HOSTILE["nested 100,000 deep"])
    assert_error(answer, 400, "bad_request")
    assert "nested too deeply" in answer.json()["error"]["message"]


@pytest.mark.parametrize("verb", DECISIONS)
def test_a_body_over_the_limit_is_413(api: Api, verb: str) -> None:
    body = json.dumps({"reason": "x", "padding": "p" * MAX_BODY_BYTES}).encode()
    assert_error(_decide(api, verb, body), 413, "payload_too_large")


def test_refused_bodies_decided_nothing_and_the_cap_itself_is_taken(api: Api) -> None:
    first, second = api.suggestions[0], api.suggestions[1]
    assert _status(api, first) == "pending_review"  # after every refusal above
    too_long = json.dumps({"reason": "\U0001f600" * (MAX_REASON_CHARS + 1)})
    assert_error(_decide(api, "approve", too_long, second), 400, "bad_request")
    assert "at most 2000 characters" in _decide(api, "reject", too_long, second).text
    # exactly the cap, in characters (code points) that take 4 bytes each in UTF-8
    at_cap = "\U0001f600" * MAX_REASON_CHARS
    answer = _decide(api, "reject", json.dumps({"reason": at_cap}), second)
    assert answer.status_code == 200, answer.text
    assert answer.json()["decisionReason"] == at_cap
    assert answer.json()["status"] == "rejected"
    # no body, an empty one and a null reason are no reason
    for body in (b"", b"   ", b"{}", b'{"reason": null}', b'{"other": [1, 2]}'):
        again = _decide(api, "reject", body, second)
        assert again.status_code == 200, (body, again.text)
    assert _status(api, second) == "rejected"


# --- cursors ------------------------------------------------------------------------------

LISTS = ["/api/v1/shards", "/api/v1/suggested-links"]
GARBAGE = [
    "garbage",
    "AAAA",  # decodes to NUL bytes: read leniently, it was the first page
    "!!!",  # nothing in the alphabet: read leniently, an empty id, the first page
    "x",
    "abc=",
    "YzE6",  # the tag and no id
    "a" * 5000,
    "Y2xvd24=",  # padded
    " YzE6YQ",
    "YzE6YQ==",
    base64.urlsafe_b64encode(b"c1:\xff").decode().rstrip("="),  # not UTF-8 after the tag
    base64.urlsafe_b64encode(b"c2:abc").decode(),  # another tag
    "%00",
    "\u00e9t\u00e9",
]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("cursor", GARBAGE)
def test_a_cursor_we_did_not_produce_is_400(api: Api, path: str, cursor: str) -> None:
    answer = httpx.get(
        api.light_url + path, params={"cursor": cursor, "limit": "2"}, headers=api.headers()
    )
    assert_error(answer, 400, "bad_request")


@pytest.mark.parametrize("path", LISTS)
def test_an_untagged_cursor_of_an_existing_id_is_400(api: Api, path: str) -> None:
    # what cursors looked like before they were tagged: base64 of the id alone
    old = base64.urlsafe_b64encode(api.opportunity.encode()).decode().rstrip("=")
    answer = httpx.get(api.light_url + path, params={"cursor": old}, headers=api.headers())
    assert_error(answer, 400, "bad_request")


@pytest.mark.parametrize("path", LISTS)
def test_paging_with_cursors_sees_everything_once(api: Api, path: str) -> None:
    everything = httpx.get(
        api.light_url + path, params={"limit": "200"}, headers=api.headers()
    ).json()
    assert everything["nextCursor"] is None
    ids = [i["id"] for i in everything["items"]]
    assert len(ids) >= 4
    seen, cursor = [], None
    while True:
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = httpx.get(api.light_url + path, params=params, headers=api.headers()).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
        assert decode_cursor(cursor) == seen[-1]
    assert seen == ids == sorted(ids)
    # an empty cursor is no cursor: the first page
    first = httpx.get(
        api.light_url + path, params={"cursor": "", "limit": "1"}, headers=api.headers()
    )
    assert [i["id"] for i in first.json()["items"]] == ids[:1]


@pytest.mark.parametrize("path", LISTS)
def test_a_cursor_naming_nothing_still_pages_from_where_it_would_be(api: Api, path: str) -> None:
    ids = [
        i["id"]
        for i in httpx.get(
            api.light_url + path, params={"limit": "200"}, headers=api.headers()
        ).json()["items"]
    ]
    for after in (ids[0] + "~", ids[1][:-1], "0", "zzzz", "not an id"):
        answer = httpx.get(
            api.light_url + path,
            params={"cursor": encode_cursor(after), "limit": "200"},
            headers=api.headers(),
        )
        assert answer.status_code == 200, answer.text
        assert [i["id"] for i in answer.json()["items"]] == [i for i in ids if i > after]


def test_cursors_round_trip_and_refuse_what_is_not_one() -> None:
    for last in ("0b6f3f5e-4f7e-4e0c-9d55-6f3f0c2a7b11", "é", "a/b+c", "x" * 700):
        assert decode_cursor(encode_cursor(last)) == last
    for token in [*GARBAGE, "", "=" + encode_cursor("a"), encode_cursor("a") + "="]:
        with pytest.raises(ValueError):
            decode_cursor(token)


# --- query parameters ---------------------------------------------------------------------


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("limit", ["", "0", "-1", " 5", "+5", "5_0", "\u0665", "5.0", "1e2", "x"])
def test_a_limit_that_is_not_a_plain_integer_in_range_is_400(
    api: Api, path: str, limit: str
) -> None:
    answer = httpx.get(api.light_url + path, params={"limit": limit}, headers=api.headers())
    assert_error(answer, 400, "bad_request")


@pytest.mark.parametrize("path", LISTS)
def test_a_limit_over_the_maximum_is_400_and_the_maximum_is_taken(api: Api, path: str) -> None:
    maximum = 500 if path == "/api/v1/shards" else 200
    over = httpx.get(api.light_url + path, params={"limit": maximum + 1}, headers=api.headers())
    assert_error(over, 400, "bad_request")
    at = httpx.get(api.light_url + path, params={"limit": maximum}, headers=api.headers())
    assert at.status_code == 200, at.text


def test_an_empty_status_is_every_status_and_an_unknown_one_is_400(api: Api) -> None:
    url = f"{api.light_url}/api/v1/suggested-links"
    every = httpx.get(url, params={"status": "", "limit": "200"}, headers=api.headers())
    unfiltered = httpx.get(url, params={"limit": "200"}, headers=api.headers())
    assert every.status_code == 200
    assert every.json() == unfiltered.json()
    assert set(api.suggestions) <= {i["id"] for i in every.json()["items"]}
    assert_error(
        httpx.get(url, params={"status": "done"}, headers=api.headers()), 400, "bad_request"
    )
