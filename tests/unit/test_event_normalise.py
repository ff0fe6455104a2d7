import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.exceptions import MappingError
from core.tenants import TenantConfig
from normalisers.common import utc_iso
from normalisers.event import WINDOWS_ZONES, normalise_calendar_event, zone_named
from shards.ids import shard_id
from shards.model import ShardDraft
from streams.models import RawEvent
from tests.fixtures import generic_chat, google_calendar, graph_calendar

NORTHWIND = TenantConfig.model_validate(
    {"internalDomains": ["northwind-sales.com"], "timeZone": "America/Chicago"}
)
NO_DOMAINS = TenantConfig()  # UTC, no internal domains


def draft(envelope: dict[str, Any], tenant: TenantConfig = NORTHWIND) -> ShardDraft:
    return normalise_calendar_event(RawEvent.model_validate(envelope), tenant)


def emails(people: list[dict[str, Any]]) -> list[str | None]:
    return [p.get("email") for p in people]


# --- generic ---------------------------------------------------------------------------------


def test_generic_event_is_mapped_field_by_field() -> None:
    d = draft(generic_chat.calendar_event())
    assert d.shard_type == "CalendarEvent"
    assert d.id == shard_id(generic_chat.TENANT, "generic", "event", "evt-cal-9001")
    assert d.source.entity_type == "event"
    data = d.structured_data
    assert data["eventId"] == "evt-cal-9001"
    assert data["title"] == "Fabrikam / Northwind — pricing review"
    assert data["start"] == "2026-11-05T15:00:00Z"
    assert data["end"] == "2026-11-05T15:45:00Z"
    assert data["allDay"] is False
    assert data["timeZone"] is None
    assert data["durationMinutes"] == 45
    assert data["organizer"] == {
        "email": "dan.ortiz@northwind-sales.com",
        "name": "Dan Ortiz",
        "internal": True,
    }
    assert data["attendees"] == [
        {
            "email": "priya.raman@fabrikam-logistics.com",
            "name": "Priya Raman",
            "responseStatus": "accepted",
            "internal": False,
        },
        {
            "email": "dan.ortiz@northwind-sales.com",
            "name": "Dan Ortiz",
            "responseStatus": "accepted",
            "internal": True,
        },
    ]
    assert emails(data["participants"]) == [
        "dan.ortiz@northwind-sales.com",
        "priya.raman@fabrikam-logistics.com",
    ]
    assert data["location"] is None
    assert data["meetingUrl"] == "https://meet.example.com/abc-defg-hij"
    assert data["status"] == "confirmed"
    assert data["recurringEventId"] is None
    assert data["isExternal"] is True
    assert d.unstructured_data == {"text": "Walk through 1- and 3-year options."}


def test_generic_date_only_event_is_all_day_in_the_tenants_zone() -> None:
    data = draft(generic_chat.calendar_event(start="2026-11-18", end="2026-11-19")).structured_data
    assert data["allDay"] is True
    assert data["start"] == "2026-11-18T06:00:00Z"
    assert data["end"] == "2026-11-19T06:00:00Z"
    assert data["timeZone"] == "America/Chicago"
    assert data["durationMinutes"] == 24 * 60


def test_generic_local_times_read_in_the_named_zone() -> None:
    envelope = generic_chat.calendar_event(
        start="2026-11-05T09:00:00", end="2026-11-05T09:45:00", timeZone="Europe/Berlin"
    )
    data = draft(envelope).structured_data
    assert (data["start"], data["end"], data["timeZone"]) == (
        "2026-11-05T08:00:00Z",
        "2026-11-05T08:45:00Z",
        "Europe/Berlin",
    )


