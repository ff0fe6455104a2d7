"""ML-field definitions on hand-made facts: each number checked against its definition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from core.tenants import TenantConfig
from shards.model import ShardDraft, ShardSource, merge
from tables.facts import activity_facts, seniority_rank
from tables.features import OpportunityState, compute_features, engagement_score
from tables.writeback import Pending

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DAY = 86_400
TENANT = TenantConfig.model_validate({"internalDomains": ["ours.com"], "timeZone": "UTC"})


def at(days_ago: float) -> int:
    return int((NOW - timedelta(days=days_ago)).timestamp())


def email(days_ago: float, direction: str, thread: str = "t1", who: str = "ana@c.com") -> dict:
    return {
        "k": "email", "t": at(days_ago), "dir": direction, "th": thread,
        "eng": [who] if direction == "in" else [], "sr": 0,
    }  # fmt: skip


def features(acts: dict, opp: dict | None = None, zone: str = "UTC") -> dict:
    return compute_features(OpportunityState(opp, acts), NOW, ZoneInfo(zone))


def test_email_windows_ratio_and_days_since() -> None:
    acts = {
        "a": email(1, "in"), "b": email(6.9, "in"), "c": email(10, "in"), "d": email(29, "in"),
        "e": email(31, "in"), "f": email(2, "out"), "g": email(20, "out"),
        "h": email(3, "int"), "future": email(-2, "in"),
    }  # fmt: skip
    f = features(acts)
    assert (f["emailsInbound7d"], f["emailsInbound14d"], f["emailsInbound30d"]) == (2, 3, 4)
    assert (f["emailsOutbound7d"], f["emailsOutbound14d"], f["emailsOutbound30d"]) == (1, 1, 2)
    assert f["inboundOutboundRatio30d"] == 2.0
    assert f["daysSinceLastInboundEmail"] == 1
    assert f["daysSinceLastOutboundEmail"] == 2
    assert f["lastActivityAt"] == "2026-11-27T12:00:00Z"  # the future-dated one is not past
    assert f["firstActivityAt"] == "2026-10-28T12:00:00Z"
    assert f["activityCount"] == 9


def test_days_are_calendar_days_in_the_tenant_zone() -> None:
    # 2026-11-27 23:30 UTC is already the 28th in Berlin: 0 days there, 1 day in UTC
    t = int(datetime(2026, 11, 27, 23, 30, tzinfo=UTC).timestamp())
    acts = {"a": {"k": "message", "t": t, "dir": "in", "th": None, "eng": [], "sr": 0}}
    assert features(acts, zone="UTC")["daysSinceLastActivity"] == 1
    assert features(acts, zone="Europe/Berlin")["daysSinceLastActivity"] == 0


def test_ghosted_needs_two_unanswered_outbound_in_14_days() -> None:
    assert features({"a": email(2, "out"), "b": email(5, "out")})["ghosted"] is True
    assert features({"a": email(2, "out")})["ghosted"] is False
    answered = {"a": email(2, "out"), "b": email(5, "out"), "c": email(13, "in")}
    assert features(answered)["ghosted"] is False
    old_answer = {"a": email(2, "out"), "b": email(5, "out"), "c": email(15, "in")}
    assert features(old_answer)["ghosted"] is True


def test_reply_latency_is_the_median_within_threads() -> None:
    acts = {
        # thread 1: out, in 2 h later, out, in 10 h later
        "a": email(5, "out", "t1"), "b": email(5 - 2 / 24, "in", "t1"),
        "c": email(4, "out", "t1"), "d": email(4 - 10 / 24, "in", "t1"),
        # thread 2: in, in (no reply to us), out, in 30 h later
        "e": email(9, "in", "t2"), "f": email(8.5, "in", "t2"),
        "g": email(8, "out", "t2"), "h": email(8 - 30 / 24, "in", "t2"),
        # older than 30 days: not counted
        "i": email(40, "out", "t3"), "j": email(39, "in", "t3"),
    }  # fmt: skip
    assert features(acts)["medianReplyLatencyHours30d"] == 10.0


def meeting(kind: str, days_ago: float, minutes: float, rank: int = 0, **extra: object) -> dict:
    return {"k": kind, "t": at(days_ago), "eng": ["ana@c.com"], "sr": rank, "min": minutes,
            "meet": True, **extra}  # fmt: skip


def test_meetings_count_calendar_and_uncovered_recordings() -> None:
    acts = {
        "cal": meeting("event", 3, 30, acc=1, dec=0),
        "rec-of-cal": meeting("meeting", 3 - 10 / 1440, 28),  # recorded, same meeting
        "rec-alone": meeting("meeting", 20, 45, rank=5),
        "old": meeting("event", 40, 60, acc=0, dec=1),
        "next": meeting("event", -2.5, 60, acc=0, dec=1),
        "later": meeting("event", -9, 60, acc=1, dec=0),
        "internal": {**meeting("event", 1, 60), "meet": False, "eng": []},
    }
    f = features(acts)
    assert (f["meetings14d"], f["meetings30d"]) == (1, 2)
    assert f["totalMeetingMinutes30d"] == 75
    assert f["daysSinceLastMeeting"] == 3
    assert f["nextMeetingAt"] == "2026-12-01T00:00:00Z"  # 60 h ahead
    assert f["daysToNextMeeting"] == 3
    assert f["execMeetingShare30d"] == 0.5
    # invitations starting in the last 30 days or ahead: accepted 2 (cal, later), declined 1
    assert f["meetingAcceptanceRate30d"] == round(2 / 3, 4)


def test_seniority_from_titles() -> None:
    titles = {
        "Chief Executive Officer": 5, "CFO": 5, "Co-Founder": 5, "Vice President, Sales": 4,
        "SVP Engineering": 4, "Director of IT": 3, "Head of Procurement": 3,
        "Procurement Manager": 2, "Software Engineer": 1, "": 0, None: 0,
    }  # fmt: skip
    assert {t: seniority_rank(t) for t in titles} == titles
    acts = {"a": {**email(1, "in"), "sr": 4}, "b": {**email(2, "in"), "sr": 2}}
    assert features(acts)["seniorityMaxEngaged"] == "VP"


def test_contacts_engaged_total_window_and_new() -> None:
    acts = {
        "a": email(40, "in", who="old@c.com"),
        "b": email(3, "in", who="old@c.com"),
        "c": email(5, "in", who="new@c.com"),
        "d": email(20, "in", who="mid@c.com"),
        "e": email(2, "out"),
    }
    f = features(acts)
    assert f["uniqueExternalContactsEngagedTotal"] == 3
    assert f["uniqueExternalContactsEngaged30d"] == 3
    assert f["newContactsEngaged14d"] == 1  # old@ first engaged 40 days ago


def test_opportunity_fields_and_history_kept_by_the_merge() -> None:
    def draft(close: str, stage: str, when: str) -> ShardDraft:
        return ShardDraft(
            id="o1", tenant_id="t", shard_type="Opportunity", schema_version=3,
            structured_data={"name": "Deal", "status": "open", "stage": stage,
                             "closeDate": close},
            unstructured_data={},
            source=ShardSource(provider="p", integration_id="i", entity_type="Opportunity",
                               external_id="o1", event_id=when,
                               occurred_at=datetime.fromisoformat(when)),
        )  # fmt: skip

    shard = merge(None, draft("2026-11-20", "Qualify", "2026-11-01T10:00:00+00:00")).shard
    shard = merge(shard, draft("2026-12-01", "Qualify", "2026-11-10T10:00:00+00:00")).shard
    shard = merge(shard, draft("2026-11-25", "Propose", "2026-11-18T10:00:00+00:00")).shard
    shard = merge(shard, draft("2026-11-26", "Propose", "2026-11-19T10:00:00+00:00")).shard
    data = shard.structured_data
    assert data["closeDatePushCount"] == 2  # later twice, earlier once
    assert data["stageEnteredAt"] == "2026-11-18T10:00:00+00:00"
    replay = merge(shard, draft("2026-11-26", "Propose", "2026-11-19T10:00:00+00:00"))
    assert not replay.changed

    from tables.facts import opportunity_facts

    f = features({}, opportunity_facts(shard))
    assert f["daysToClose"] == -2
    assert f["closeDateOverdue"] is True
    assert f["closeDatePushCount"] == 2
    assert f["daysInStage"] == 10
    assert f["lastActivityAt"] is None
    assert f["engagementScore"] == 0


def test_engagement_score_formula() -> None:
    f = {
        "daysSinceLastActivity": 3, "emailsInbound30d": 5, "meetings30d": 2,
        "uniqueExternalContactsEngaged30d": 5, "seniorityMaxEngaged": "Director",
        "medianReplyLatencyHours30d": 30.0, "ghosted": False,
    }  # fmt: skip
    # 30*(27/30) + 20*0.5 + 20*0.5 + 15*1 + 10*3/5 + 2.5 = 27 + 10 + 10 + 15 + 6 + 2.5
    assert engagement_score(f) == 70
    assert engagement_score({**f, "ghosted": True}) == 56  # 70.5 - 15 = 55.5 → 56
    cold = {**f, "daysSinceLastActivity": None, "emailsInbound30d": 0, "meetings30d": 0,
            "uniqueExternalContactsEngaged30d": 0, "seniorityMaxEngaged": None,
            "medianReplyLatencyHours30d": None, "ghosted": True}  # fmt: skip
    assert engagement_score(cold) == 0


def test_facts_of_an_email_shard() -> None:
    from shards.model import Shard

    shard = Shard(
        id="e1", tenant_id="t", shard_type="Email", schema_version=2,
        structured_data={"from": {"email": "Ana@C.com"}, "to": [{"email": "rep@ours.com"}],
                         "sentAt": "2026-11-27T12:00:00Z", "threadId": "th",
                         "direction": "inbound"},
        source=ShardSource(provider="p", integration_id="i", entity_type="email",
                           external_id="e1", event_id="x"),
        created_at=NOW, updated_at=NOW, version=1,
    )  # fmt: skip
    facts = activity_facts(shard, TENANT, {"ana@c.com": 3})
    assert facts == {"k": "email", "t": at(1), "eng": ["ana@c.com"], "sr": 3, "dir": "in",
                     "th": "th"}  # fmt: skip
    deleted = shard.model_copy(update={"structured_data": {**shard.structured_data,
                                                           "deleted": True}})  # fmt: skip
    assert activity_facts(deleted, TENANT) is None


def test_pending_coalesces_a_burst_into_one_write_per_delay() -> None:
    clock = [0.0]
    pending = Pending(5.0, clock=lambda: clock[0])
    writes = 0
    for step in range(1000):  # 1,000 changes to one deal over 10 seconds
        clock[0] = step * 0.01
        pending.mark(["t:o1"])
        writes += len(pending.take_due(100))
    clock[0] = 20.0
    writes += len(pending.take_due(100))
    assert writes == 2  # at 5 s (the first change's deadline), then once for the rest
    pending.mark(["t:o2"], now=True)
    assert pending.take_due(10) == ["t:o2"]
