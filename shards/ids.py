"""Deterministic shard ids (CONTRACT §3)."""

from __future__ import annotations

import uuid
from typing import Final

__all__ = ["shard_id"]

_NAMESPACE: Final = uuid.UUID("6f1c2a3e-8a57-4f0e-9a8c-2d1b7c9e4a10")


def shard_id(tenant_id: str, provider: str, kind: str, external_id: str) -> str:
    """The id of the shard for one provider record.

    The same `(tenantId, provider, entityType or dataType, externalId)` always gives
    the same id, so a replay updates instead of duplicating and a CRM reference (an
    opportunity's account id) resolves without a look-up. Provider and kind are
    case-folded: `Account` and `account` are one Salesforce object.
    """
    name = "\x1f".join((tenant_id, provider.casefold(), kind.casefold(), external_id))
    return str(uuid.uuid5(_NAMESPACE, name))
