"""What the ML fields need from a shard, reduced to a small JSON value ("facts").

One function per side of the computation, shared by the incremental path (the agent's
table) and the full rebuild (the store alone), so both see the same facts:

- `activity_facts`: a linked Email, Message, CalendarEvent, Meeting, Document or Task;
- `opportunity_facts`: the opportunity's own fields (close date, stage, status);
- `opportunity_links`: which opportunities an activity counts for (auto and approved
  links only: a suggestion waiting for review, or a rejected one, does not count).

Facts are plain JSON (short keys, epoch seconds) because they are stored per activity in
the table and written to its changelog at every change.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

from core.tenants import TenantConfig
from linking.activity import activity_of
from shards.kinds import KINDS
from shards.model import Shard

__all__ = [
    "COUNTED_STATUSES",
    "SENIORITY",
    "Facts",
    "activity_facts",
    "engaged_addresses",
    "opportunity_facts",
    "opportunity_links",
    "parse_moment",
    "seniority_rank",
]

Facts = dict[str, Any]

#: Link statuses an activity counts under: set by linking (`auto`) or by a person.
COUNTED_STATUSES: Final = frozenset({"auto", "approved"})

#: Seniority levels, lowest first; a rank is the index + 1 (0: unknown).
SENIORITY: Final = ("IC", "Manager", "Director", "VP", "C-level")

# Checked in this order: "vice president" before "president", "managing director"
# before "director".
_TITLE_RULES: Final = (
    (4, re.compile(r"\b(vice[\s-]*president|vp|svp|evp|avp)\b")),
    (
        5,
        re.compile(
            r"\b(chief|ceo|cfo|cto|coo|cio|ciso|cmo|cro|cpo|cdo|president|co-?founder|"
            r"founder|owner|managing director|general manager|managing partner)\b"
        ),
    ),
    (3, re.compile(r"\b(director|head|principal)\b")),
    (2, re.compile(r"\b(manager|mgr|lead|supervisor|team lead)\b")),
)


def seniority_rank(title: object) -> int:
    """1 (IC) … 5 (C-level) from a job title; 0 when there is no title."""
    if not isinstance(title, str) or not title.strip():
        return 0
    text = title.lower()
    for rank, rule in _TITLE_RULES:
        if rule.search(text):
            return rank
    return 1


def opportunity_links(shard: Shard) -> list[str]:
    """Ids of the opportunities this activity counts for."""
    return sorted(
        {
            link.target_shard_id
            for link in shard.links
            if link.target_shard_type == "Opportunity" and link.status in COUNTED_STATUSES
        }
    )


def engaged_addresses(shard: Shard, tenant: TenantConfig) -> list[str]:
    """External people who took part in the activity, lower-cased.

    Engaged means the person acted: wrote an inbound email or message, attended a
    calendar meeting without declining it, appeared in a recording, owns a document.
    Recipients of our mail who never answered are not engaged.
    """
    activity = activity_of(shard, tenant)
    if activity is None:
        return []
    data = shard.structured_data
    external = {p.email: p for p in activity.participants if not tenant.is_internal(p.email)}
    kind = KINDS[shard.shard_type].activity
    if kind in ("email", "message"):
        found = {e for e, p in external.items() if p.role in ("from", "sender")}
    elif kind == "event":
        declined = {
            str(a.get("email", "")).strip().lower()
            for a in _people(data.get("attendees"))
            if a.get("responseStatus") == "declined"
        }
        found = {e for e in external if e not in declined}
    else:
        found = set(external)
    return sorted(found)


def activity_facts(
    shard: Shard, tenant: TenantConfig, ranks: dict[str, int] | None = None
) -> Facts | None:
    """The facts of one activity; None when it does not count (deleted, cancelled ...).

    `ranks` gives the seniority rank of engaged addresses (from Contact titles).
    """
    activity = activity_of(shard, tenant)
    if activity is None:
        return None
    data = shard.structured_data
    kind = KINDS[shard.shard_type].activity
    at = activity.occurred_at
    engaged = engaged_addresses(shard, tenant)
    facts: Facts = {
        "k": kind,
        "t": int(at.timestamp()) if at is not None else None,
        "eng": engaged,
        "sr": max((ranks or {}).get(e, 0) for e in engaged) if engaged else 0,
    }
    if kind in ("email", "message"):
        facts["dir"] = _direction(shard, activity.participants, tenant)
        facts["th"] = activity.thread_id
    if kind in ("event", "meeting"):
        facts["min"] = _minutes(data)
        # A meeting with the customer: someone external took part (did not decline);
        # all-day entries are blocked time, not meetings.
        facts["meet"] = bool(engaged) and data.get("allDay") is not True
    if kind == "event":
        answers = [
            a.get("responseStatus")
            for a in _people(data.get("attendees"))
            if isinstance(a.get("email"), str) and not tenant.is_internal(a["email"].lower())
        ]
        facts["acc"] = answers.count("accepted")
        facts["dec"] = answers.count("declined")
    if kind == "task":
        # when it was done, or (open) when it is due: `t` of an open task may be ahead
        facts["done"] = data.get("status") == "completed"
        facts["tt"] = data.get("taskType")
    return facts


def opportunity_facts(shard: Shard) -> Facts:
    """The opportunity's own fields the ML fields read."""
    data = shard.structured_data
    return {
        "closeDate": _date_text(data.get("closeDate")),
        "status": data.get("status"),
        "stage": data.get("stage"),
        "stageEnteredAt": data.get("stageEnteredAt"),
        "closeDatePushCount": int(data.get("closeDatePushCount") or 0),
        "deleted": data.get("deleted") is True,
    }


def _direction(shard: Shard, participants: Any, tenant: TenantConfig) -> str:
    stated = shard.structured_data.get("direction")
    if stated in ("inbound", "outbound", "internal"):
        return {"inbound": "in", "outbound": "out", "internal": "int"}[stated]
    senders = [p for p in participants if p.role in ("from", "sender")]
    if not senders:
        return "int"
    if not tenant.is_internal(senders[0].email):
        return "in"
    others = [p for p in participants if p.role not in ("from", "sender")]
    return "out" if any(not tenant.is_internal(p.email) for p in others) else "int"


def _minutes(data: dict[str, Any]) -> float:
    stated = data.get("durationMinutes")
    if isinstance(stated, int | float) and not isinstance(stated, bool) and stated >= 0:
        return float(stated)
    start, end = parse_moment(data.get("start")), parse_moment(data.get("end"))
    if start is None or end is None or end < start:
        return 0.0
    return round((end - start).total_seconds() / 60, 2)


def parse_moment(value: Any) -> datetime | None:
    """An ISO 8601 moment (naive: UTC); None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _date_text(value: Any) -> str | None:
    if isinstance(value, str) and len(value) >= 10:
        return value[:10]
    return None


def _people(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict)]
