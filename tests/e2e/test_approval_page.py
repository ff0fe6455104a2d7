"""The approval page in headless Chromium against the running worker: sign in, review, decide."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from core.tenants import TenantConfig
from mappings.crm import map_crm_event, shipped_mappings
from normalisers.email import normalise_email
from shards.model import ShardDraft
from shards.sqlite import SqliteShardStore
from shards.suggestions import SuggestedLink, suggestion_id
from streams.models import RawEvent
from tests.fixtures import generic_email
from tests.fixtures import salesforce as sf

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
XSS_SUBJECT = "<img src=x onerror=alert(1)>"
REVIEWER = "u-reviewer"
PAGE_SIZE = 20  # the page's, in web/static/approval.js
FILLERS = PAGE_SIZE  # with the two under test: more than one page


@dataclass(frozen=True)
class Seeded:
    """What `seeded` wrote straight into the worker's store."""

    tenant: str
    xss: SuggestedLink  # to approve in the page
    plain: SuggestedLink  # to reject in the page, with a reason
    raced: SuggestedLink  # rejected behind the page's back: approving it is a conflict
    total: int


@pytest.fixture(scope="module")
def seeded(pipeline) -> Seeded:
    """Pending suggestions of a fresh tenant, and the shards they point at."""
    tenant = f"t-review-{uuid.uuid4().hex[:8]}"
    # A thread of its own: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, _seed(pipeline, tenant)).result()


async def _seed(pipeline, tenant: str) -> Seeded:
    config = TenantConfig(internal_domains=frozenset({"northwind-sales.com"}))
    emails = []
    for n, subject in enumerate([XSS_SUBJECT, "Fleet telematics — pilot scope", "Kick-off"]):
        envelope = generic_email.email(
            "priya.raman@fabrikam-logistics.com",
            ["dan.ortiz@northwind-sales.com"],
            cc=["ops@fabrikam-logistics.com"],
            external_id=f"msg-review-{n}",
            subject=subject,
        )
        envelope["tenantId"] = tenant
        emails.append(normalise_email(RawEvent.model_validate(envelope), config))
    opportunities = []
    for external_id, name in [
        (sf.OPPORTUNITY_ID, "Fabrikam — Route Optimization Suite"),
        ("0065g00000Hq2RtAAJ", "Fabrikam — Fleet Telematics"),
    ]:
        envelope = sf.opportunity(tenant, external_id)
        envelope["payload"]["Name"] = name
        opportunities.append(
            (map_crm_event(RawEvent.model_validate(envelope), shipped_mappings()), name)
        )
    (route, route_name), (fleet, _) = opportunities
    now = datetime.now(UTC)

    def suggestion(source: ShardDraft, target: str, name: str | None, **kw: Any) -> SuggestedLink:
        data = source.structured_data
        return SuggestedLink(
            id=suggestion_id(tenant, source.id, target),
            tenant_id=tenant,
            source_shard_id=source.id,
            source_shard_type=source.shard_type,
            target_shard_id=target,
            target_shard_type="Opportunity",
            target_name=name,
            method="rules",
            source_summary={
                "subject": data.get("subject"),
                "participants": [
                    "priya.raman@fabrikam-logistics.com",
                    "dan.ortiz@northwind-sales.com",
                    "ops@fabrikam-logistics.com",
                ],
                "occurredAt": "2026-11-02T09:14:03+00:00",
            },
            created_at=now,
            **kw,
        )

    xss = suggestion(
        emails[0],
        route.id,
        route_name,
        confidence=0.72,
        evidence=[
            {
                "rule": "contact_email",
                "field": "from",
                "value": "priya.raman@fabrikam-logistics.com",
                "detail": "The sender priya.raman@fabrikam-logistics.com is a contact of Fabrikam",
            },
            {"rule": "name_mention", "field": "subject", "value": XSS_SUBJECT, "detail": None},
        ],
        alternatives=[
            {
                "targetShardId": fleet.id,
                "targetShardType": "Opportunity",
                "confidence": 0.7,
                "method": "rules",
                "evidence": [{"rule": "account_domain", "field": "cc", "value": "x", "detail": ""}],
            }
        ],
        reason="two open opportunities on the account",
    )
    plain = suggestion(
        emails[1],
        fleet.id,
        None,  # no name: the page shows the type and id
        confidence=0.61,
        evidence=[{"rule": "account_domain", "field": "from", "value": "fabrikam-logistics.com"}],
    )
    fillers = [
        suggestion(emails[2], f"opp-filler-{i:02d}", f"Filler deal {i:02d}", confidence=0.55)
        for i in range(FILLERS)
    ]
    async with SqliteShardStore(pipeline.data_dir / "data" / "shards.sqlite3") as store:
        await store.upsert_many([*emails, route, fleet])
        for s in [xss, plain, *fillers]:
            assert await store.put_suggestion(s)
    return Seeded(tenant=tenant, xss=xss, plain=plain, raced=fillers[0], total=2 + FILLERS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """A page with what it did that it must not: dialogs, script errors, foreign requests."""

    page: Page
    dialogs: list[str]
    errors: list[str]
    foreign: list[str]


@pytest.fixture
def watched(browser: Browser, pipeline) -> Iterator[Watched]:
    context = browser.new_context()
    page = context.new_page()
    w = Watched(page, [], [], [])

    def on_dialog(dialog: Any) -> None:
        w.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda e: w.errors.append(str(e)))
    page.on(
        "request",
        lambda r: None if r.url.startswith(pipeline.base_url) else w.foreign.append(r.url),
    )
    try:
        yield w
    finally:
        context.close()


