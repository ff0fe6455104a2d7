"""People in communications: addresses lower-cased, display names kept, duplicates merged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from email.utils import getaddresses
from typing import Any

from core.exceptions import MappingError

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
    """People in first-seen order, one per address (else per user id, else per name).

    A later entry for the same person fills the fields the first one lacked.
    """
    seen: dict[str, Person] = {}
    for p in people:
        key = (
            f"email:{p['email']}"
            if p.get("email")
            else f"user:{p['userId']}"
            if p.get("userId")
            else f"name:{p['name']}"
            if p.get("name")
            else None
        )
        if key is None:
            continue
        if key in seen:
            kept = seen[key]
            for field, value in p.items():
                if kept.get(field) is None and value is not None:
                    kept[field] = value
            continue
        seen[key] = dict(p)
    return list(seen.values())