def test_generic_canceled_spelling_and_response_names_are_normalised() -> None:
    envelope = generic_chat.calendar_event(
        status="Canceled",
        attendees=[
            {"email": "a@fabrikam-logistics.com", "responseStatus": "tentativelyAccepted"},
            {"email": "b@fabrikam-logistics.com", "responseStatus": "notResponded"},
            {"email": "c@fabrikam-logistics.com"},
            {"email": "d@fabrikam-logistics.com", "responseStatus": "maybe-later"},
        ],
    )
    data = draft(envelope).structured_data
    assert data["status"] == "cancelled"
    assert [a["responseStatus"] for a in data["attendees"]] == [
        "tentative",
        "needsAction",
        "needsAction",
        "needsAction",
    ]


def test_a_tenant_without_internal_domains_leaves_is_external_unknown() -> None:
    data = draft(generic_chat.calendar_event(), NO_DOMAINS).structured_data
    assert data["isExternal"] is None
    assert "internal" not in data["organizer"]


def test_an_all_internal_event_is_not_external() -> None:
    envelope = generic_chat.calendar_event(
        attendees=[{"email": "ana.ruiz@northwind-sales.com", "responseStatus": "accepted"}]
    )
    assert draft(envelope).structured_data["isExternal"] is False


# --- Google Calendar -------------------------------------------------------------------------


def test_google_timed_event_is_mapped_field_by_field() -> None:
    d = draft(google_calendar.timed())
    assert d.id == shard_id(
        generic_chat.TENANT, "google_calendar", "event", google_calendar.EVENT_ID
    )
    data = d.structured_data
    assert data["eventId"] == google_calendar.EVENT_ID
    assert data["title"] == "Fabrikam / Northwind — pricing review"
    assert data["start"] == "2026-11-05T15:00:00Z"
    assert data["end"] == "2026-11-05T15:45:00Z"
    assert data["allDay"] is False
    assert data["timeZone"] == "America/Chicago"
    assert data["durationMinutes"] == 45
    assert data["organizer"]["email"] == "dan.ortiz@northwind-sales.com"
    assert data["creator"]["name"] == "Dan Ortiz"
    assert data["attendees"] == [
        {
            "email": "dan.ortiz@northwind-sales.com",
            "name": "Dan Ortiz",
            "responseStatus": "accepted",
            "organizer": True,
            "internal": True,
        },
        {
            "email": "priya.raman@fabrikam-logistics.com",
            "name": "Priya Raman",
            "responseStatus": "tentative",
            "internal": False,
        },
        {
            "email": "lee.chen@fabrikam-logistics.com",
            "name": None,
            "responseStatus": "needsAction",
            "optional": True,
            "internal": False,
        },
        {
            "email": "ana.ruiz@northwind-sales.com",
            "name": None,
            "responseStatus": "declined",
            "internal": True,
        },
    ]
    assert "c_1888f2b1a3@resource.calendar.google.com" not in emails(data["participants"])
    assert len(data["participants"]) == 4
    assert data["location"] == "Northwind HQ, Room 4.12"
    assert data["meetingUrl"] == "https://meet.google.com/abc-defg-hij"
    assert data["status"] == "confirmed"
    assert data["recurringEventId"] is None
    assert data["iCalUid"] == f"{google_calendar.EVENT_ID}@google.com"
    assert data["isExternal"] is True


def test_google_html_description_becomes_text() -> None:
    assert draft(google_calendar.timed()).unstructured_data == {
        "text": "Walk through 1- and 3-year options.\nAgenda:\n\nPricing\n\nRollout plan\n\n"
        "Deck: here"
    }


def test_google_all_day_event_starts_at_midnight_in_the_tenants_zone() -> None:
    data = draft(google_calendar.all_day()).structured_data
    assert data["allDay"] is True
    assert data["start"] == "2026-11-18T06:00:00Z"
    assert data["end"] == "2026-11-20T06:00:00Z"  # the end date is exclusive
    assert data["durationMinutes"] == 2 * 24 * 60
    assert data["timeZone"] == "America/Chicago"
    assert data["meetingUrl"] is None
    assert data["location"] is None