def _api(pipeline, method: str, path: str, token: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"{pipeline.base_url}{path}", headers=headers, timeout=10, **kw)


def _card(page: Page, suggestion: SuggestedLink):
    return page.locator(f'li.suggestion[data-suggestion-id="{suggestion.id}"]')


def _sign_in(page: Page, token: str) -> None:
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def test_the_page_and_its_files_carry_a_strict_policy(pipeline) -> None:
    page = httpx.get(f"{pipeline.base_url}/review", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "<script src=" in page.text
    assert "<script>" not in page.text  # nothing inline: the policy would block it
    script = httpx.get(f"{pipeline.base_url}/review/static/approval.js", timeout=10)
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in script.text
    assert "insertAdjacentHTML" not in script.text
    style = httpx.get(f"{pipeline.base_url}/review/static/approval.css", timeout=10)
    assert style.headers["content-type"].startswith("text/css")
    assert httpx.get(f"{pipeline.base_url}/review/static/..%2Fapproval.py").status_code == 404
    assert httpx.get(f"{pipeline.base_url}/review/static/approval.html").status_code == 404


def test_a_refused_token_asks_to_sign_in_again(pipeline, watched: Watched) -> None:
    page = watched.page
    page.goto(f"{pipeline.base_url}/review")
    _sign_in(page, "not-a-token")
    expect(page.locator("#sign-in-error")).to_contain_text("Please sign in again")
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("#review")).to_be_hidden()
    assert page.evaluate("Object.keys(sessionStorage)") == []
    assert watched.errors == []


