"""The ML fields of one opportunity, computed from its activities' facts at a moment.

A pure function of (activity facts, opportunity facts, now, the tenant's time zone):
the table keeps the facts, and the fields are computed whenever they are read or
written back, so rolling windows are right at any moment, not only when an event
arrives. Definitions: `docs/ml-fields.md`.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from tables.facts import SENIORITY, Facts, parse_moment

__all__ = ["FEATURE_NAMES", "OpportunityState", "compute_features", "engagement_score"]

DAY: Final = 86_400
#: A recording within this many seconds of a calendar meeting is that meeting.
SAME_MEETING_SECONDS: Final = 30 * 60

FEATURE_NAMES: Final = (
    "lastActivityAt", "daysSinceLastActivity", "firstActivityAt",
    "daysSinceLastInboundEmail", "daysSinceLastOutboundEmail", "daysSinceLastMeeting",
    "nextMeetingAt", "daysToNextMeeting",
    "emailsInbound7d", "emailsInbound14d", "emailsInbound30d",
    "emailsOutbound7d", "emailsOutbound14d", "emailsOutbound30d", "inboundOutboundRatio30d",
    "meetings14d", "meetings30d", "totalMeetingMinutes30d", "messages30d",
    "documentsShared", "lastDocumentAt",
    "uniqueExternalContactsEngaged30d", "uniqueExternalContactsEngagedTotal",
    "newContactsEngaged14d", "seniorityMaxEngaged", "execMeetingShare30d",
    "medianReplyLatencyHours30d", "ghosted", "meetingAcceptanceRate30d",
    "daysToClose", "closeDateOverdue", "closeDatePushCount", "daysInStage",
    "engagementScore", "activityCount",
    "tasksCompleted30d", "openTasks", "overdueTasks",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class OpportunityState:
    """What the table holds for one opportunity: its facts and its activities' facts."""

    opportunity: Facts | None
    activities: Mapping[str, Facts]

    @classmethod
    def from_value(cls, value: Mapping[str, Any] | None) -> OpportunityState:
        """From a table value `{"opp": {...}, "acts": {id: facts}}` (None: empty)."""
        value = value or {}
        return cls(value.get("opp"), dict(value.get("acts") or {}))


def compute_features(
    state: OpportunityState, now: datetime, zone: ZoneInfo | None = None
) -> dict[str, Any]:
    """Every ML field at `now` (UTC); days are calendar days in `zone`."""
    zone = zone or ZoneInfo("UTC")
    now_s = int(now.timestamp())
    today = now.astimezone(zone).date()
    acts = [f for _, f in sorted(state.activities.items())]
    # what happened by now; an open task has not happened (its time is when it is due)
    past = [
        f
        for f in acts
        if f.get("t") is not None and f["t"] <= now_s and not (f["k"] == "task" and not f["done"])
    ]

    def within(f: Facts, days: int) -> bool:
        return f.get("t") is not None and now_s - days * DAY < f["t"] <= now_s

    def days_since(t: int | None) -> int | None:
        return None if t is None else (today - _day(t, zone)).days

    emails = [f for f in past if f["k"] == "email"]
    inbound = [f for f in emails if f.get("dir") == "in"]
    outbound = [f for f in emails if f.get("dir") == "out"]
    meetings = _meetings(acts)
    past_meetings = [f for f in meetings if f["t"] <= now_s]
    future_meetings = [f for f in meetings if f["t"] > now_s]
    meetings30 = [f for f in past_meetings if within(f, 30)]
    documents = [f for f in acts if f["k"] == "document"]
    tasks = [f for f in acts if f["k"] == "task"]
    open_tasks = [f for f in tasks if not f.get("done")]

    last_at = max((f["t"] for f in past), default=None)
    first_at = min((f["t"] for f in past), default=None)
    next_meeting = min((f["t"] for f in future_meetings), default=None)
    inbound30 = sum(within(f, 30) for f in inbound)
    outbound30 = sum(within(f, 30) for f in outbound)
    inbound14 = sum(within(f, 14) for f in inbound)
    outbound14 = sum(within(f, 14) for f in outbound)

    first_engaged: dict[str, int] = {}
    for f in past:
        for address in f.get("eng") or ():
            first_engaged[address] = min(first_engaged.get(address, f["t"]), f["t"])
    engaged30 = {a for f in past if within(f, 30) for a in f.get("eng") or ()}
    top_rank = max((f.get("sr", 0) for f in past), default=0)

    invitations = [
        f
        for f in acts
        if f["k"] == "event" and f.get("t") is not None and f["t"] > now_s - 30 * DAY
    ]
    accepted = sum(f.get("acc", 0) for f in invitations)
    declined = sum(f.get("dec", 0) for f in invitations)

    opp = state.opportunity or {}
    close = _date(opp.get("closeDate"))
    stage_entered = parse_moment(opp.get("stageEnteredAt"))

    fields: dict[str, Any] = {
        "lastActivityAt": _iso(last_at),
        "daysSinceLastActivity": days_since(last_at),
        "firstActivityAt": _iso(first_at),
        "daysSinceLastInboundEmail": days_since(max((f["t"] for f in inbound), default=None)),
        "daysSinceLastOutboundEmail": days_since(max((f["t"] for f in outbound), default=None)),
        "daysSinceLastMeeting": days_since(max((f["t"] for f in past_meetings), default=None)),
        "nextMeetingAt": _iso(next_meeting),
        "daysToNextMeeting": (
            None if next_meeting is None else (_day(next_meeting, zone) - today).days
        ),
        "emailsInbound7d": sum(within(f, 7) for f in inbound),
        "emailsInbound14d": inbound14,
        "emailsInbound30d": inbound30,
        "emailsOutbound7d": sum(within(f, 7) for f in outbound),
        "emailsOutbound14d": outbound14,
        "emailsOutbound30d": outbound30,
        "inboundOutboundRatio30d": round(inbound30 / outbound30, 4) if outbound30 else None,
        "meetings14d": sum(within(f, 14) for f in past_meetings),
        "meetings30d": len(meetings30),
        "totalMeetingMinutes30d": round(sum(float(f.get("min") or 0) for f in meetings30), 2),
        "messages30d": sum(within(f, 30) for f in past if f["k"] == "message"),
        "documentsShared": len(documents),
        "lastDocumentAt": _iso(
            max((f["t"] for f in documents if f.get("t") is not None), default=None)
        ),
        "uniqueExternalContactsEngaged30d": len(engaged30),
        "uniqueExternalContactsEngagedTotal": len(first_engaged),
        "newContactsEngaged14d": sum(now_s - 14 * DAY < t for t in first_engaged.values()),
        "seniorityMaxEngaged": SENIORITY[top_rank - 1] if top_rank else None,
        "execMeetingShare30d": (
            round(sum(f.get("sr", 0) >= 4 for f in meetings30) / len(meetings30), 4)
            if meetings30
            else None
        ),
        "medianReplyLatencyHours30d": _median_reply_hours(past, now_s),
        "ghosted": outbound14 >= 2 and inbound14 == 0,
        "meetingAcceptanceRate30d": (
            round(accepted / (accepted + declined), 4) if accepted + declined else None
        ),
        "daysToClose": None if close is None else (close - today).days,
        "closeDateOverdue": bool(
            close is not None and opp.get("status") == "open" and close < today
        ),
        "closeDatePushCount": int(opp.get("closeDatePushCount") or 0),
        "daysInStage": (
            None if stage_entered is None else (today - stage_entered.astimezone(zone).date()).days
        ),
        "activityCount": len(acts),
        "tasksCompleted30d": sum(within(f, 30) for f in tasks if f.get("done")),
        "openTasks": len(open_tasks),
        "overdueTasks": sum(
            f.get("t") is not None and _day(f["t"], zone) < today for f in open_tasks
        ),
    }
    fields["engagementScore"] = engagement_score(fields)
    return fields