def test_google_all_day_event_for_a_tenant_in_utc() -> None:
    data = draft(google_calendar.all_day(), NO_DOMAINS).structured_data
    assert (data["start"], data["end"], data["timeZone"]) == (
        "2026-11-18T00:00:00Z",
        "2026-11-20T00:00:00Z",
        "UTC",
    )


def test_google_all_day_event_across_a_dst_change_lasts_the_real_time() -> None:
    envelope = google_calendar.all_day()
    envelope["payload"].update(start={"date": "2026-10-31"}, end={"date": "2026-11-02"})
    data = draft(envelope).structured_data
    assert data["start"] == "2026-10-31T05:00:00Z"  # CDT
    assert data["end"] == "2026-11-02T06:00:00Z"  # CST
    assert data["durationMinutes"] == 2 * 24 * 60 + 60


def test_google_recurring_instance_reads_local_times_in_its_zone() -> None:
    d = draft(google_calendar.recurring_instance())
    assert d.id == shard_id(
        generic_chat.TENANT, "google_calendar", "event", google_calendar.INSTANCE_ID
    )
    data = d.structured_data
    assert data["eventId"] == google_calendar.INSTANCE_ID
    assert data["recurringEventId"] == google_calendar.SERIES_ID
    assert data["start"] == "2026-11-12T16:00:00Z"
    assert data["end"] == "2026-11-12T16:30:00Z"
    assert data["originalStart"] == "2026-11-12T15:00:00Z"
    assert data["timeZone"] == "America/Chicago"
    assert data["durationMinutes"] == 30
    # No hangoutLink: the conference's video entry point is the meeting URL.
    assert data["meetingUrl"] == "https://meet.google.com/abc-defg-hij"


def test_google_series_master_keeps_its_recurrence_rule() -> None:
    data = draft(google_calendar.series_master()).structured_data
    assert data["recurrence"] == ["RRULE:FREQ=WEEKLY;BYDAY=TH;UNTIL=20261231T235959Z"]
    assert data["start"] == "2026-11-05T15:00:00Z"
    assert data["recurringEventId"] is None


def test_google_cancellation_updates_the_same_shard() -> None:
    original = draft(google_calendar.timed())
    sparse = draft(google_calendar.cancelled())
    full = draft(google_calendar.cancelled(sparse=False))
    assert original.id == sparse.id == full.id
    assert sparse.structured_data["status"] == "cancelled"
    assert sparse.structured_data["eventId"] == google_calendar.EVENT_ID
    assert sparse.structured_data["start"] is None
    assert sparse.structured_data["durationMinutes"] is None
    assert sparse.structured_data["attendees"] == []
    assert full.structured_data["status"] == "cancelled"
    assert full.structured_data["start"] == original.structured_data["start"]


def test_google_cancelled_occurrence_with_only_its_original_start() -> None:
    envelope = google_calendar.cancelled()
    envelope["payload"].update(
        id=google_calendar.INSTANCE_ID,
        recurringEventId=google_calendar.SERIES_ID,
        originalStartTime={"dateTime": "2026-11-12T15:00:00Z"},
    )
    data = draft(envelope).structured_data
    assert data["status"] == "cancelled"
    assert data["recurringEventId"] == google_calendar.SERIES_ID
    assert data["originalStart"] == "2026-11-12T15:00:00Z"


def test_google_event_without_a_time_zone_reads_offsetless_times_in_the_tenants() -> None:
    envelope = google_calendar.timed(
        start={"dateTime": "2026-11-05T09:00:00"}, end={"dateTime": "2026-11-05T10:00:00"}
    )
    data = draft(envelope).structured_data
    assert data["start"] == "2026-11-05T15:00:00Z"
    assert data["timeZone"] is None


