"""Look-up keys of a shard, kept in an index beside it so linking never scans a tenant.

Contacts by email (every address they carry), accounts by domain, opportunities by
account, users by email, and communications by participant, participant domain,
thread and linked target (what late arrivals and thread continuity look up).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from linking.domains import domain_keys
from processors.addresses import domain_of
from shards.model import Shard

__all__ = ["COMMUNICATION_TYPES", "index_keys", "participant_addresses"]

COMMUNICATION_TYPES: Final = frozenset({"Email", "Message", "CalendarEvent", "Meeting", "Document"})
_PEOPLE_FIELDS: Final = (
    "participants", "from", "to", "cc", "bcc", "sender", "mentions", "organizer",
    "attendees", "owner",
)  # fmt: skip


def participant_addresses(data: dict[str, Any]) -> set[str]:
    """Every email address a communication's people fields name, lower-cased."""
    found: set[str] = set()
    for name in _PEOPLE_FIELDS:
        for entry in _as_list(data.get(name)):
            address = entry.get("email") if isinstance(entry, dict) else entry
            if isinstance(address, str) and "@" in address:
                found.add(address.strip().lower())
    return found


def index_keys(shard: Shard) -> set[tuple[str, str]]:
    """`(key, value)` pairs under which the shard can be found."""
    data = shard.structured_data
    keys: set[tuple[str, str]] = set()
    if shard.shard_type in ("Contact", "User"):
        keys.update(("email", e) for e in _lower(data.get("email"), data.get("emails")))
    elif shard.shard_type == "Account":
        keys.update(("domain", d) for d in _lower(data.get("domain"), data.get("domains")))
    elif shard.shard_type == "Opportunity":
        keys.update(("accountId", a) for a in _strings(data.get("accountId")))
    elif shard.shard_type == "OpportunityContactRole":
        keys.update(("opportunityId", o) for o in _strings(data.get("opportunityId")))
    elif shard.shard_type in COMMUNICATION_TYPES:
        addresses = participant_addresses(data)
        keys.update(("participant", a) for a in addresses)
        # Every level down to the registrable domain: a change of `acme.com` finds mail
        # from `eu.acme.com` too.
        keys.update(("domain", d) for a in addresses for d in domain_keys(domain_of(a)))
        keys.update(("threadId", t) for t in _strings(data.get("threadId")))
        keys.update(("linkedTarget", link.target_shard_id) for link in shard.links)
    return keys


def _strings(*values: Any) -> Iterator[str]:
    for value in values:
        for item in _as_list(value):
            if isinstance(item, str) and item.strip():
                yield item.strip()


def _lower(*values: Any) -> Iterator[str]:
    return (s.lower() for s in _strings(*values))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