def test_review_approve_and_reject_in_place(pipeline, seeded: Seeded, watched: Watched) -> None:
    page = watched.page
    token = pipeline.token(seeded.tenant, REVIEWER)
    page.goto(f"{pipeline.base_url}/review")
    expect(page.locator("#sign-in")).to_be_visible()
    _sign_in(page, token)
    expect(page.locator("#who-text")).to_have_text(
        f"Signed in as {REVIEWER} (tenant {seeded.tenant})"
    )

    # One page, then "Load more" for the rest; then no more.
    items = page.locator("#items > li.suggestion")
    expect(items).to_have_count(PAGE_SIZE)
    page.get_by_role("button", name="Load more").click()
    expect(items).to_have_count(seeded.total)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()

    # The hostile subject is text; nothing from the data became markup.
    xss = _card(page, seeded.xss)
    expect(xss.locator("h3.subject")).to_have_text(XSS_SUBJECT)
    assert page.locator("#items img").count() == 0
    expect(xss).to_contain_text("priya.raman@fabrikam-logistics.com, dan.ortiz@northwind-sales.com")
    expect(xss.locator("time").first).to_have_attribute("datetime", "2026-11-02T09:14:03+00:00")
    expect(xss.locator(".proposal .target-name")).to_have_text(
        "Opportunity: Fabrikam — Route Optimization Suite"
    )
    expect(xss.locator(".proposal .percent")).to_have_text("72%")
    expect(xss.locator(".proposal .evidence li")).to_have_text(
        [
            "The sender priya.raman@fabrikam-logistics.com is a contact of Fabrikam",
            f"name_mention: subject is {XSS_SUBJECT}",
        ]
    )
    expect(xss.locator(".why")).to_have_text("two open opportunities on the account")
    alternative = xss.locator(".alternatives li").first
    expect(alternative).to_contain_text(f"Opportunity {seeded.plain.target_shard_id}")
    expect(alternative).to_contain_text("70%")
    plain = _card(page, seeded.plain)
    expect(plain.locator(".proposal .target-name")).to_have_text(
        f"Opportunity {seeded.plain.target_shard_id}"
    )
    expect(plain.locator(".proposal .evidence li")).to_have_text(
        ["account_domain: from is fabrikam-logistics.com"]
    )

    # Decisions update their item in place: no navigation, nothing else moves.
    page.evaluate("window.__stillThisPage = true")
    xss.get_by_role("button", name="Approve").click()
    expect(xss).to_have_attribute("data-status", "approved")
    expect(xss.locator(".outcome")).to_contain_text(f"Approved by {REVIEWER}")
    expect(xss.get_by_role("button")).to_have_count(0)

    plain.get_by_label("Reason (optional)").fill("wrong deal: this is the telematics pilot")
    plain.get_by_role("button", name="Reject").click()
    expect(plain).to_have_attribute("data-status", "rejected")
    expect(plain.locator(".outcome")).to_contain_text(f"Rejected by {REVIEWER}")
    expect(plain.locator(".outcome")).to_contain_text("wrong deal: this is the telematics pilot")

    # Someone else decided this one after the page loaded: the page says so.
    raced = _card(page, seeded.raced)
    assert _api(
        pipeline, "POST", f"/api/v1/suggested-links/{seeded.raced.id}/reject", token
    ).is_success
    raced.get_by_role("button", name="Approve").click()
    expect(raced.locator(".outcome")).to_have_text(
        "Already decided: the suggestion is already rejected"
    )

    assert page.evaluate("window.__stillThisPage") is True
    expect(items).to_have_count(seeded.total)
    expect(page.locator("li.suggestion.pending")).to_have_count(seeded.total - 3)
    expect(page.locator("#list-status")).to_have_text(
        f"{seeded.total - 3} waiting, 3 decided on this page."
    )
    assert watched.dialogs == []
    assert watched.errors == []
    assert watched.foreign == []

    # The decisions are the API's, with the token's user, and the approval is on the shard.
    approved = _suggestion(pipeline, token, seeded.xss.id, "approved")
    assert approved["decidedBy"] == REVIEWER
    rejected = _suggestion(pipeline, token, seeded.plain.id, "rejected")
    assert rejected["decidedBy"] == REVIEWER
    assert rejected["decisionReason"] == "wrong deal: this is the telematics pilot"
    source = _api(pipeline, "GET", f"/api/v1/shards/{seeded.xss.source_shard_id}", token).json()
    assert {(link["targetShardId"], link["status"]) for link in source["links"]} >= {
        (seeded.xss.target_shard_id, "approved")
    }
    other = _api(pipeline, "GET", f"/api/v1/shards/{seeded.plain.source_shard_id}", token).json()
    assert seeded.plain.target_shard_id not in {link["targetShardId"] for link in other["links"]}

    # A reload shows only what is still pending.
    page.reload()
    expect(items).to_have_count(seeded.total - 3)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    expect(_card(page, seeded.xss)).to_have_count(0)
    expect(_card(page, seeded.plain)).to_have_count(0)


def test_another_tenant_sees_none_of_them(pipeline, seeded: Seeded, watched: Watched) -> None:
    page = watched.page
    other = pipeline.token(f"t-other-{uuid.uuid4().hex[:8]}", REVIEWER)
    page.goto(f"{pipeline.base_url}/review")
    _sign_in(page, other)
    expect(page.locator("#list-status")).to_have_text("Nothing is waiting for review.")
    expect(page.locator("#items > li")).to_have_count(0)
    listed = _api(pipeline, "GET", "/api/v1/suggested-links", other, params={"limit": "200"})
    assert listed.json()["items"] == []
    for s in (seeded.xss, seeded.plain):
        assert (
            _api(pipeline, "POST", f"/api/v1/suggested-links/{s.id}/approve", other).status_code
            == 404
        )
    assert watched.dialogs == []
    assert watched.errors == []


def _suggestion(pipeline, token: str, wanted: str, status: str) -> dict[str, Any]:
    cursor = None
    while True:
        params = {"status": status, "limit": "200", **({"cursor": cursor} if cursor else {})}
        body = _api(pipeline, "GET", "/api/v1/suggested-links", token, params=params).json()
        for item in body["items"]:
            if item["id"] == wanted:
                return item
        cursor = body["nextCursor"]
        if not cursor:
            raise AssertionError(f"suggestion {wanted} is not {status}")