def test_google_html_bomb_in_the_description_is_cut_and_flagged() -> None:
    bomb = "<p>" + "<b>agenda</b> " * 800_000 + "</p>"  # ~11 MB
    started = time.perf_counter()
    d = draft(google_calendar.timed(description=bomb))
    assert time.perf_counter() - started < 10
    assert d.unstructured_data["truncated"] is True
    assert d.unstructured_data["text"].startswith("agenda agenda")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id": None}, "payload has no id"),
        ({"start": None}, "payload has no start or no end"),
        ({"start": {"timeZone": "America/Chicago"}}, "start: has neither dateTime nor date"),
        (
            {"start": {"dateTime": "2026-11-05T09:00:00", "timeZone": "America/Gotham"}},
            "start.timeZone: unknown time zone 'America/Gotham'",
        ),
        (
            {"start": {"dateTime": "2026-11-05T09:00:00", "timeZone": "../../etc/passwd"}},
            "unknown time zone",
        ),
        ({"start": {"dateTime": "2026-11-05 9am"}}, "start.dateTime: not an ISO 8601"),
        ({"start": {"dateTime": 1793620500}}, "start.dateTime: expected an ISO 8601"),
        ({"start": {"date": "2026-02-30"}}, "start.date: not an ISO 8601 date"),
        ({"end": {"dateTime": "2026-11-05T08:00:00-06:00"}}, "end .* is before start"),
        ({"status": "postponed"}, "status: expected one of"),
        ({"summary": ["Pricing"]}, "summary: expected a string"),
        ({"description": {"html": "<p/>"}}, "description: expected a string"),
        ({"attendees": {"email": "a@b.com"}}, "attendees: expected a list"),
        ({"attendees": ["a@b.com"]}, "attendees: expected objects"),
        ({"attendees": [{"email": "priya at fabrikam"}]}, "not an email address"),
        ({"organizer": "dan.ortiz@northwind-sales.com"}, "organizer: expected an object"),
    ],
)
def test_malformed_google_events_are_mapping_errors(changes: dict[str, Any], reason: str) -> None:
    envelope = google_calendar.timed()
    for key, value in changes.items():
        if value is None:
            envelope["payload"].pop(key)
        else:
            envelope["payload"][key] = value
    with pytest.raises(MappingError, match=reason):
        draft(envelope)


# --- Microsoft Graph -------------------------------------------------------------------------


def test_graph_event_in_a_windows_zone_is_mapped_field_by_field() -> None:
    d = draft(graph_calendar.windows_zone())
    assert d.id == shard_id(
        generic_chat.TENANT, "outlook_calendar", "event", graph_calendar.EVENT_ID
    )
    data = d.structured_data
    assert data["eventId"] == graph_calendar.EVENT_ID
    assert data["title"] == "Route Optimization Suite — security review"
    assert data["start"] == "2026-11-10T18:00:00Z"  # 10:00 PST
    assert data["end"] == "2026-11-10T19:00:00Z"
    assert data["allDay"] is False
    assert data["timeZone"] == "America/Los_Angeles"
    assert data["durationMinutes"] == 60
    assert data["organizer"] == {
        "email": "priya.raman@fabrikam-logistics.com",
        "name": "Priya Raman",
        "internal": False,
    }
    assert data["attendees"] == [
        {
            "email": "dan.ortiz@northwind-sales.com",
            "name": "Dan Ortiz",
            "responseStatus": "accepted",
            "internal": True,
        },
        {
            "email": "marcus.webb@fabrikam-logistics.com",
            "name": "Marcus Webb",
            "responseStatus": "tentative",
            "optional": True,
            "internal": False,
        },
        {
            "email": "priya.raman@fabrikam-logistics.com",
            "name": "Priya Raman",
            "responseStatus": "needsAction",
            "internal": False,
        },
    ]
    assert emails(data["participants"]) == [
        "priya.raman@fabrikam-logistics.com",
        "dan.ortiz@northwind-sales.com",
        "marcus.webb@fabrikam-logistics.com",
    ]
    assert data["location"] == "Conf Room Rainier"
    assert data["meetingUrl"].startswith("https://teams.microsoft.com/l/meetup-join/")
    assert data["status"] == "confirmed"
    assert data["recurringEventId"] is None
    assert data["isExternal"] is True
    assert d.unstructured_data == {
        "text": "Security questionnaire walk-through.\n\nPlease bring the SOC 2 report.\n\n"
        "________________\n\nMicrosoft Teams meeting"
    }


