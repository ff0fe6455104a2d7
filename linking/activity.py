"""An activity shard read as an activity: who took part, when, about what, what it names.

Email, Message, CalendarEvent, Meeting, Document and Task shards carry their people in
different fields (`from`/`to`/`cc`/`bcc`, `sender`/`mentions`, `organizer`/`attendees`,
`participants`, `owner`), named by each type's `shards.kinds.ShardKind`; an `Activity`
is the one shape the linking rules read, and `lookup_keys` says what the linker must
fetch for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from core.addresses import domain_of, is_no_reply
from core.bulk_mail import bulk_signals
from core.domains import domain_keys
from core.tenants import TenantConfig
from shards.kinds import KINDS, ShardKind, kind_of
from shards.model import Shard
from shards.store import ShardView

__all__ = [
    "MAX_TEXT_CHARS",
    "ROLES",
    "Activity",
    "LookupKeys",
    "Participant",
    "activity_of",
    "lookup_keys",
    "occurred_at",
]

#: Characters of body, transcript or description the rules read; the rest is not looked at.
MAX_TEXT_CHARS: Final = 20_000

#: Every role a participant can have, over all activity types.
ROLES: Final = tuple(dict.fromkeys(role for k in KINDS.values() for _, role in k.people))


@dataclass(frozen=True, slots=True)
class Participant:
    """One person taking part: address lower-cased, display name, role."""

    email: str
    name: str | None
    role: str


@dataclass(frozen=True, slots=True)
class Activity:
    """A communication as the linking rules see it."""

    tenant_id: str
    shard_id: str
    shard_type: str
    occurred_at: datetime | None
    participants: tuple[Participant, ...]
    thread_id: str | None
    subject: str | None
    text: str
    internal_only: bool
    #: `(shard id, shard type, field)` of the CRM records it names (a task's deal, account,
    #: contact)
    references: tuple[tuple[str, str, str], ...] = ()
    #: why it is bulk mail (List-Unsubscribe, Precedence: bulk, a marketing platform's
    #: header ...); empty for a person's own mail. Bulk mail links by known addresses only.
    bulk: tuple[str, ...] = ()

    def participant(self, email: str) -> Participant | None:
        """The participant with this address (lower-case), if any."""
        return next((p for p in self.participants if p.email == email), None)


@dataclass(frozen=True, slots=True)
class LookupKeys:
    """What the linker fetches for one activity (every value lower-case).

    - `emails`: Contact shards whose `email` equals, or whose `emails` holds, one of them.
    - `domains`: Account shards whose `domain` equals, or whose `domains` holds, one of
      them. Each participant domain comes with its parents down to the registrable
      domain (`mail.acme.com` → `mail.acme.com`, `acme.com`): an exact match suffices.
    - `internal_emails`: User shards whose `email` is one of them (the tenant's people).
    """

    emails: frozenset[str]
    domains: frozenset[str]
    internal_emails: frozenset[str]
    references: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        """True when there is nothing to fetch (nothing can link)."""
        return not self.emails and not self.domains and not self.references


def activity_of(shard: Shard, tenant: TenantConfig) -> Activity | None:
    """The activity of an activity shard; None for other shard types and for deleted
    messages, cancelled events and deleted records (they link to nothing)."""
    kind = kind_of(shard.shard_type)
    if kind is None or not kind.is_activity:
        return None
    data = shard.structured_data
    if data.get("deleted") is True or data.get("status") == "cancelled":
        return None
    people = _unique(p for p in _people_of(kind, data) if not tenant.is_excluded(p.email))
    internal_only = bool(people) and all(tenant.is_internal(p.email) for p in people)
    subject = next((v for f in kind.subject_fields if (v := data.get(f))), None)
    return Activity(
        tenant_id=shard.tenant_id,
        shard_id=shard.id,
        shard_type=shard.shard_type,
        occurred_at=occurred_at(shard),
        participants=people,
        thread_id=_text_or_none(data.get("threadId")),
        subject=_text_or_none(subject),
        text=_text(shard),
        internal_only=internal_only,
        references=_references(kind, data),
        bulk=_bulk(data),
    )


def lookup_keys(activity: Activity, tenant: TenantConfig) -> LookupKeys:
    """The look-ups an activity needs; all empty for an internal-only activity.

    External addresses are looked up as they are (a contact's personal address may be a
    free-mail one); automated senders (no-reply, notifications ...) are no one's address.
    Domains leave out free-mail, the tenant's own and those of automated senders; bulk
    mail looks up no domain (it never links by domain alone).
    """
    references = frozenset(shard_id for shard_id, _, _ in activity.references)
    if activity.internal_only:
        return LookupKeys(frozenset(), frozenset(), frozenset(), references)
    emails: set[str] = set()
    domains: set[str] = set()
    internal: set[str] = set()
    for p in activity.participants:
        if tenant.is_internal(p.email):
            internal.add(p.email)
            continue
        if is_no_reply(p.email):
            continue
        emails.add(p.email)
        if not tenant.is_free_mail(p.email) and not activity.bulk:
            domains.update(
                d
                for d in domain_keys(domain_of(p.email))
                if not _tenant_domain(d, tenant) and not _excluded_domain(d, tenant)
            )
    return LookupKeys(frozenset(emails), frozenset(domains), frozenset(internal), references)


# --- readers -----------------------------------------------------------------------------------


def _people_of(kind: ShardKind, data: dict[str, Any]) -> Iterator[Participant]:
    for field, role in kind.people:
        yield from _people(data.get(field), role)


def _bulk(data: dict[str, Any]) -> tuple[str, ...]:
    headers = data.get("bulkHeaders")
    return bulk_signals(headers) if isinstance(headers, dict) else ()


def _references(kind: ShardKind, data: dict[str, Any]) -> tuple[tuple[str, str, str], ...]:
    found: dict[str, tuple[str, str, str]] = {}
    for field, target_type in kind.references:
        value = data.get(field)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item.strip():
                found.setdefault(item.strip(), (item.strip(), target_type, field))
    return tuple(found.values())


def _people(value: Any, role: str) -> Iterator[Participant]:
    """People from a person object, an address, or a list of either."""
    for entry in value if isinstance(value, list) else [value]:
        if isinstance(entry, dict):
            address, name = entry.get("email"), entry.get("name")
        else:
            address, name = entry, None
        if not isinstance(address, str):
            continue
        address = address.strip().strip("<>").lower()
        if "@" not in address or not domain_of(address):
            continue
        yield Participant(address, name if isinstance(name, str) and name else None, role)


def _unique(people: Iterable[Participant]) -> tuple[Participant, ...]:
    """One participant per address: the first role seen (from before to before cc ...)."""
    seen: dict[str, Participant] = {}
    for p in people:
        kept = seen.get(p.email)
        if kept is None:
            seen[p.email] = p
        elif kept.name is None and p.name is not None:
            seen[p.email] = Participant(p.email, p.name, kept.role)
    return tuple(seen.values())


def _tenant_domain(domain: str, tenant: TenantConfig) -> bool:
    return any(domain == d or domain.endswith(f".{d}") for d in tenant.internal_domains)


def _excluded_domain(domain: str, tenant: TenantConfig) -> bool:
    return any(domain == d or domain.endswith(f".{d}") for d in tenant.excluded_domains)


# --- time and text ---------------------------------------------------------------------------


def occurred_at(shard: Shard | ShardView) -> datetime | None:
    """When an activity happened: its type's first readable time field, else when its
    record last changed at the provider (UTC); None for other types or without either.
    (A view needs its type's `time_fields`.)"""
    kind = kind_of(shard.shard_type)
    for name in kind.time_fields if kind else ():
        moment = _utc(shard.structured_data.get(name))
        if moment is not None:
            return moment
    at = shard.source.occurred_at if isinstance(shard, Shard) else shard.source_occurred_at
    return at.astimezone(UTC) if at is not None and at.tzinfo is not None else None


def _utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _text(shard: Shard) -> str:
    text = shard.unstructured_data.get("text")
    if not isinstance(text, str) or not text:
        transcript = shard.structured_data.get("transcript")
        text = transcript if isinstance(transcript, str) else ""
    return text[:MAX_TEXT_CHARS]


def _text_or_none(value: Any) -> str | None:
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()
    return None
