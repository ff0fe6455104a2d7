"""What is linked, asked about or dropped: thresholds, groups, ties, people's decisions."""

from __future__ import annotations

from dataclasses import replace

from core.tenants import TenantConfig
from linking.activity import Activity, Participant
from linking.decisions import Decision, decide
from linking.rules import NAME_RULE, Candidate, Evidence

DEFAULT = TenantConfig()
ACTIVITY = Activity(
    tenant_id="t-1",
    shard_id="mail-1",
    shard_type="Email",
    occurred_at=None,
    participants=(Participant("priya@acme.com", "Priya", "from"),),
    thread_id=None,
    subject="Hello",
    text="",
    internal_only=False,
)


def candidate(
    target: str, confidence: float, group: str | None = None, *, kind: str = "Opportunity",
    named: bool = False,
) -> Candidate:  # fmt: skip
    evidence: tuple[Evidence, ...] = (
        Evidence("test", "field", target, f"{target} scored {confidence}"),
    )
    if named:
        evidence += (Evidence(NAME_RULE, "name", target, f"the body names {target}"),)
    return Candidate(target, kind, confidence, "test", evidence, group)


def ids(found: list[Candidate]) -> list[str]:
    return [c.target_shard_id for c in found]


def run(*found: Candidate, tenant: TenantConfig = DEFAULT, **decided: str) -> Decision:
    return decide(ACTIVITY, list(found), tenant, decided)


def test_default_thresholds_link_ask_and_drop() -> None:
    d = run(candidate("sure", 0.9), candidate("edge", 0.85), candidate("maybe", 0.6),
            candidate("low", 0.5), candidate("weak", 0.49))  # fmt: skip
    assert ids(d.links) == ["sure", "edge"]
    assert [s.candidate.target_shard_id for s in d.suggestions] == ["maybe", "low"]
    assert ids(d.dropped) == ["weak"]
    assert d.suggestions[0].alternatives == ()
    assert d.suggestions[0].reason == "confidence 0.60 is below the auto-link threshold 0.85"


def test_thresholds_come_from_the_tenant() -> None:
    strict = TenantConfig.model_validate({"linking": {"autoThreshold": 0.95,
                                                      "suggestThreshold": 0.7}})  # fmt: skip
    d = run(candidate("sure", 0.9), candidate("maybe", 0.6), tenant=strict)
    assert ids(d.links) == []
    assert [s.candidate.target_shard_id for s in d.suggestions] == ["sure"]
    assert ids(d.dropped) == ["maybe"]
    lenient = TenantConfig.model_validate({"linking": {"autoThreshold": 0.55}})
    assert ids(run(candidate("maybe", 0.6), tenant=lenient).links) == ["maybe"]


def test_a_tie_is_one_question_with_the_others_as_alternatives_never_a_link() -> None:
    g = "opportunities:acme"
    d = run(candidate("a", 0.9, g), candidate("b", 0.9, g), candidate("c", 0.6, g),
            candidate("d", 0.3, g))  # fmt: skip
    assert d.links == []
    (s,) = d.suggestions
    assert s.candidate.target_shard_id == "a"
    assert ids(list(s.alternatives)) == ["b", "c"]
    assert s.reason == "tie: 2 opportunities of one account score the same (0.90); a person chooses"
    assert ids(d.dropped) == ["d"]


def test_a_tie_below_the_suggest_threshold_is_dropped() -> None:
    g = "opportunities:acme"
    d = run(candidate("a", 0.4, g), candidate("b", 0.4, g))
    assert d.links == [] and d.suggestions == [] and ids(d.dropped) == ["a", "b"]


def test_the_best_of_a_group_links_and_the_rest_are_dropped() -> None:
    g = "opportunities:acme"
    d = run(candidate("b", 0.6, g), candidate("a", 0.95, g), candidate("c", 0.88, g))
    assert ids(d.links) == ["a"]
    assert ids(d.dropped) == ["c", "b"]
    assert d.suggestions == []


def test_a_runner_up_the_message_names_is_asked_about_on_its_own() -> None:
    g = "opportunities:acme"
    d = run(candidate("a", 0.95, g, named=True), candidate("b", 0.8, g, named=True),
            candidate("c", 0.75, g))  # fmt: skip
    assert ids(d.links) == ["a"]
    (s,) = d.suggestions
    assert s.candidate.target_shard_id == "b" and s.alternatives == ()
    assert ids(d.dropped) == ["c"]


def test_an_uncertain_best_of_a_group_is_asked_about_with_its_alternatives() -> None:
    g = "opportunities:acme"
    d = run(candidate("a", 0.79, g), candidate("b", 0.75, g), candidate("c", 0.45, g))
    (s,) = d.suggestions
    assert s.candidate.target_shard_id == "a" and ids(list(s.alternatives)) == ["b"]
    assert "1 other candidate(s)" in s.reason
    assert ids(d.dropped) == ["c"]


def test_groups_are_decided_apart() -> None:
    d = run(candidate("a", 0.9, "opportunities:acme"), candidate("x", 0.9, "opportunities:xyz"),
            candidate("contact", 0.97, kind="Contact"))  # fmt: skip
    assert ids(d.links) == ["a", "x", "contact"]


def test_an_approved_target_is_kept_not_asked_again_and_settles_its_group() -> None:
    g = "opportunities:acme"
    d = run(candidate("a", 0.79, g), candidate("b", 0.75, g), b="approved")
    assert ids(d.kept) == ["b"]
    assert d.links == [] and d.suggestions == []
    assert ids(d.dropped) == ["a"]


def test_an_approved_target_stays_even_below_every_threshold() -> None:
    d = run(candidate("c", 0.2, kind="Contact"), c="approved")
    assert ids(d.kept) == ["c"] and d.links == [] and d.dropped == []


def test_a_rejected_target_is_never_linked_nor_asked_about_again() -> None:
    g = "opportunities:acme"
    d = run(candidate("a", 0.99, kind="Account"), a="rejected")
    assert d.links == [] and d.suggestions == [] and ids(d.dropped) == ["a"]
    d = run(candidate("x", 0.6, g), candidate("y", 0.6, g), candidate("z", 0.6, g), x="rejected")
    (s,) = d.suggestions
    assert s.candidate.target_shard_id == "y" and ids(list(s.alternatives)) == ["z"]


def test_an_internal_only_activity_decides_nothing() -> None:
    d = decide(replace(ACTIVITY, internal_only=True), [candidate("a", 0.99)], DEFAULT, {})
    assert d.links == [] and d.suggestions == [] and ids(d.dropped) == ["a"]


def test_the_same_target_twice_counts_once_at_its_best() -> None:
    d = run(candidate("a", 0.6), candidate("a", 0.9))
    assert ids(d.links) == ["a"] and d.suggestions == [] and d.dropped == []
