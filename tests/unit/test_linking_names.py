"""Company domains at every level, and opportunity names found in text."""

from __future__ import annotations

import random
import string

import pytest

from core.domains import domain_keys, is_subdomain_of, registrable_domain
from linking.names import _folded_words, distinctive_phrase, find_mentions, words

# --- domains ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "registrable"),
    [
        ("acme.com", "acme.com"),
        ("mail.acme.com", "acme.com"),
        ("eu.mail.acme.com", "acme.com"),
        ("acme.co.uk", "acme.co.uk"),
        ("eu.acme.co.uk", "acme.co.uk"),
        ("shop.acme.com.au", "acme.com.au"),
        ("Mail.ACME.com.", "acme.com"),
        ("acme.io", "acme.io"),
    ],
)
def test_the_registrable_domain_is_what_a_company_registers(host: str, registrable: str) -> None:
    assert registrable_domain(host) == registrable


def test_domain_keys_go_from_the_host_down_to_the_registrable_domain_and_no_further() -> None:
    assert domain_keys("eu.mail.acme.com") == ("eu.mail.acme.com", "mail.acme.com", "acme.com")
    assert domain_keys("acme.co.uk") == ("acme.co.uk",)
    assert domain_keys("com") == ()
    assert domain_keys("") == ()


def test_a_different_country_domain_is_another_domain() -> None:
    assert not is_subdomain_of("acme.co.uk", "acme.com")
    assert not is_subdomain_of("acme.com", "acme.co.uk")
    assert is_subdomain_of("mail.acme.com", "acme.com")
    assert not is_subdomain_of("acme.com", "mail.acme.com")
    assert not is_subdomain_of("acme.co.uk", "co.uk")  # never a public suffix
    assert not is_subdomain_of("fabrikam-logistic.com", "fabrikam-logistics.com")


# --- names -----------------------------------------------------------------------------------


def test_words_fold_case_accents_dashes_and_punctuation() -> None:
    assert words("Fabrikam — Route-Optimization Suite!") == "fabrikam route optimization suite"
    assert words("Müller\u2019s Café: Phase 2") == "muller s cafe phase 2"


@pytest.mark.parametrize(
    ("name", "account", "phrase"),
    [
        ("Fabrikam — Route Optimization Suite", "Fabrikam Logistics", "route optimization suite"),
        ("Fabrikam Logistics: Fleet Telematics", "Fabrikam Logistics", "fleet telematics"),
        ("Fabrikam Route Optimization", "Fabrikam Logistics", "route optimization"),
        ("Route Optimization (Fabrikam)", "Fabrikam Logistics", "route optimization"),
        ("Telematics", "Fabrikam Logistics", "telematics"),
        ("Claims Automation", None, "claims automation"),
    ],
)
def test_the_distinctive_phrase_leaves_the_account_out(
    name: str, account: str | None, phrase: str
) -> None:
    assert distinctive_phrase(name, account) == phrase


@pytest.mark.parametrize(
    "name",
    [
        "Fabrikam — 2027 Renewal",
        "Renewal",
        "Q3 Expansion",
        "New Business - FY27",
        "Fabrikam Logistics",
        "Fabrikam — Pilot",
        "Upsell: 50 seats",
        "Fabrikam — ERP",
    ],
)
def test_generic_names_are_never_looked_for(name: str) -> None:
    assert distinctive_phrase(name, "Fabrikam Logistics") is None


def test_a_mention_is_whole_words_in_any_case_and_punctuation() -> None:
    phrases = {"o1": "route optimization suite"}
    found = find_mentions(phrases, {"subject": "RE: Route-Optimization SUITE — pricing!"})
    assert found["o1"].where == "subject"
    assert find_mentions(phrases, {"text": "our reroute optimization suites"}) == {}
    assert find_mentions(phrases, {"text": "route optimisation suite"}) == {}


def test_a_phrase_inside_a_longer_phrase_found_does_not_count() -> None:
    phrases = {"short": "route optimization", "long": "route optimization phase 2"}
    found = find_mentions(phrases, {"text": "The Route Optimization Phase 2 kickoff"})
    assert set(found) == {"long"}
    found = find_mentions(phrases, {"text": "route optimization, then route optimization phase 2"})
    assert set(found) == {"short", "long"}


def test_ascii_words_are_those_of_the_general_path() -> None:
    """`words` skips decomposing ASCII text: the same words as decomposing it."""
    rng = random.Random(15)
    texts = ["Fabrikam — Route", "ÉTÉ Deal", "Q3/Q4: Fleet-Renewal (EU)", "ﬁnal ǅ", "\tA\x0bb\n"]
    texts += ["".join(rng.choice(string.printable) for _ in range(rng.randrange(30)))
              for _ in range(5_000)]  # fmt: skip
    for text in texts:
        assert words(text) == _folded_words(text), text
