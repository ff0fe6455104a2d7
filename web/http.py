"""What every API view shares: the contract's error body, authentication, query parameters."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from faust.web import Request, Response, View

from web.auth import AuthError, Principal

__all__ = ["Authenticate", "authenticated", "error", "limit_of"]

#: The caller of a request, or `AuthError`.
Authenticate = Callable[[Request], Principal]
#: a view method `(view, request, who, **path parameters)`
_Handler = Callable[..., Awaitable[Response]]


def error(view: View, status: int, code: str, message: str) -> Response:
    """The contract's error body: `{"error": {"code", "message"}}`."""
    return view.json({"error": {"code": code, "message": message}}, status=status)


def authenticated(
    authenticate: Authenticate,
) -> Callable[[_Handler], Callable[..., Awaitable[Response]]]:
    """A view method that receives the caller after the request; 401 without a valid token."""

    def decorate(method: _Handler) -> Callable[..., Awaitable[Response]]:
        @functools.wraps(method)
        async def guarded(view: View, request: Request, **params: Any) -> Response:
            try:
                who = authenticate(request)
            except AuthError as e:
                return error(view, 401, "unauthorized", str(e))
            return await method(view, request, who, **params)

        return guarded

    return decorate


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
