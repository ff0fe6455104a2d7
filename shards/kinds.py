"""What each shard type means to the rest of the system, in one definition per type.

A `ShardKind` says whether the type is an activity (a communication or a CRM activity
that linking ties to opportunities, accounts and contacts and the ML fields count), where
its people, subject, time and text are, which CRM references it carries, and which kind
of activity it is to the ML fields. Linking (`linking.activity`, `linking.rules`), the
look-up index (`shards.keys`) and the ML facts (`tables.facts`) read these definitions
instead of keeping their own per-type maps, so a new type is added here, with its schema
in `shards/schemas/<Type>.json`, and the rest follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "ACTIVITY_TYPES",
    "KINDS",
    "SHARD_TYPES",
    "ActivityKind",
    "ShardKind",
    "kind_of",
]

#: What an activity is to the ML fields (the `k` of its facts).
ActivityKind = Literal["email", "message", "event", "meeting", "document", "task"]


@dataclass(frozen=True, slots=True)
class ShardKind:
    """One shard type as the other parts need to know it."""

    name: str
    #: linking ties it to opportunities, accounts and contacts; the ML fields count it
    activity: ActivityKind | None = None
    #: `(field, role)`: where its people are, in the order a person's role is decided
    #: (an address seen as `from` stays `from` when it is also in `to`)
    people: tuple[tuple[str, str], ...] = ()
    #: fields holding its subject, first present wins
    subject_fields: tuple[str, ...] = ()
    #: what the subject is called in evidence ("subject", "title")
    subject_label: str = "subject"
    #: what its text is called in evidence ("body", "transcript" ...)
    text_label: str = "text"
    #: fields holding when it happened, first readable wins
    time_fields: tuple[str, ...] = ()
    #: `(field, target shard type)`: CRM references it carries to other shards (ids)
    references: tuple[tuple[str, str], ...] = ()
    #: the look-up index of a CRM record: `(index key, fields whose values it indexes)`
    index: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def is_activity(self) -> bool:
        """True for the types linking reads and the ML fields count."""
        return self.activity is not None


_CRM: Final = (
    ShardKind(
        "Opportunity",
        index=(("accountId", ("accountId",)),),
    ),
    ShardKind("Account", index=(("domain", ("domain", "domains")),)),
    ShardKind("Contact", index=(("email", ("email", "emails")), ("accountId", ("accountId",)))),
    ShardKind(
        "User",
        index=(("email", ("email", "emails")),),
    ),
    ShardKind(
        "OpportunityContactRole",
        index=(("opportunityId", ("opportunityId",)),),
    ),
)

_ACTIVITIES: Final = (
    ShardKind(
        "Email",
        activity="email",
        people=(
            ("from", "from"),
            ("sender", "sender"),
            ("to", "to"),
            ("cc", "cc"),
            ("bcc", "bcc"),
            ("participants", "participant"),
        ),
        subject_fields=("subject",),
        text_label="body",
        time_fields=("sentAt", "receivedAt"),
    ),
    ShardKind(
        "Message",
        activity="message",
        people=(("sender", "sender"), ("mentions", "mention"), ("participants", "participant")),
        subject_fields=("subject",),
        text_label="message",
        time_fields=("sentAt",),
    ),
    ShardKind(
        "CalendarEvent",
        activity="event",
        people=(
            ("organizer", "organizer"),
            ("attendees", "attendee"),
            ("participants", "participant"),
        ),
        subject_fields=("title",),
        subject_label="title",
        text_label="description",
        time_fields=("start",),
    ),
    ShardKind(
        "Meeting",
        activity="meeting",
        people=(
            ("organizer", "organizer"),
            ("participants", "participant"),
            ("attendees", "attendee"),
        ),
        subject_fields=("title",),
        subject_label="title",
        text_label="transcript",
        time_fields=("start",),
    ),
    ShardKind(
        "Document",
        activity="document",
        people=(("owner", "owner"), ("participants", "participant")),
        subject_fields=("title", "fileName"),
        text_label="document's text",
        time_fields=("modifiedAt", "createdAt"),
    ),
    ShardKind(
        "Task",
        activity="task",
        people=(("participants", "participant"),),
        subject_fields=("subject",),
        text_label="description",
        time_fields=("completedAt", "dueDate", "createdDate"),
        references=(
            ("opportunityIds", "Opportunity"),
            ("accountIds", "Account"),
            ("contactIds", "Contact"),
        ),
    ),
)

#: Every shard type, by name.
KINDS: Final = {k.name: k for k in (*_CRM, *_ACTIVITIES)}
#: Every shard type's name, in the order they are ensured.
SHARD_TYPES: Final = tuple(KINDS)
#: The types linking reads and the ML fields count.
ACTIVITY_TYPES: Final = frozenset(k.name for k in KINDS.values() if k.is_activity)


def kind_of(shard_type: str) -> ShardKind | None:
    """The definition of a shard type; None for a type this version does not know."""
    return KINDS.get(shard_type)
