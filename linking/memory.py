"""The linker's look-ups over shards in memory: what the store's indexed queries return.

Tests and `benchmarks/linking_quality.py` use it; the agent asks the store the same
questions (`activity.LookupKeys` gives their exact semantics). Look-ups are scoped to
the activity's tenant, as the store's are; deleted shards are returned like the store
returns them (the rules leave them out).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from linking.activity import Activity, LookupKeys
from linking.rules import LinkContext
from shards.model import Link, Shard

__all__ = ["build_context"]


def build_context(
    activity: Activity,
    keys: LookupKeys,
    shards: list[Shard],
    thread_links: list[Link],
    decided: dict[str, str],
) -> LinkContext:
    """Contacts by address, accounts by domain and by those contacts, their opportunities,
    the accounts above them (`parentId`), users by internal address, the shards it names
    by reference; thread links and decisions as given."""
    own = [s for s in shards if s.tenant_id == activity.tenant_id]
    contacts = [
        s for s in own if s.shard_type == "Contact" and _values(s, "email", "emails") & keys.emails
    ]
    account_ids = {
        s.structured_data["accountId"]
        for s in contacts
        if isinstance(s.structured_data.get("accountId"), str)
    }
    accounts = [
        s
        for s in own
        if s.shard_type == "Account"
        and (s.id in account_ids or _values(s, "domain", "domains") & keys.domains)
    ]
    found = {a.id for a in accounts}
    ancestors = _ancestors(accounts, {s.id: s for s in own if s.shard_type == "Account"})
    opportunities = [
        s
        for s in own
        if s.shard_type == "Opportunity" and s.structured_data.get("accountId") in found
    ]
    users = [
        s for s in own if s.shard_type == "User" and _values(s, "email") & keys.internal_emails
    ]
    return LinkContext(
        contacts=contacts,
        accounts=accounts,
        opportunities=opportunities,
        users=users,
        referenced=[s for s in own if s.id in keys.references],
        thread_links=list(thread_links),
        decided=dict(decided),
        ancestors=ancestors,
    )


def _ancestors(accounts: list[Shard], by_id: dict[str, Shard]) -> list[Shard]:
    """The accounts above these (`parentId`, then its `parentId` ...), not among them."""
    seen = {a.id for a in accounts}
    found: list[Shard] = []
    for account in accounts:
        parent = account.structured_data.get("parentId")
        while isinstance(parent, str) and parent in by_id and parent not in seen:
            seen.add(parent)
            found.append(by_id[parent])
            parent = by_id[parent].structured_data.get("parentId")
    return found


def _values(shard: Shard, *names: str) -> frozenset[str]:
    """The lower-cased strings of some fields (a string or a list of strings each)."""
    found: set[str] = set()
    for name in names:
        found.update(_strings(shard.structured_data.get(name)))
    return frozenset(found)


def _strings(value: Any) -> Iterable[str]:
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str) and item.strip():
            yield item.strip().lower()
