"""Look-up keys of a shard, kept in an index beside it so linking never scans a tenant.

Contacts by email (every address they carry), accounts by domain, opportunities by
account, users by email, and communications by participant, participant domain,
thread, linked target and CRM reference (what late arrivals and thread continuity look
up). Which fields hold what is read from each type's `shards.kinds.ShardKind`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from core.addresses import domain_of
from core.domains import domain_keys
from shards.kinds import KINDS, kind_of
from shards.model import Shard

__all__ = ["index_keys", "key_values", "link_keys", "participant_addresses", "thread_ids"]

#: Index keys whose values are compared lower-cased (addresses and domains).
_CASELESS: Final = frozenset({"email", "domain"})
#: Every field any activity type keeps people in.
_PEOPLE_FIELDS: Final = tuple(dict.fromkeys(f for k in KINDS.values() for f, _ in k.people))


def participant_addresses(data: dict[str, Any], shard_type: str | None = None) -> set[str]:
    """Every email address an activity's people fields name, lower-cased."""
    kind = kind_of(shard_type) if shard_type else None
    found: set[str] = set()
    for name in [f for f, _ in kind.people] if kind else _PEOPLE_FIELDS:
        for entry in _as_list(data.get(name)):
            address = entry.get("email") if isinstance(entry, dict) else entry
            if isinstance(address, str) and "@" in address:
                found.add(address.strip().lower())
    return found


def index_keys(shard: Shard) -> set[tuple[str, str]]:
    """`(key, value)` pairs under which the shard can be found."""
    kind = kind_of(shard.shard_type)
    if kind is None:
        return set()
    data = shard.structured_data
    keys: set[tuple[str, str]] = set()
    for key, fields in kind.index:
        keys.update((key, v) for v in _values(data, key, fields))
    if kind.is_activity:
        addresses = participant_addresses(data, shard.shard_type)
        keys.update(("participant", a) for a in addresses)
        # Every level down to the registrable domain: a change of `acme.com` finds mail
        # from `eu.acme.com` too.
        keys.update(("domain", d) for a in addresses for d in domain_keys(domain_of(a)))
        keys.update(("threadId", t) for t in thread_ids(data))
        keys |= link_keys(shard)
        for field, _ in kind.references:
            keys.update(("reference", r) for r in _strings(data.get(field)))
    return keys


def link_keys(shard: Shard) -> set[tuple[str, str]]:
    """The keys of `index_keys` that come from the shard's links (an activity's only):
    what a change of links alone changes of them."""
    kind = kind_of(shard.shard_type)
    if kind is None or not kind.is_activity:
        return set()
    return {("linkedTarget", link.target_shard_id) for link in shard.links}


def thread_ids(data: dict[str, Any]) -> list[str]:
    """The `threadId` keys of an activity's structured data."""
    return list(_strings(data.get("threadId")))


def key_values(shard: Shard, key: str) -> set[str]:
    """The values of one look-up key of the shard: `index_keys` of that key alone,
    without working out the others (what a look-up of a CRM record by one key needs)."""
    kind = kind_of(shard.shard_type)
    if kind is None:
        return set()
    if kind.is_activity:
        return {v for k, v in index_keys(shard) if k == key}
    data = shard.structured_data
    return {v for name, fields in kind.index if name == key for v in _values(data, key, fields)}


def _values(data: dict[str, Any], key: str, fields: tuple[str, ...]) -> Iterator[str]:
    """The values of look-up `key` from the record's `fields`, as the index keeps them."""
    for value in _strings(*(data.get(f) for f in fields)):
        yield value.lower() if key in _CASELESS else value


def _strings(*values: Any) -> Iterator[str]:
    for value in values:
        for item in _as_list(value):
            if isinstance(item, str) and item.strip():
                yield item.strip()


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
