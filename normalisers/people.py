"""People in communications: addresses lower-cased, display names kept, duplicates merged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from email.utils import getaddresses
from typing import Any

from processors.exceptions import MappingError

__all__ = ["Person", "parse_address_header", "person", "unique_people"]

Person = dict[str, Any]  # {"email": str | None, "name": str | None, ...}


def person(email: Any = None, name: Any = None, **extra: Any) -> Person:
    """One participant: `email` lower-cased and stripped, `name` kept as given."""
    address = str(email).strip().strip("<>").lower() if email else None
    if address is not None and "@" not in address:
        message = f"not an email address: {email!r}"
        raise MappingError(message)
    display = str(name).strip() if name else None
    result: Person = {"email": address or None, "name": display or None}
    result.update({k: v for k, v in extra.items() if v is not None})
    return result


def parse_address_header(value: str | None) -> list[Person]:
    """`"Priya Raman" <Priya@X.com>, dan@y.com` to people (RFC 5322 address lists)."""
    if not value:
        return []
    return [person(addr, name) for name, addr in getaddresses([value]) if addr and "@" in addr]


def unique_people(people: Iterable[Person | Mapping[str, Any]]) -> list[Person]:
    """People in first-seen order, one entry per address; a later name fills a missing one."""
    seen: dict[str, Person] = {}
    anonymous: list[Person] = []
    for p in people:
        entry = dict(p)
        address = entry.get("email")
        if not address:
            if entry.get("name"):
                anonymous.append(entry)
            continue
        if address in seen:
            if not seen[address].get("name") and entry.get("name"):
                seen[address]["name"] = entry["name"]
            continue
        seen[address] = entry
    return [*seen.values(), *anonymous]