def engagement_score(f: Mapping[str, Any]) -> int:
    """0-100, documented in `docs/ml-fields.md`.

    recency 30 + inbound mail 20 + meetings 20 + breadth 15 + seniority 10 +
    responsiveness 5, minus 15 when ghosted; clamped to 0-100 and rounded.
    """
    score = 0.0
    since = f["daysSinceLastActivity"]
    if since is not None:
        score += 30 * max(0.0, 1 - max(since, 0) / 30)
    score += 20 * min(1.0, f["emailsInbound30d"] / 10)
    score += 20 * min(1.0, f["meetings30d"] / 4)
    score += 15 * min(1.0, f["uniqueExternalContactsEngaged30d"] / 5)
    level = f["seniorityMaxEngaged"]
    score += 10 * ((SENIORITY.index(level) + 1) / len(SENIORITY) if level else 0)
    latency = f["medianReplyLatencyHours30d"]
    if latency is not None:
        score += 5 if latency <= 24 else 2.5 if latency <= 72 else 0
    if f["ghosted"]:
        score -= 15
    result: int = round(min(100.0, max(0.0, score)))
    return result


def _meetings(acts: Iterable[Facts]) -> list[Facts]:
    """External meetings: calendar meetings, and recordings no calendar meeting covers."""
    timed = [f for f in acts if f.get("meet") and f.get("t") is not None]
    calendar = sorted(f["t"] for f in timed if f["k"] == "event")
    recordings = [
        f
        for f in timed
        if f["k"] == "meeting"
        and not any(abs(f["t"] - t) <= SAME_MEETING_SECONDS for t in calendar)
    ]
    return [f for f in timed if f["k"] == "event"] + recordings


def _median_reply_hours(past: list[Facts], now_s: int) -> float | None:
    """Median hours from our message to the customer's next one in the same thread."""
    threads: dict[str, list[tuple[int, str]]] = {}
    for f in past:
        if f["k"] in ("email", "message") and f.get("th") and f.get("dir") in ("in", "out"):
            threads.setdefault(f["th"], []).append((f["t"], f["dir"]))
    latencies = []
    for items in threads.values():
        items.sort()
        for (t0, d0), (t1, d1) in itertools.pairwise(items):
            if d0 == "out" and d1 == "in" and t1 > now_s - 30 * DAY:
                latencies.append((t1 - t0) / 3600)
    return round(statistics.median(latencies), 2) if latencies else None


def _day(t: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(t, UTC).astimezone(zone).date()


def _iso(t: int | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None