def test_graph_event_in_utc_gives_the_same_times_and_the_organizers_zone() -> None:
    in_windows = draft(graph_calendar.windows_zone()).structured_data
    in_utc = draft(graph_calendar.in_utc()).structured_data
    for field in ("start", "end", "durationMinutes", "timeZone"):
        assert in_utc[field] == in_windows[field]


def test_graph_event_in_an_iana_zone_is_read_too() -> None:
    envelope = graph_calendar.windows_zone(
        start={"dateTime": "2026-11-10T19:00:00.0000000", "timeZone": "Europe/London"},
        end={"dateTime": "2026-11-10T20:00:00.0000000", "timeZone": "Europe/London"},
        originalStartTimeZone="tzone://Microsoft/Custom",
    )
    data = draft(envelope).structured_data
    assert data["start"] == "2026-11-10T19:00:00Z"
    assert data["timeZone"] == "Europe/London"


def test_graph_all_day_event_is_midnight_in_the_organizers_zone() -> None:
    data = draft(graph_calendar.all_day()).structured_data
    assert data["allDay"] is True
    assert data["start"] == "2026-11-23T08:00:00Z"  # 00:00 PST
    assert data["end"] == "2026-11-24T08:00:00Z"
    assert data["timeZone"] == "America/Los_Angeles"
    assert data["durationMinutes"] == 24 * 60
    assert data["meetingUrl"] is None


def test_graph_all_day_event_without_a_known_zone_uses_the_tenants() -> None:
    envelope = graph_calendar.all_day()
    del envelope["payload"]["originalStartTimeZone"]
    data = draft(envelope).structured_data
    assert data["start"] == "2026-11-23T06:00:00Z"
    assert data["timeZone"] == "America/Chicago"


def test_graph_occurrence_points_at_its_series() -> None:
    data = draft(graph_calendar.occurrence()).structured_data
    assert data["recurringEventId"] == graph_calendar.SERIES_ID
    assert data["status"] == "tentative"
    assert data["start"] == "2026-11-17T18:00:00Z"
    assert data["durationMinutes"] == 30


def test_graph_cancellation_and_removal_update_the_same_shard() -> None:
    original = draft(graph_calendar.windows_zone())
    cancelled = draft(graph_calendar.cancelled())
    removed = draft(graph_calendar.removed())
    assert original.id == cancelled.id == removed.id
    assert cancelled.structured_data["status"] == "cancelled"
    assert cancelled.structured_data["start"] == original.structured_data["start"]
    assert removed.structured_data["status"] == "cancelled"
    assert removed.structured_data["start"] is None
    assert removed.unstructured_data == {"text": ""}


def test_graph_exchange_addresses_that_are_not_email_keep_the_name() -> None:
    envelope = graph_calendar.windows_zone(
        organizer={
            "emailAddress": {
                "name": "Priya Raman",
                "address": "/O=EXCHANGELABS/OU=EXCHANGE ADMINISTRATIVE GROUP/CN=RECIPIENTS/CN=P",
            }
        }
    )
    assert draft(envelope).structured_data["organizer"] == {"email": None, "name": "Priya Raman"}


