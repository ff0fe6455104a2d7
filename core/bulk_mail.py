"""Bulk mail: the headers that tell a newsletter, a mailing or a campaign from a person's mail.

The email normaliser keeps these headers (`bulk_headers`) on the Email shard as
`bulkHeaders`; entity linking reads them (`bulk_signals`) and links bulk mail by a
known person's address only, never by the sender's domain alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = ["KEPT_HEADERS", "MARKETING_PREFIXES", "bulk_headers", "bulk_signals"]

#: Headers kept whatever their value (lower case): they only appear on bulk or list mail,
#: or say how it was sent.
KEPT_HEADERS: Final = frozenset(
    {"list-unsubscribe", "list-unsubscribe-post", "list-id", "precedence", "auto-submitted"}
)

#: Header name prefixes of marketing and bulk-sending platforms (lower case): Mailchimp
#: (X-Mailchimp-*, X-MC-User), Salesforce Marketing Cloud (X-SFMC-Stack), HubSpot
#: marketing email (X-HubSpot-*, X-HS-*), Marketo (X-Marketo*, X-MktArchive, X-MktMailDKIM),
#: Pardot, Campaign Monitor (X-CMail-*), Constant Contact (X-Roving-*), Klaviyo, and the
#: campaign ids several platforms set (X-Campaign, X-CampaignID).
MARKETING_PREFIXES: Final = (
    "x-mailchimp",
    "x-mc-user",
    "x-sfmc",
    "x-hubspot",
    "x-hs-",
    "x-marketo",
    "x-mkt",
    "x-pardot",
    "x-cmail",
    "x-roving",
    "x-klaviyo",
    "x-campaign",
)

#: `Precedence` values of bulk and list mail (RFC 3834 §3.1.8; `junk` by convention).
_BULK_PRECEDENCE: Final = frozenset({"bulk", "list", "junk"})
#: Longest header value kept (List-Unsubscribe can carry long URLs).
_MAX_VALUE: Final = 1_000
_SPACE: Final = re.compile(r"\s+")


def bulk_headers(headers: Any) -> dict[str, str]:
    """The headers worth keeping from `[{name, value}]` (Gmail, Graph) or `{name: value}`.

    Names keep their spelling; the first of a repeated header wins; values are unfolded
    and cut at 1,000 characters. Anything unreadable is left out, never an error.
    """
    kept: dict[str, str] = {}
    for name, value in _pairs(headers):
        lowered = name.strip().lower()
        if lowered in {k.lower() for k in kept}:
            continue
        if lowered in KEPT_HEADERS or lowered.startswith(MARKETING_PREFIXES):
            kept[name.strip()] = _SPACE.sub(" ", value).strip()[:_MAX_VALUE]
    return kept


def bulk_signals(headers: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Why mail with these (kept) headers is bulk mail, in words; empty when it is not.

    `Auto-Submitted` alone is not bulk: an out-of-office reply is a person's own mail.
    """
    signals: list[str] = []
    for name, value in sorted((headers or {}).items(), key=lambda item: item[0].lower()):
        lowered = name.lower()
        text = str(value).strip().lower()
        if lowered in ("list-unsubscribe", "list-id"):
            signals.append(name)
        elif lowered == "precedence" and text in _BULK_PRECEDENCE:
            signals.append(f"{name}: {text}")
        elif lowered.startswith(MARKETING_PREFIXES):
            signals.append(name)
    return tuple(signals)


def _pairs(headers: Any) -> Iterable[tuple[str, str]]:
    if isinstance(headers, Mapping):
        items: Iterable[Any] = ({"name": k, "value": v} for k, v in headers.items())
    elif isinstance(headers, list):
        items = headers
    else:
        return
    for header in items:
        if not isinstance(header, Mapping):
            continue
        name, value = header.get("name"), header.get("value")
        if isinstance(name, str) and name.strip() and isinstance(value, str | int | float):
            yield name, str(value)
