"""Calendar events (generic, Google Calendar, Microsoft Graph) become CalendarEvent drafts.

Shard identity: the draft's id comes from the envelope's `externalId`, which
integration-sync sets to the event's own id: the Google event id (an instance id such
as `abc_20261105T150000Z` for one occurrence of a recurring event), the Graph event
id. A cancellation of the same event therefore updates its shard to `cancelled`.

Times are UTC RFC 3339. A time without an offset is read in the zone the event names
(Google `timeZone`: IANA; Graph `timeZone`: "UTC", a Windows name such as "Pacific
Standard Time", or IANA), else in the tenant's zone; a zone name that is none of
these is a `MappingError`. All-day events carry dates only: they start and end at
00:00 of those dates in the event's own zone, else the tenant's `timeZone`, converted
to UTC (the end date is exclusive, as both providers give it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.exceptions import MappingError, ShardValidationError
from core.html import MAX_HTML_BYTES, html_to_text
from core.tenants import TenantConfig
from normalisers.common import as_id as _id
from normalisers.common import as_list as _list
from normalisers.common import as_object as _object
from normalisers.common import build_draft, require, utc_iso
from normalisers.common import optional_id as _optional_id
from normalisers.people import Person, person, unique_people
from shards.model import ShardDraft
from shards.participants import build_participants
from streams.models import RawEvent

__all__ = ["WINDOWS_ZONES", "normalise_calendar_event", "zone_named"]

STATUSES: Final = ("confirmed", "tentative", "cancelled")

#: Every provider's answer to an invitation, as Google names them.
_RESPONSES: Final = {
    "accepted": "accepted",
    "declined": "declined",
    "tentative": "tentative",
    "needsaction": "needsAction",
    "tentativelyaccepted": "tentative",  # Graph
    "organizer": "accepted",  # Graph: the organizer's own copy
    "none": "needsAction",  # Graph
    "notresponded": "needsAction",  # Graph
}
_UTC_NAMES: Final = frozenset({"utc", "etc/utc", "gmt", "z", "tzone://microsoft/utc"})
_HTML_TAG: Final = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*\b[^<>]*|/[a-zA-Z][a-zA-Z0-9]*\s*)>")


def normalise_calendar_event(event: RawEvent, tenant: TenantConfig) -> ShardDraft:
    """The CalendarEvent draft of one raw calendar event; `MappingError` when unreadable.

    `event.provider` picks the shape: `google_calendar` (Calendar API `events`
    resource), `outlook_calendar` (Graph `event`), anything else the generic shape of
    CONTRACT §1.
    """
    if event.provider == "google_calendar":
        structured, description = _google(event.payload, tenant)
    elif event.provider == "outlook_calendar":
        structured, description = _graph(event.payload, tenant)
    else:
        structured, description = _generic(event.payload, tenant)
    _classify(structured, tenant)
    text, truncated = description
    unstructured: dict[str, Any] = {"text": text}
    if truncated:
        unstructured["truncated"] = True
    try:
        return build_draft(event, "CalendarEvent", structured, unstructured)
    except ShardValidationError as e:
        raise MappingError(str(e)) from e


def zone_named(name: Any, field: str = "timeZone") -> ZoneInfo:
    """The zone an IANA or Windows zone name means; `MappingError` for any other name."""
    if not isinstance(name, str) or not name.strip():
        message = f"{field}: expected a time zone name, got {name!r}"
        raise MappingError(message)
    name = name.strip()
    if name.casefold() in _UTC_NAMES:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(WINDOWS_ZONES.get(name, name))
    except (ZoneInfoNotFoundError, ValueError) as e:
        message = f"{field}: unknown time zone {name!r}"
        raise MappingError(message) from e


# --- times ---------------------------------------------------------------------------------


class _Span:
    """Start and end of an event in UTC, and how they were read."""

    __slots__ = ("all_day", "end", "start", "zone")

    def __init__(
        self, start: datetime | None, end: datetime | None, *, all_day: bool, zone: str | None
    ) -> None:
        if start is not None and end is not None and end < start:
            message = f"end {end.isoformat()} is before start {start.isoformat()}"
            raise MappingError(message)
        self.start, self.end, self.all_day, self.zone = start, end, all_day, zone

    def fields(self) -> dict[str, Any]:
        minutes = None
        if self.start is not None and self.end is not None:
            minutes = int((self.end - self.start).total_seconds() // 60)
        return {
            "start": _rfc3339(self.start),
            "end": _rfc3339(self.end),
            "allDay": self.all_day,
            "timeZone": self.zone,
            "durationMinutes": minutes,
        }


def _local(value: Any, zone: ZoneInfo, field: str) -> datetime:
    """An ISO 8601 date-time; one without an offset is read in `zone`."""
    if not isinstance(value, str):
        message = f"{field}: expected an ISO 8601 date-time, got {value!r}"
        raise MappingError(message)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as e:
        message = f"{field}: not an ISO 8601 date-time: {value!r}"
        raise MappingError(message) from e
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def _midnight(value: Any, zone: ZoneInfo, field: str) -> datetime:
    """00:00 of a date (`2026-11-10`, or the date part of a date-time) in `zone`, in UTC."""
    if not isinstance(value, str):
        message = f"{field}: expected an ISO 8601 date, got {value!r}"
        raise MappingError(message)
    try:
        day = date.fromisoformat(value.strip()[:10])
    except ValueError as e:
        message = f"{field}: not an ISO 8601 date: {value!r}"
        raise MappingError(message) from e
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _rfc3339(moment: datetime | None) -> str | None:
    return None if moment is None else utc_iso(moment)


def _is_date_only(value: Any) -> bool:
    return isinstance(value, str) and len(value.strip()) == 10 and "T" not in value


# --- generic -------------------------------------------------------------------------------


def _generic(
    payload: dict[str, Any], tenant: TenantConfig
) -> tuple[dict[str, Any], tuple[str, bool]]:
    status = _status(payload.get("status"))
    named = payload.get("timeZone")
    zone = zone_named(named) if named not in (None, "") else tenant.zone
    start_value, end_value = payload.get("start"), payload.get("end")
    if status != "cancelled" or start_value or end_value:
        start_value, end_value = require(payload, "start"), require(payload, "end")
    all_day = payload.get("allDay") is True or _is_date_only(start_value)
    read = _midnight if all_day else _local
    span = _Span(
        read(start_value, zone, "start") if start_value else None,
        read(end_value, zone, "end") if end_value else None,
        all_day=all_day,
        zone=zone.key if (named or all_day) else None,
    )
    organizer = _optional_person(_object(payload, "organizer"), "email", "name")
    attendees = [
        _attendee(a, "email", "name", "responseStatus") for a in _list(payload, "attendees")
    ]
    structured = {
        "eventId": _id(require(payload, "eventId"), "eventId"),
        "title": _optional_str(payload.get("title"), "title"),
        **span.fields(),
        "organizer": organizer,
        "attendees": unique_people(attendees),
        "location": _optional_str(payload.get("location"), "location"),
        "meetingUrl": _optional_str(payload.get("meetingUrl"), "meetingUrl"),
        "status": status,
        "recurringEventId": _optional_id(payload.get("recurringEventId"), "recurringEventId"),
    }
    return structured, _description(payload.get("description"), "description")


# --- Google Calendar -----------------------------------------------------------------------


def _google(
    payload: dict[str, Any], tenant: TenantConfig
) -> tuple[dict[str, Any], tuple[str, bool]]:
    event_id = _id(require(payload, "id"), "id")
    status = _status(payload.get("status"))
    start, end = _object(payload, "start"), _object(payload, "end")
    # A deleted event (or a cancelled occurrence) may carry nothing but its id.
    if status != "cancelled" and not (start and end):
        message = "payload has no start or no end"
        raise MappingError(message)
    span = _google_span(start, end, tenant)

    attendees = [
        _attendee(a, "email", "displayName", "responseStatus")
        for a in _list(payload, "attendees")
        if not (isinstance(a, dict) and a.get("resource") is True)  # rooms and equipment
    ]
    original = _object(payload, "originalStartTime")
    structured = {
        "eventId": event_id,
        "title": _optional_str(payload.get("summary"), "summary"),
        **span.fields(),
        "organizer": _optional_person(_object(payload, "organizer"), "email", "displayName"),
        "creator": _optional_person(_object(payload, "creator"), "email", "displayName"),
        "attendees": unique_people(attendees),
        "location": _optional_str(payload.get("location"), "location"),
        "meetingUrl": _google_meeting_url(payload),
        "status": status,
        "recurringEventId": _optional_id(payload.get("recurringEventId"), "recurringEventId"),
        "originalStart": _google_original_start(original, tenant),
        "recurrence": [_str(r, "recurrence") for r in _list(payload, "recurrence")],
        "iCalUid": _optional_str(payload.get("iCalUID"), "iCalUID"),
    }
    return structured, _description(payload.get("description"), "description")


def _google_span(start: dict[str, Any], end: dict[str, Any], tenant: TenantConfig) -> _Span:
    if not start and not end:
        return _Span(None, None, all_day=False, zone=None)
    named = start.get("timeZone")
    zone = zone_named(named, "start.timeZone") if named else tenant.zone
    end_zone = zone_named(end["timeZone"], "end.timeZone") if end.get("timeZone") else zone
    begins, all_day = _google_time(start, "start", zone)
    ends, _ = _google_time(end, "end", end_zone)
    return _Span(begins, ends, all_day=all_day, zone=zone.key if named or all_day else None)


def _google_time(value: dict[str, Any], field: str, zone: ZoneInfo) -> tuple[datetime, bool]:
    """One `{dateTime | date, timeZone}` in UTC, and whether it was a date (all day)."""
    if value.get("dateTime") not in (None, ""):
        return _local(value["dateTime"], zone, f"{field}.dateTime"), False
    if value.get("date") not in (None, ""):
        return _midnight(value["date"], zone, f"{field}.date"), True
    message = f"{field}: has neither dateTime nor date"
    raise MappingError(message)


def _google_original_start(value: dict[str, Any], tenant: TenantConfig) -> str | None:
    """Where a moved or cancelled occurrence was scheduled: the occurrence it replaces."""
    if not value:
        return None
    named = value.get("timeZone")
    zone = zone_named(named, "originalStartTime.timeZone") if named else tenant.zone
    return _rfc3339(_google_time(value, "originalStartTime", zone)[0])


def _google_meeting_url(payload: Mapping[str, Any]) -> str | None:
    link = _optional_str(payload.get("hangoutLink"), "hangoutLink")
    if link:
        return link
    conference = _object(payload, "conferenceData")
    for entry in _list(conference, "entryPoints"):
        if isinstance(entry, dict) and entry.get("entryPointType") == "video" and entry.get("uri"):
            return _str(entry["uri"], "conferenceData.entryPoints.uri")
    return None


# --- Microsoft Graph -----------------------------------------------------------------------


def _graph(
    payload: dict[str, Any], tenant: TenantConfig
) -> tuple[dict[str, Any], tuple[str, bool]]:
    event_id = _id(require(payload, "id"), "id")
    removed = isinstance(payload.get("@removed"), dict)  # a delta query's deleted event
    cancelled = removed or payload.get("isCancelled") is True
    if removed and not payload.get("start"):
        span = _Span(None, None, all_day=False, zone=None)
    else:
        span = _graph_span(payload, tenant)

    attendees = [
        _graph_attendee(a)
        for a in _list(payload, "attendees")
        if not (isinstance(a, dict) and a.get("type") == "resource")  # rooms and equipment
    ]
    organizer_address = _object(_object(payload, "organizer"), "emailAddress")
    online = _object(payload, "onlineMeeting")
    if cancelled:
        status = "cancelled"
    elif payload.get("showAs") == "tentative":
        status = "tentative"
    else:
        status = "confirmed"
    structured = {
        "eventId": event_id,
        "title": _optional_str(payload.get("subject"), "subject"),
        **span.fields(),
        "organizer": _graph_person(organizer_address, "organizer"),
        "attendees": unique_people(attendees),
        "location": _optional_str(_object(payload, "location").get("displayName"), "location"),
        "meetingUrl": _optional_str(online.get("joinUrl"), "onlineMeeting.joinUrl")
        or _optional_str(payload.get("onlineMeetingUrl"), "onlineMeetingUrl"),
        "status": status,
        "recurringEventId": _optional_id(payload.get("seriesMasterId"), "seriesMasterId"),
        "iCalUid": _optional_str(payload.get("iCalUId"), "iCalUId"),
    }
    body = _object(payload, "body")
    if body.get("content") not in (None, ""):
        kind = "text" if str(body.get("contentType") or "").lower() == "text" else "html"
        return structured, _description(body["content"], "body.content", kind=kind)
    return structured, _description(payload.get("bodyPreview"), "bodyPreview", kind="text")


def _graph_span(payload: Mapping[str, Any], tenant: TenantConfig) -> _Span:
    start = _object(payload, "start", required=True)
    end = _object(payload, "end", required=True)
    start_zone = zone_named(require(start, "timeZone"), "start.timeZone")
    end_zone = zone_named(require(end, "timeZone"), "end.timeZone")
    # The zone the organizer scheduled in; Graph may answer in UTC (the default) or
    # another zone the caller preferred, and its custom zones have no IANA name.
    own = _zone_or_none(payload.get("originalStartTimeZone"))
    if payload.get("isAllDay") is True:
        zone = start_zone if start_zone.key != "UTC" else own or tenant.zone
        return _Span(
            _midnight(require(start, "dateTime"), zone, "start.dateTime"),
            _midnight(require(end, "dateTime"), zone, "end.dateTime"),
            all_day=True,
            zone=zone.key,
        )
    return _Span(
        _local(require(start, "dateTime"), start_zone, "start.dateTime"),
        _local(require(end, "dateTime"), end_zone, "end.dateTime"),
        all_day=False,
        zone=(own or start_zone).key,
    )


def _zone_or_none(name: Any) -> ZoneInfo | None:
    try:
        return zone_named(name)
    except MappingError:
        return None


def _graph_attendee(value: Any) -> Person:
    if not isinstance(value, dict):
        message = f"attendees: expected objects, got {type(value).__name__}"
        raise MappingError(message)
    found = _graph_person(_object(value, "emailAddress"), "attendees.emailAddress")
    response = _object(value, "status").get("response")
    found["responseStatus"] = _response(response)
    if value.get("type") == "optional":
        found["optional"] = True
    return found


def _graph_person(address: Mapping[str, Any], field: str) -> Person:
    # Exchange can answer with an X.500 path instead of an SMTP address: keep the name.
    email = address.get("address")
    if email is not None and not isinstance(email, str):
        message = f"{field}.address: expected a string, got {type(email).__name__}"
        raise MappingError(message)
    return person(email if email and "@" in email else None, address.get("name"))


# --- shared --------------------------------------------------------------------------------


def _status(value: Any) -> str:
    if value in (None, ""):
        return "confirmed"
    text = str(value).strip().lower()
    text = "cancelled" if text == "canceled" else text
    if text not in STATUSES:
        message = f"status: expected one of {', '.join(STATUSES)}, got {value!r}"
        raise MappingError(message)
    return text


def _response(value: Any) -> str:
    """An invitation answer as `accepted|declined|tentative|needsAction` (unknown: needsAction)."""
    if value in (None, ""):
        return "needsAction"
    return _RESPONSES.get(str(value).strip().lower(), "needsAction")


def _attendee(value: Any, email: str, name: str, response: str) -> Person:
    if not isinstance(value, dict):
        message = f"attendees: expected objects, got {type(value).__name__}"
        raise MappingError(message)
    found = person(value.get(email), value.get(name), responseStatus=_response(value.get(response)))
    if value.get("optional") is True:
        found["optional"] = True
    if value.get("organizer") is True:
        found["organizer"] = True
    return found


def _optional_person(value: Mapping[str, Any], email: str, name: str) -> Person | None:
    if not value.get(email) and not value.get(name):
        return None
    return person(value.get(email), value.get(name))


def _classify(structured: dict[str, Any], tenant: TenantConfig) -> None:
    """Participants, each marked internal or not, and whether anyone is from outside.

    `isExternal` stays null for a tenant without `internalDomains`: everyone would look
    external. Declined attendees still count: they were invited.
    """
    organizer = structured.get("organizer")
    people = [p for p in (organizer, *structured["attendees"]) if p]
    participants = build_participants("CalendarEvent", structured)
    structured["participants"] = participants
    if not tenant.internal_domains:
        structured["isExternal"] = None
        return
    for p in [*people, *participants]:
        if p.get("email"):
            p["internal"] = tenant.is_internal(p["email"])
    structured["isExternal"] = any(p.get("internal") is False for p in participants)


def _description(value: Any, field: str, *, kind: str = "auto") -> tuple[str, bool]:
    """A description as text: HTML (or text that looks like it) through `html_to_text`."""
    if value in (None, ""):
        return "", False
    if not isinstance(value, str):
        message = f"{field}: expected a string, got {type(value).__name__}"
        raise MappingError(message)
    if kind == "html" or (kind == "auto" and _HTML_TAG.search(value, 0, 10_000)):
        return html_to_text(value)
    if len(value) > MAX_HTML_BYTES:
        return value[:MAX_HTML_BYTES], True
    return value, False


def _str(value: Any, field: str) -> str:
    if not isinstance(value, str):
        message = f"{field}: expected a string, got {type(value).__name__}"
        raise MappingError(message)
    return value


def _optional_str(value: Any, field: str) -> str | None:
    return None if value in (None, "") else _str(value, field)


#: Windows time zone ids to IANA names: CLDR's `windowsZones.xml`, territory "001"
#: (the table tzlocal ships as `tzlocal.windows_tz.win_tz`, 5.4).
WINDOWS_ZONES: Final[Mapping[str, str]] = {
    "AUS Central Standard Time": "Australia/Darwin",
    "AUS Eastern Standard Time": "Australia/Sydney", "Afghanistan Standard Time": "Asia/Kabul",
    "Alaskan Standard Time": "America/Anchorage", "Aleutian Standard Time": "America/Adak",
    "Altai Standard Time": "Asia/Barnaul", "Arab Standard Time": "Asia/Riyadh",
    "Arabian Standard Time": "Asia/Dubai", "Arabic Standard Time": "Asia/Baghdad",
    "Argentina Standard Time": "America/Buenos_Aires",
    "Astrakhan Standard Time": "Europe/Astrakhan", "Atlantic Standard Time": "America/Halifax",
    "Aus Central W. Standard Time": "Australia/Eucla", "Azerbaijan Standard Time": "Asia/Baku",
    "Azores Standard Time": "Atlantic/Azores", "Bahia Standard Time": "America/Bahia",
    "Bangladesh Standard Time": "Asia/Dhaka", "Belarus Standard Time": "Europe/Minsk",
    "Bougainville Standard Time": "Pacific/Bougainville",
    "Canada Central Standard Time": "America/Regina",
    "Cape Verde Standard Time": "Atlantic/Cape_Verde", "Caucasus Standard Time": "Asia/Yerevan",
    "Cen. Australia Standard Time": "Australia/Adelaide",
    "Central America Standard Time": "America/Guatemala",
    "Central Asia Standard Time": "Asia/Almaty",
    "Central Brazilian Standard Time": "America/Cuiaba",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "Central Pacific Standard Time": "Pacific/Guadalcanal",
    "Central Standard Time": "America/Chicago",
    "Central Standard Time (Mexico)": "America/Mexico_City",
    "Chatham Islands Standard Time": "Pacific/Chatham", "China Standard Time": "Asia/Shanghai",
    "Cuba Standard Time": "America/Havana", "Dateline Standard Time": "Etc/GMT+12",
    "E. Africa Standard Time": "Africa/Nairobi",
    "E. Australia Standard Time": "Australia/Brisbane",
    "E. Europe Standard Time": "Europe/Chisinau",
    "E. South America Standard Time": "America/Sao_Paulo",
    "Easter Island Standard Time": "Pacific/Easter", "Eastern Standard Time": "America/New_York",
    "Eastern Standard Time (Mexico)": "America/Cancun", "Egypt Standard Time": "Africa/Cairo",
    "Ekaterinburg Standard Time": "Asia/Yekaterinburg", "FLE Standard Time": "Europe/Kiev",
    "Fiji Standard Time": "Pacific/Fiji", "GMT Standard Time": "Europe/London",
    "GTB Standard Time": "Europe/Bucharest", "Georgian Standard Time": "Asia/Tbilisi",
    "Greenland Standard Time": "America/Godthab", "Greenwich Standard Time": "Atlantic/Reykjavik",
    "Haiti Standard Time": "America/Port-au-Prince", "Hawaiian Standard Time": "Pacific/Honolulu",
    "India Standard Time": "Asia/Calcutta", "Iran Standard Time": "Asia/Tehran",
    "Israel Standard Time": "Asia/Jerusalem", "Jordan Standard Time": "Asia/Amman",
    "Kaliningrad Standard Time": "Europe/Kaliningrad", "Korea Standard Time": "Asia/Seoul",
    "Libya Standard Time": "Africa/Tripoli", "Line Islands Standard Time": "Pacific/Kiritimati",
    "Lord Howe Standard Time": "Australia/Lord_Howe", "Magadan Standard Time": "Asia/Magadan",
    "Magallanes Standard Time": "America/Punta_Arenas",
    "Marquesas Standard Time": "Pacific/Marquesas", "Mauritius Standard Time": "Indian/Mauritius",
    "Middle East Standard Time": "Asia/Beirut", "Montevideo Standard Time": "America/Montevideo",
    "Morocco Standard Time": "Africa/Casablanca", "Mountain Standard Time": "America/Denver",
    "Mountain Standard Time (Mexico)": "America/Mazatlan", "Myanmar Standard Time": "Asia/Rangoon",
    "N. Central Asia Standard Time": "Asia/Novosibirsk",
    "Namibia Standard Time": "Africa/Windhoek", "Nepal Standard Time": "Asia/Katmandu",
    "New Zealand Standard Time": "Pacific/Auckland",
    "Newfoundland Standard Time": "America/St_Johns", "Norfolk Standard Time": "Pacific/Norfolk",
    "North Asia East Standard Time": "Asia/Irkutsk",
    "North Asia Standard Time": "Asia/Krasnoyarsk", "North Korea Standard Time": "Asia/Pyongyang",
    "Omsk Standard Time": "Asia/Omsk", "Pacific SA Standard Time": "America/Santiago",
    "Pacific Standard Time": "America/Los_Angeles",
    "Pacific Standard Time (Mexico)": "America/Tijuana", "Pakistan Standard Time": "Asia/Karachi",
    "Paraguay Standard Time": "America/Asuncion", "Qyzylorda Standard Time": "Asia/Qyzylorda",
    "Romance Standard Time": "Europe/Paris", "Russia Time Zone 10": "Asia/Srednekolymsk",
    "Russia Time Zone 11": "Asia/Kamchatka", "Russia Time Zone 3": "Europe/Samara",
    "Russian Standard Time": "Europe/Moscow", "SA Eastern Standard Time": "America/Cayenne",
    "SA Pacific Standard Time": "America/Bogota", "SA Western Standard Time": "America/La_Paz",
    "SE Asia Standard Time": "Asia/Bangkok", "Saint Pierre Standard Time": "America/Miquelon",
    "Sakhalin Standard Time": "Asia/Sakhalin", "Samoa Standard Time": "Pacific/Apia",
    "Sao Tome Standard Time": "Africa/Sao_Tome", "Saratov Standard Time": "Europe/Saratov",
    "Singapore Standard Time": "Asia/Singapore",
    "South Africa Standard Time": "Africa/Johannesburg",
    "South Sudan Standard Time": "Africa/Juba", "Sri Lanka Standard Time": "Asia/Colombo",
    "Sudan Standard Time": "Africa/Khartoum", "Syria Standard Time": "Asia/Damascus",
    "Taipei Standard Time": "Asia/Taipei", "Tasmania Standard Time": "Australia/Hobart",
    "Tocantins Standard Time": "America/Araguaina", "Tokyo Standard Time": "Asia/Tokyo",
    "Tomsk Standard Time": "Asia/Tomsk", "Tonga Standard Time": "Pacific/Tongatapu",
    "Transbaikal Standard Time": "Asia/Chita", "Turkey Standard Time": "Europe/Istanbul",
    "Turks And Caicos Standard Time": "America/Grand_Turk",
    "US Eastern Standard Time": "America/Indianapolis",
    "US Mountain Standard Time": "America/Phoenix", "UTC": "Etc/UTC", "UTC+12": "Etc/GMT-12",
    "UTC+13": "Etc/GMT-13", "UTC-02": "Etc/GMT+2", "UTC-08": "Etc/GMT+8", "UTC-09": "Etc/GMT+9",
    "UTC-11": "Etc/GMT+11", "Ulaanbaatar Standard Time": "Asia/Ulaanbaatar",
    "Venezuela Standard Time": "America/Caracas", "Vladivostok Standard Time": "Asia/Vladivostok",
    "Volgograd Standard Time": "Europe/Volgograd", "W. Australia Standard Time": "Australia/Perth",
    "W. Central Africa Standard Time": "Africa/Lagos", "W. Europe Standard Time": "Europe/Berlin",
    "W. Mongolia Standard Time": "Asia/Hovd", "West Asia Standard Time": "Asia/Tashkent",
    "West Bank Standard Time": "Asia/Hebron", "West Pacific Standard Time": "Pacific/Port_Moresby",
    "Yakutsk Standard Time": "Asia/Yakutsk", "Yukon Standard Time": "America/Whitehorse",
}  # fmt: skip
