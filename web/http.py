"""What every API view shares: the contract's error body, authentication, query parameters,
request bodies."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web as aiohttp_web
from faust.web import Request, Response, View

from web.auth import AuthError, Principal

__all__ = [
    "MAX_BODY_BYTES",
    "Authenticate",
    "BadBody",
    "authenticated",
    "error",
    "json_object",
    "limit_of",
]

_DIGITS = re.compile(r"[0-9]{1,9}")

#: The largest request body read (aiohttp's own limit, `client_max_size`); larger is 413.
MAX_BODY_BYTES = 1024**2

#: The caller of a request, or `AuthError`.
Authenticate = Callable[[Request], Awaitable[Principal]]
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
                who = await authenticate(request)
            except AuthError as e:
                return error(view, 401, "unauthorized", str(e))
            return await method(view, request, who, **params)

        return guarded

    return decorate


def limit_of(query: Mapping[str, str], *, default: int, maximum: int) -> int:
    """The `limit` query parameter, 1..maximum; ValueError with the message otherwise.

    Only ASCII digits: Python's `int` would also take " 5", "+5", "5_0" and other
    scripts' digits, which the OpenAPI description (an integer) does not.
    """
    raw = query.get("limit", str(default))
    if not _DIGITS.fullmatch(raw):
        message = "limit must be an integer"
        raise ValueError(message)
    limit = int(raw)
    if not 1 <= limit <= maximum:
        message = f"limit must be 1..{maximum}"
        raise ValueError(message)
    return limit


class BadBody(ValueError):
    """A request body the API does not take: `status` 400 (not a JSON object) or 413."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.code = "bad_request" if status == 400 else "payload_too_large"


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, `{}` when empty; `BadBody` for anything else.

    Hostile bodies are refused, never a 500: not UTF-8 or not JSON, nested deeper than
    the parser's recursion limit (`RecursionError`), numbers beyond Python's digit
    limit, more than `MAX_BODY_BYTES`.
    """
    try:
        raw = await request.read()
    except aiohttp_web.HTTPRequestEntityTooLarge:
        message = f"the body is larger than {MAX_BODY_BYTES} bytes"
        raise BadBody(message, 413) from None
    if len(raw) > MAX_BODY_BYTES:
        message = f"the body is larger than {MAX_BODY_BYTES} bytes"
        raise BadBody(message, 413)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except RecursionError:
        message = "the body is not JSON: nested too deeply"
        raise BadBody(message) from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, too many digits
        message = f"the body is not JSON: {e}"
        raise BadBody(message) from None
    if not isinstance(body, dict):
        message = "the body must be a JSON object"
        raise BadBody(message)
    return body
