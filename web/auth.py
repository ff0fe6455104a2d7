"""Bearer JWT: who calls (`sub`) for which tenant (`tid`); never from query or body."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

__all__ = ["AuthError", "Principal", "authenticate", "issue_token"]


class AuthError(Exception):
    """The request carries no usable token (401)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a user of a tenant."""

    tenant_id: str
    user_id: str


def authenticate(
    authorization: str | None, *, secret: str, algorithms: list[str], leeway: float
) -> Principal:
    """The principal of an `Authorization: Bearer <JWT>` header; `AuthError` otherwise."""
    if not authorization:
        message = "missing Authorization header"
        raise AuthError(message)
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        message = "the Authorization header is not a Bearer token"
        raise AuthError(message)
    try:
        claims = jwt.decode(
            token.strip(),
            secret,
            algorithms=algorithms,
            leeway=leeway,
            options={"require": ["exp", "sub", "tid"]},
        )
    except jwt.PyJWTError as e:
        message = f"invalid token: {e}"
        raise AuthError(message) from e
    tenant, user = claims.get("tid"), claims.get("sub")
    if not isinstance(tenant, str) or not tenant or not isinstance(user, str) or not user:
        message = "the token must name a tenant (tid) and a user (sub)"
        raise AuthError(message)
    return Principal(tenant_id=tenant, user_id=user)


def issue_token(
    *, secret: str, tenant_id: str, user_id: str, ttl: timedelta, algorithm: str = "HS256"
) -> str:
    """A signed token for a tenant and user (development and tests)."""
    now = datetime.now(UTC)
    claims = {"tid": tenant_id, "sub": user_id, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm=algorithm)
