"""Deterministic shard ids (CONTRACT §3)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Final

__all__ = ["shard_id"]

_NAMESPACE: Final = uuid.UUID("6f1c2a3e-8a57-4f0e-9a8c-2d1b7c9e4a10")
_NAMESPACE_BYTES: Final = _NAMESPACE.bytes


def shard_id(tenant_id: str, provider: str, kind: str, external_id: str) -> str:
    """The id of the shard for one provider record.

    The same `(tenantId, provider, entityType or dataType, externalId)` always gives
    the same id, so a replay updates instead of duplicating and a CRM reference (an
    opportunity's account id) resolves without a look-up. Provider and kind are
    case-folded: `Account` and `account` are one Salesforce object.
    """
    name = "\x1f".join((tenant_id, provider.casefold(), kind.casefold(), external_id))
    return uuid5(name)


def uuid5(name: str) -> str:
    """`str(uuid.uuid5(<the shard namespace>, name))` without building a `UUID` (a third
    of the cost of mapping a CRM record went to it; `tests/unit/test_ids.py` checks the
    two agree)."""
    digest = bytearray(
        hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()[:16]
    )
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
