"""What happens to each candidate: linked at once, asked about, or dropped.

At or above the tenant's `autoThreshold` a candidate is linked (status `auto`); in
[`suggestThreshold`, `autoThreshold`) a person is asked (a suggestion); below, nothing.
Candidates of one group (`Candidate.group`: one account's opportunities, the contacts
sharing an address, the accounts sharing a domain) are weighed together: the best is
linked or suggested and the others of the band become its alternatives (one the message
names itself is asked about on its own, even beside a linked winner); when two or
more share the best score it is a tie, and a tie is always a question, never a link.
People's decisions win: a target someone approved stays (in `kept`, never suggested
again) and settles its group; a rejected target is never linked or suggested again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from core.tenants import TenantConfig
from linking.activity import Activity
from linking.rules import NAME_RULE, Candidate

__all__ = ["Decision", "Suggestion", "decide"]

_SAME: Final = 1e-9

_GROUP_WORDS: Final = {
    "opportunities": "opportunities of one account",
    "address": "contacts with this address",
    "domain": "accounts with this domain",
}


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A link a person should confirm, the other targets they may choose instead, and why."""

    candidate: Candidate
    alternatives: tuple[Candidate, ...]
    reason: str


@dataclass(slots=True)
class Decision:
    """The outcome for one activity.

    - `links`: write on the shard with status `auto` (and emit `link.created` if new).
    - `suggestions`: store as suggested links (emit `link.suggested` if new).
    - `kept`: candidates a person approved earlier; their links stay `approved`.
    - `dropped`: everything else (too weak, beaten in its group, rejected by a person).
    """

    links: list[Candidate] = field(default_factory=list)
    suggestions: list[Suggestion] = field(default_factory=list)
    kept: list[Candidate] = field(default_factory=list)
    dropped: list[Candidate] = field(default_factory=list)


def decide(
    activity: Activity,
    candidates: list[Candidate],
    tenant: TenantConfig,
    decided: dict[str, str],
) -> Decision:
    """Sort the candidates into links, suggestions, kept and dropped (see the module doc)."""
    decision = Decision()
    if activity.internal_only:
        decision.dropped.extend(candidates)
        return decision
    auto = tenant.linking.auto_threshold
    suggest = tenant.linking.suggest_threshold
    for group in _groups(candidates):
        approved = [c for c in group if decided.get(c.target_shard_id) == "approved"]
        live = [c for c in group if decided.get(c.target_shard_id) not in ("approved", "rejected")]
        decision.dropped.extend(c for c in group if decided.get(c.target_shard_id) == "rejected")
        decision.kept.extend(approved)
        if approved:  # a person settled this group
            decision.dropped.extend(live)
            continue
        if not live:
            continue
        best = live[0]
        if best.confidence < suggest:
            decision.dropped.extend(live)
            continue
        band = [c for c in live if c.confidence >= suggest]
        tied = [c for c in band if abs(c.confidence - best.confidence) < _SAME]
        if len(tied) > 1:
            what = _GROUP_WORDS.get((best.group or "").partition(":")[0], "targets")
            reason = (
                f"tie: {len(tied)} {what} score the same ({best.confidence:.2f}); a person chooses"
            )
            decision.suggestions.append(Suggestion(best, tuple(band[1:]), reason))
            decision.dropped.extend(c for c in live if c not in band)
        elif best.confidence >= auto:
            decision.links.append(best)
            for other in live[1:]:
                if other.confidence >= suggest and _named(other):
                    reason = (
                        "named in this message too, though another target of its group was "
                        f"linked; confidence {other.confidence:.2f}"
                    )
                    decision.suggestions.append(Suggestion(other, (), reason))
                else:
                    decision.dropped.append(other)
        else:
            reason = f"confidence {best.confidence:.2f} is below the auto-link threshold {auto:.2f}"
            if len(band) > 1:
                reason += f"; {len(band) - 1} other candidate(s) of the group are possible"
            decision.suggestions.append(Suggestion(best, tuple(band[1:]), reason))
            decision.dropped.extend(c for c in live if c not in band)
    return decision


def _named(candidate: Candidate) -> bool:
    """True when the message names the target itself (not just a runner-up of a group)."""
    return any(e.rule == NAME_RULE for e in candidate.evidence)


def _groups(candidates: list[Candidate]) -> list[list[Candidate]]:
    """Candidates by group (a lone candidate is its own), best first, one per target.

    Sorting is stable: candidates of equal confidence keep the order the rules gave them
    (for opportunities: the nearest close date first).
    """
    best: dict[str, Candidate] = {}
    for c in candidates:
        kept = best.get(c.target_shard_id)
        if kept is None or c.confidence > kept.confidence:
            best[c.target_shard_id] = c
    groups: dict[str, list[Candidate]] = {}
    for c in candidates:
        if best.get(c.target_shard_id) is not c:
            continue
        key = f"group:{c.group}" if c.group else f"target:{c.target_shard_id}"
        groups.setdefault(key, []).append(c)
    return [sorted(g, key=lambda c: -c.confidence) for g in groups.values()]
