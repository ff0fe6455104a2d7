"""One participant shape for every communication type: `{email, name, role, ...}`.

Email, Message, CalendarEvent and Meeting shards list everyone taking part in
`participants`, once each, as person objects: `email` (lower-case, or null when the
provider names the person by id only), `name`, `role` (where the person first appears,
in the order of `SOURCES`: an address in `from` and `to` is `from`), and where known
`userId` (chat) and `internal` (the tenant's own domain). Normalisers build the list
with `build_participants`, and the upgrade of an older shard (`shards.upgrades`) does
the same from the fields it already has.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

__all__ = ["KEPT_FIELDS", "SOURCES", "build_participants", "has_participant_shape"]

#: Where each communication type's participants come from, `(field, role)` in the order
#: a role is decided.
SOURCES: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "Email": (("from", "from"), ("sender", "sender"), ("to", "to"), ("cc", "cc"), ("bcc", "bcc")),
    "Message": (("sender", "sender"), ("mentions", "mention")),
    "CalendarEvent": (("organizer", "organizer"), ("attendees", "attendee")),
    "Meeting": (("participants", "participant"),),
}
#: What a participant keeps of a person (an attendee's `responseStatus` stays on the attendee).
KEPT_FIELDS: Final = ("email", "name", "userId", "internal")


def build_participants(shard_type: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Everyone in the type's people fields, once each (by address, else user id, else
    name), with the role of the first field naming them; a later mention fills what the
    first lacked. A bare address (an older shard's) is a person without a name."""
    seen: dict[str, dict[str, Any]] = {}
    for role, entry in _entries(shard_type, data):
        if isinstance(entry, str):
            entry = {"email": entry.strip().lower() or None, "name": None}
        if not isinstance(entry, dict):
            continue
        found = {k: entry[k] for k in KEPT_FIELDS if entry.get(k) is not None}
        key = _key(found)
        if key is None:
            continue
        kept = seen.get(key)
        if kept is None:
            seen[key] = {"email": None, "name": None, **found, "role": role}
            continue
        for field, value in found.items():
            if kept.get(field) is None:
                kept[field] = value
    return list(seen.values())


def has_participant_shape(value: Any) -> bool:
    """True when `participants` is already a list of person objects with a role."""
    return isinstance(value, list) and all(isinstance(p, dict) and p.get("role") for p in value)


def _entries(shard_type: str, data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for field, role in SOURCES.get(shard_type, ()):
        value = data.get(field)
        items: Iterable[Any] = value if isinstance(value, list) else [value]
        for item in items:
            if item is not None:
                yield role, item


def _key(person: dict[str, Any]) -> str | None:
    for field in ("email", "userId", "name"):
        if person.get(field):
            return f"{field}:{person[field]}"
    return None