def test_graph_plain_text_body_and_preview_fallback() -> None:
    text_body = graph_calendar.windows_zone(
        body={"contentType": "text", "content": "Agenda <draft> & notes"}
    )
    no_body = graph_calendar.windows_zone(body={"contentType": "html", "content": ""})
    assert draft(text_body).unstructured_data["text"] == "Agenda <draft> & notes"
    assert draft(no_body).unstructured_data["text"].startswith("Security questionnaire")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id": None}, "payload has no id"),
        ({"start": None}, "start: expected an object"),
        (
            {
                "start": {
                    "dateTime": "2026-11-10T10:00:00.0000000",
                    "timeZone": "Mars Standard Time",
                }
            },
            "start.timeZone: unknown time zone 'Mars Standard Time'",
        ),
        (
            {"start": {"dateTime": "2026-11-10T10:00:00", "timeZone": "tzone://Microsoft/Custom"}},
            "unknown time zone",
        ),
        ({"start": {"dateTime": "2026-11-10T10:00:00.0000000"}}, "payload has no timeZone"),
        ({"start": {"dateTime": "10/11/2026 10:00", "timeZone": "UTC"}}, "not an ISO 8601"),
        (
            {"end": {"dateTime": "2026-11-10T09:00:00", "timeZone": "Pacific Standard Time"}},
            "before start",
        ),
        ({"attendees": [{"emailAddress": {"address": 42}}]}, "address: expected a string"),
        ({"location": "Rainier"}, "location: expected an object"),
        ({"body": {"contentType": "html", "content": 7}}, "body.content: expected a string"),
    ],
)
def test_malformed_graph_events_are_mapping_errors(changes: dict[str, Any], reason: str) -> None:
    envelope = graph_calendar.windows_zone()
    for key, value in changes.items():
        if value is None:
            envelope["payload"].pop(key)
        else:
            envelope["payload"][key] = value
    with pytest.raises(MappingError, match=reason):
        draft(envelope)


# --- time zones ------------------------------------------------------------------------------


def test_every_windows_zone_names_a_known_iana_zone() -> None:
    assert len(WINDOWS_ZONES) > 130
    for windows, iana in WINDOWS_ZONES.items():
        expected = "UTC" if iana == "Etc/UTC" else ZoneInfo(iana).key
        assert zone_named(windows).key == expected


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("UTC", "UTC"),
        ("tzone://Microsoft/Utc", "UTC"),
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("India Standard Time", "Asia/Calcutta"),
        ("America/Chicago", "America/Chicago"),
    ],
)
def test_zone_names(name: str, key: str) -> None:
    assert zone_named(name).key == key


@pytest.mark.parametrize("name", ["", "Nowhere Standard Time", "Etc/GMT+99", None, 5])
def test_unknown_zone_names_are_mapping_errors(name: Any) -> None:
    with pytest.raises(MappingError):
        zone_named(name)


# --- generic, malformed ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"eventId": None}, "payload has no eventId"),
        ({"start": None}, "payload has no start"),
        ({"end": "tomorrow"}, "end: not an ISO 8601"),
        ({"timeZone": "Moon/Tranquility"}, "unknown time zone"),
        ({"status": "maybe"}, "status: expected one of"),
        ({"organizer": ["dan"]}, "organizer: expected an object"),
        ({"title": 12}, "title: expected a string"),
    ],
)
def test_malformed_generic_events_are_mapping_errors(changes: dict[str, Any], reason: str) -> None:
    envelope = generic_chat.calendar_event()
    for key, value in changes.items():
        if value is None:
            envelope["payload"].pop(key)
        else:
            envelope["payload"][key] = value
    with pytest.raises(MappingError, match=reason):
        draft(envelope)


@given(
    moment=st.datetimes(
        timezones=st.one_of(
            st.none(),
            st.just(UTC),
            st.builds(
                timezone,
                st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)),
            ),
        )
    )
)
def test_a_datetime_reads_as_its_iso_text_does(moment: datetime) -> None:
    """`utc_iso` of a `datetime` (the normalisers' own parsed times) is `utc_iso` of its
    `isoformat()`: the same UTC instant, the same milliseconds, a zone-less one as UTC."""
    assert utc_iso(moment) == utc_iso(moment.isoformat())
