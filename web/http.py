"""What every API view shares: the contract's error body and query parameters."""

from __future__ import annotations

from collections.abc import Mapping

from faust.web import Response, View

__all__ = ["error", "limit_of"]


def error(view: View, status: int, code: str, message: str) -> Response:
    """The contract's error body: `{"error": {"code", "message"}}`."""
    return view.json({"error": {"code": code, "message": message}}, status=status)


def limit_of(query: Mapping[str, str], *, default: int, maximum: int) -> int:
    """The `limit` query parameter, 1..maximum; ValueError with the message otherwise."""
    try:
        limit = int(query.get("limit", str(default)))
    except ValueError:
        message = "limit must be an integer"
        raise ValueError(message) from None
    if not 1 <= limit <= maximum:
        message = f"limit must be 1..{maximum}"
        raise ValueError(message)
    return limit
