"""How long a service asked us to wait: `retry-after-ms` or `Retry-After` (seconds or date)."""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from datetime import UTC, datetime

__all__ = ["retry_after_seconds"]


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from a response's headers, never negative; None when not asked.

    Azure services send `retry-after-ms` (or `x-ms-retry-after-ms`) beside the standard
    `Retry-After`, which holds seconds or an HTTP date.
    """
    if headers is None:
        return None
    milliseconds = headers.get("retry-after-ms") or headers.get("x-ms-retry-after-ms")
    if milliseconds:
        try:
            return max(float(milliseconds) / 1000, 0.0)
        except ValueError:
            pass
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
